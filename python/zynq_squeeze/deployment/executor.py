"""The generated C executor: a static memory plan and the model's steps in order.

``plan`` walks the ``main`` of a module lowered by ``tir_object.lower_for_executor``:

- ``relax.memory.alloc_storage``  -> a 64-byte aligned slot of one static arena,
- ``relax.memory.alloc_tensor``   -> a tensor at an offset of such a slot,
- ``relax.builtin.alloc_tensor``  -> a slot of its own (what escapes the plan: results),
- ``relax.reshape``, ``y = x``    -> a view of the same bytes,
- constants                       -> tensors whose data lies in the model file
                                     (section ``const.<k>``, deduplicated by content),
- a call of a PrimFunc            -> a CPU step: ``__tvm_ffi_<global_symbol>`` (tir_object),
- a call of an ExternFunc         -> an offloaded step: the glue's ``__tvm_ffi_<symbol>``,

plus an arena slot per input (the executor copies inputs in and outputs out: TVM's
operators assume 64-byte aligned data, the caller's buffers need not be). Anything else
is a DeployError naming the binding. ``emit`` writes the plan as C (``zsq_model.c``)
for the fixed API code (``templates/zsq_model_api.c``, ``templates/zsq_plan.h``).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import GenericConst
from tvm.tirx import PrimFunc

from ..codegen.safe_text import safe_text
from .errors import DeployError

ALIGN = 64  # TVM's kAllocAlignment: TIR assumes it for every buffer's data pointer
MAX_NDIM = 6  # ZSQ_MODEL_MAX_NDIM of zsq_model.h (inputs and outputs)

# dtype -> (DLDataTypeCode name, bits)
_DTYPES = {"float32": ("kDLFloat", 32), "float16": ("kDLFloat", 16),
           "float64": ("kDLFloat", 64), "bfloat16": ("kDLBfloat", 16),
           "int8": ("kDLInt", 8), "int16": ("kDLInt", 16), "int32": ("kDLInt", 32),
           "int64": ("kDLInt", 64), "uint8": ("kDLUInt", 8), "uint16": ("kDLUInt", 16),
           "uint32": ("kDLUInt", 32), "uint64": ("kDLUInt", 64), "bool": ("kDLBool", 8)}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Tensor:
    """A static DLTensor: ``base`` "arena" (``offset`` bytes into the arena) or "const"
    (``offset`` = the constant's index k, section ``const.<k>``)."""

    index: int
    shape: tuple[int, ...]
    dtype: str
    base: str
    offset: int
    note: str = ""  # what it is, for the generated comment

    @property
    def nbytes(self) -> int:
        return _nbytes(self.shape, self.dtype)


@dataclass
class Step:
    """One call: ``offloaded`` (glue) or a CPU operator, on tensor ``args`` (indices)."""

    symbol: str
    args: list[int]
    offloaded: bool


@dataclass
class IO:
    """A model input or output: its name (as the model has it) and tensor."""

    name: str
    tensor: int


@dataclass
class Plan:
    """The model's static memory plan and steps (see the module docstring)."""

    tensors: list[Tensor] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    inputs: list[IO] = field(default_factory=list)
    outputs: list[IO] = field(default_factory=list)
    arena_bytes: int = 0
    consts: list[bytes] = field(default_factory=list)  # data of const.<k>

    @property
    def const_bytes(self) -> int:
        return sum(len(c) for c in self.consts)

    @property
    def offloaded_symbols(self) -> list[str]:
        """Offloaded functions in order of first call."""
        return list(dict.fromkeys(s.symbol for s in self.steps if s.offloaded))


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _nbytes(shape, dtype) -> int:
    if dtype not in _DTYPES:
        raise DeployError(f"dtype {dtype} has no C executor support")
    return int(np.prod(shape, dtype=np.int64)) * (_DTYPES[dtype][1] // 8)


def _int(e) -> int:
    """An integer from an IntImm (also what Relax's PrimValue is in TVM 0.27) or int."""
    if isinstance(e, tvm.tirx.IntImm):
        return int(e.value)
    if isinstance(e, int):
        return e
    raise DeployError(f"expected a constant integer, got {e}")


def _static_type(ty, what: str) -> tuple[tuple[int, ...], str]:
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise DeployError(f"{what}: only statically shaped tensors can be planned, got {ty}")
    dims = []
    for v in ty.shape.values:
        if not isinstance(v, tvm.tirx.IntImm):
            raise DeployError(f"{what}: symbolic dimension {v} cannot be planned statically")
        dims.append(int(v.value))
    dtype = str(ty.dtype)
    if dtype not in _DTYPES:
        raise DeployError(f"{what}: dtype {dtype} has no C executor support")
    return tuple(dims), dtype


def _symbol(name, what: str) -> str:
    s = str(name)
    if not _IDENT.match(s):  # it must match the object's symbol: it cannot be sanitized
        raise DeployError(f"{what}: symbol {s!r} is not a C identifier")
    return s


class _Walker:
    def __init__(self, mod: tvm.IRModule):
        self.mod = mod
        self.p = Plan()
        self.env: dict = {}  # relax Var -> tensor index | ("storage", offset, bytes) | tuple
        self.const_index: dict = {}  # (dtype, shape, bytes) -> tensor index

    def new_tensor(self, shape, dtype, base, offset, note="") -> int:
        self.p.tensors.append(Tensor(len(self.p.tensors), tuple(shape), dtype, base, offset,
                                     note))
        return len(self.p.tensors) - 1

    def arena_slot(self, nbytes: int) -> int:
        off = self.p.arena_bytes
        self.p.arena_bytes = _align(off + max(nbytes, 1))
        return off

    def constant(self, c: GenericConst) -> int:
        arr = np.ascontiguousarray(c.value.numpy())
        dtype = str(arr.dtype)
        if dtype not in _DTYPES:
            raise DeployError(f"a constant of dtype {dtype} has no C executor support")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        key = (dtype, arr.shape, data)
        if key not in self.const_index:
            k = len(self.p.consts)
            self.p.consts.append(data)
            self.const_index[key] = self.new_tensor(arr.shape, dtype, "const", k,
                                                    f"const.{k}")
        return self.const_index[key]

    def value(self, e, what: str):
        if isinstance(e, GenericConst):
            return self.constant(e)
        if isinstance(e, relax.Tuple):
            return tuple(self.value(x, what) for x in e.fields)
        if isinstance(e, relax.Var) and e in self.env:
            return self.env[e]
        raise DeployError(f"{what}: unsupported argument {type(e).__name__} {e}")

    def tensor(self, e, what: str) -> int:
        v = self.value(e, what)
        if not isinstance(v, int):
            raise DeployError(f"{what}: expected a tensor argument, got {e}")
        return v

    def walk(self, func_name: str = "main") -> Plan:
        f = self.mod[func_name]
        for prm in f.params:
            name = str(prm.name)
            shape, dtype = _static_type(prm.ty, f"input {name!r}")
            if dtype != "float32" or len(shape) > MAX_NDIM:
                raise DeployError(f"input {name!r}: the executor takes float32 tensors of "
                                  f"at most {MAX_NDIM} dimensions, got {dtype}{list(shape)}")
            t = self.new_tensor(shape, dtype, "arena", self.arena_slot(_nbytes(shape, dtype)),
                                f"input {safe_text(name)}")
            self.env[prm] = t
            self.p.inputs.append(IO(name, t))
        body = f.body
        if not isinstance(body, relax.SeqExpr):
            raise DeployError(f"{func_name}: body {type(body).__name__} is not a sequence")
        for blk in body.blocks:
            for b in blk.bindings:
                self.binding(b)
        ret = self.value(body.body, "return value")
        rets = list(ret) if isinstance(ret, tuple) else [ret]
        for k, t in enumerate(rets):
            if not isinstance(t, int):
                raise DeployError("nested tuples as results are not supported")
            tt = self.p.tensors[t]
            if tt.dtype != "float32" or len(tt.shape) > MAX_NDIM:
                raise DeployError(f"output {k}: the executor returns float32 tensors of at "
                                  f"most {MAX_NDIM} dimensions, got {tt.dtype}{list(tt.shape)}")
            self.p.outputs.append(IO(f"output{k}", t))
        return self.p

    def binding(self, b) -> None:
        if not isinstance(b, relax.VarBinding):
            raise DeployError(f"binding {type(b).__name__} of {b.var.name} is not supported "
                              "(dynamic shapes?)")
        var, v = b.var, b.value
        what = f"binding {var.name}"
        if isinstance(v, (relax.Var, relax.Tuple, GenericConst)):
            self.env[var] = self.value(v, what)
            return
        if isinstance(v, relax.TupleGetItem):
            tup = self.value(v.tuple_value, what)
            if not isinstance(tup, tuple) or not 0 <= v.index < len(tup):
                raise DeployError(f"{what}: tuple access out of range")
            self.env[var] = tup[v.index]
            return
        if not isinstance(v, relax.Call):
            raise DeployError(f"{what}: {type(v).__name__} is not supported")
        op = v.op
        if isinstance(op, tvm.ir.Op):
            self.builtin(var, v, op.name, what)
        elif isinstance(op, tvm.ir.GlobalVar):
            callee = self.mod[op]
            if not isinstance(callee, PrimFunc):
                raise DeployError(f"{what}: calls the Relax function {op.name_hint} (only "
                                  "PrimFuncs and offloaded functions are steps)")
            sym = _symbol(callee.attrs["global_symbol"], what)
            args = [self.tensor(a, f"{what} ({sym})") for a in v.args]
            self.p.steps.append(Step(sym, args, offloaded=False))
        elif isinstance(op, relax.ExternFunc):
            sym = _symbol(op.global_symbol, what)
            args = [self.tensor(a, f"{what} ({sym})") for a in v.args]
            self.p.steps.append(Step(sym, args, offloaded=True))
        else:
            raise DeployError(f"{what}: callee {type(op).__name__} is not supported")

    def builtin(self, var, v, name: str, what: str) -> None:
        if name == "relax.memory.alloc_storage":
            size = v.args[0]
            if not isinstance(size, relax.ShapeExpr) or len(size.values) != 1:
                raise DeployError(f"{what}: storage of non-constant size")
            nbytes = _int(size.values[0])
            self.env[var] = ("storage", self.arena_slot(nbytes), nbytes)
        elif name == "relax.memory.alloc_tensor":
            st = self.env.get(v.args[0])
            if not (isinstance(st, tuple) and len(st) == 3 and st[0] == "storage"):
                raise DeployError(f"{what}: alloc_tensor outside a planned storage")
            _, base, size = st
            off = _int(v.args[1])
            shape, dtype = _static_type(var.ty, what)
            if off < 0 or off % ALIGN or off + _nbytes(shape, dtype) > size:
                raise DeployError(f"{what}: tensor at offset {off} does not fit its storage")
            self.env[var] = self.new_tensor(shape, dtype, "arena", base + off)
        elif name == "relax.builtin.alloc_tensor":
            shape, dtype = _static_type(var.ty, what)
            self.env[var] = self.new_tensor(shape, dtype, "arena",
                                            self.arena_slot(_nbytes(shape, dtype)))
        elif name == "relax.reshape":
            src = self.p.tensors[self.tensor(v.args[0], what)]
            shape, dtype = _static_type(var.ty, what)
            if _nbytes(shape, dtype) != src.nbytes or dtype != src.dtype:
                raise DeployError(f"{what}: reshape changes the size")
            self.env[var] = self.new_tensor(shape, dtype, src.base, src.offset,
                                            f"view of t{src.index}")
        else:
            raise DeployError(f"{what}: operator {name} has no C executor lowering")


def plan(mod: tvm.IRModule, func_name: str = "main") -> Plan:
    """The static plan of ``mod[func_name]`` (a module from ``lower_for_executor``)."""
    return _Walker(mod).walk(func_name)


# ------------------------------------------------------------------------ emission
_ID_LINE = "#define ZSQ_MODEL_ID UINT64_C(0x{:016x})"


@dataclass
class ExecutorSource:
    """The generated ``zsq_model.c`` and the model id compiled into it."""

    text: str
    model_id: int


def model_id_of(text_with_zero_id: str) -> int:
    """First 8 bytes (little-endian) of the SHA-256 of the source with the id set to 0."""
    return int.from_bytes(hashlib.sha256(text_with_zero_id.encode()).digest()[:8], "little")


def _shape_c(shape) -> str:
    return "{" + ", ".join(str(int(s)) for s in shape) + "}" if shape else "{1}"


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def emit(p: Plan, *, model_name: str, board: str, cpu: str, backend: str,
         workspace_bytes: int, blobs: list[tuple[str, int]],
         fingerprint: dict[str, str]) -> ExecutorSource:
    """``zsq_model.c`` for plan ``p``.

    ``cpu``: the CPU operators' target triple; ``backend``: the accelerator runtime
    linked in; ``workspace_bytes``: TVMBackendAllocWorkspace pool (``TirObject``);
    ``blobs``: (name, bytes) of the sections the glue fetches (both checked at open:
    the glue's own check comes only at its first call); ``fingerprint``: digests
    (what -> hex) of everything else the executable is built with (the model file's
    sections, the glue): they are part of the source, so the model id covers them.
    """
    name = safe_text(model_name)
    T = p.tensors
    arena = max(p.arena_bytes, ALIGN)
    pool = _align(max(workspace_bytes, 1))
    head = [
        "/*",
        f" * zsq_model.c - static executor of model '{name}' for board {safe_text(board)}",
        f" * (CPU operators: {safe_text(cpu)}; accelerator backend: {safe_text(backend)}).",
        " * Generated by zynq-squeeze (deployment/executor.py). Do not edit.",
        " *",
        " * ZSQ_MODEL_ID is the first 8 bytes (little-endian) of the SHA-256 of this file with",
        " * the id written as 0; the model file (model.zsqm) must carry the same id.",
        *[f" * {safe_text(k)}: sha256 {safe_text(v)}" for k, v in sorted(fingerprint.items())],
        " *",
        (f" * Memory: arena {p.arena_bytes} bytes (planned storage and input slots), "
         f"workspace {workspace_bytes} bytes,"),
        f" *         constants {p.const_bytes} bytes in {len(p.consts)} sections of the model file.",
    ]
    for io in p.inputs:
        t = T[io.tensor]
        head.append(f" * Input  {safe_text(io.name)}: {t.dtype} {_shape_text(t.shape)} -> t{t.index}")
    for io in p.outputs:
        t = T[io.tensor]
        head.append(f" * Output {safe_text(io.name)}: {t.dtype} {_shape_text(t.shape)} <- t{t.index}")
    head.append(f" * Steps ({len(p.steps)}):")
    for i, s in enumerate(p.steps):
        kind = "accel" if s.offloaded else "cpu  "
        head.append(f" *   {i + 1:3d}  {kind}  {s.symbol}({', '.join(f't{a}' for a in s.args)})")
    head.append(" */")
    L = head + [
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <tvm/ffi/c_api.h>",
        "",
        '#include "zsq_plan.h"',
        "",
        _ID_LINE.format(0),
        "",
        "/* planned storage, input slots, results: 64-byte aligned slots of one arena */",
        f"static uint8_t zsq_arena[{arena}] __attribute__((aligned(64)));",
        "/* the pool TVMBackendAllocWorkspace serves (zsq_shim.c) */",
        f"uint8_t zsq_workspace_pool[{pool}] __attribute__((aligned(64)));",
        f"const size_t zsq_workspace_bytes = {workspace_bytes};",
        "",
        "/* CPU operators (TVM, tir_ops.o) and offloaded functions (glue): TVM's packed C ABI */",
    ]
    for sym in sorted({s.symbol for s in p.steps}):
        L.append(f"int32_t __tvm_ffi_{sym}(void *, const TVMFFIAny *, int32_t, TVMFFIAny *);")
    L += ["", "/* tensors: {data, device, ndim, dtype, shape, strides, byte_offset} */"]
    for t in T:
        code, bits = _DTYPES[t.dtype]
        if t.base == "arena":
            data, where = f"zsq_arena + {t.offset}", f"arena +{t.offset}"
        else:
            data, where = "NULL", f"section const.{t.offset}, set at open"
        note = f", {t.note}" if t.note and not t.note.startswith("const.") else ""
        L.append(f"static int64_t zsq_shape{t.index}[] = {_shape_c(t.shape)};")
        L.append(f"static DLTensor zsq_t{t.index} = {{{data}, {{kDLCPU, 0}}, {len(t.shape)}, "
                 f"{{{code}, {bits}, 1}}, zsq_shape{t.index}, NULL, 0}};  "
                 f"/* {t.dtype} {_shape_text(t.shape)}, {where}{note} */")
    L += ["", "/* each step's arguments: DLTensor pointers, inputs then outputs */"]
    for i, s in enumerate(p.steps):
        items = ",\n    ".join(f"{{.type_index = kTVMFFIDLTensorPtr, .v_ptr = &zsq_t{a}}}"
                               for a in s.args)
        L.append(f"static const TVMFFIAny zsq_args{i}[{max(len(s.args), 1)}] = {{\n    {items}}};")
    L += ["", "static const zsq_plan_step_t zsq_steps[] = {"]
    for i, s in enumerate(p.steps):
        L.append(f'    {{"{s.symbol}", __tvm_ffi_{s.symbol}, zsq_args{i}, {len(s.args)}, '
                 f"{int(s.offloaded)}}},")
    if not p.steps:
        L.append("    {NULL, NULL, NULL, 0, 0},")
    L += ["};", "", "static const zsq_plan_const_t zsq_consts[] = {"]
    const_tensors = [t for t in T if t.base == "const"]
    for t in const_tensors:
        L.append(f'    {{"const.{t.offset}", &zsq_t{t.index}, {t.nbytes}}},')
    if not const_tensors:
        L.append("    {NULL, NULL, 0},")
    L.append("};")
    for role, ios in (("inputs", p.inputs), ("outputs", p.outputs)):
        L += ["", f"static const zsq_plan_io_t zsq_{role}[] = {{"]
        for io in ios:
            t = T[io.tensor]
            L.append(f'    {{{{"{safe_text(io.name)}", {len(t.shape)}, {_shape_c(t.shape)}, '
                     f"{int(np.prod(t.shape, dtype=np.int64))}}}, &zsq_t{t.index}}},")
        if not ios:
            L.append("    {{NULL, 0, {0}, 0}, NULL},")
        L.append("};")
    L += ["", "static const zsq_plan_blob_t zsq_blobs[] = {"]
    L += [f'    {{"{_blob_name(b)}", {_blob_bytes(b, n)}}},' for b, n in blobs] or ["    {NULL, 0},"]
    L += [
        "};",
        "",
        "const zsq_plan_t zsq_plan = {",
        f'    ZSQ_MODEL_ID, "{name}",',
        f"    zsq_steps, {len(p.steps)},",
        f"    zsq_consts, {len(const_tensors)},",
        f"    zsq_inputs, {len(p.inputs)},",
        f"    zsq_outputs, {len(p.outputs)},",
        f"    zsq_blobs, {len(blobs)},",
        "};",
        "",
    ]
    text = "\n".join(L)
    mid = model_id_of(text)
    return ExecutorSource(text=text.replace(_ID_LINE.format(0), _ID_LINE.format(mid), 1),
                          model_id=mid)


def _blob_bytes(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 1 << 64:
        raise DeployError(f"section {name!r}: size {n!r} is not a u64")
    return n


def _blob_name(name: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.]+$", name):
        raise DeployError(f"section name {name!r} cannot be used")
    return name
