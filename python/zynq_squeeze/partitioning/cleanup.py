"""Graph clean-up before pattern matching: operators that only exist for training or for
the exporter's convenience are folded into the convolutions around them.

``clean_up(mod)`` runs, on ``main``:

1. ``FoldConstant``.
2. The ONNX importer's TE calls back to Relax operators: it emits ``Pad``, ``auto_pad=
   SAME_*`` and ``Clip`` as ``call_tir`` of TOPI functions (``pad``, ``maximum``,
   ``minimum``). Each is regenerated with the same TOPI function and arguments (read off
   the TIR) and, only when the two PrimFuncs are structurally equal, replaced by
   ``relax.nn.pad`` / ``relax.maximum`` / ``relax.minimum`` (whose legalization is that
   same TOPI function: the CPU computes exactly what it did).
3. One rewrite of the bindings (each rule exact in float unless said otherwise):

   * inference Dropout: ``dropout(x)[0]`` -> ``x`` (what ``LegalizeOps`` computes);
   * BatchNorm (``training=False``, channel axis) after a conv(+bias) whose weights are
     constant: folded into the weights and bias (``W * s``, ``(b - mean) * s + beta``,
     ``s = gamma / sqrt(var + eps)``, in float64 rounded once to float32 -- the one rule
     that changes float results, by rounding only);
   * ``maximum(x, 0)`` -> ``relu(x)``; ``minimum(relu(x), c)`` and ``clip(relu(x), 0, c)``
     -> ``clip(x, 0, c)``: Clip(0, 6) / ReLU6 in one form, which ``patterns`` accepts as a
     conv's activation (see below); any other ``minimum(maximum(x, lo), hi)`` ->
     ``clip(x, lo, hi)`` (the CPU op it is);
   * a zero constant ``pad`` of H and W only, read by a conv: added to the conv's padding
     (explicit Pad and ``auto_pad=SAME_UPPER/SAME_LOWER`` alike);
   * ONNX ``Sum`` of same-shape tensors, which the importer emits as ``sum(stack(
     [broadcast_to(x_i)]), axis=0)``: ``x_0 + x_1 + ...`` (chained ``relax.add``, so a
     residual Sum meets the ``conv_add`` pattern; light_resnet50);
   * Caffe2 ``Scale`` after a conv(+bias) with constant weights (light_inception_v2,
     light_densenet121): ``* m`` with one ``m`` per output channel (or one for all) ->
     weights ``W * m`` and bias ``b * m``; a second constant per-channel ``+ a`` after the
     bias -> bias ``b + a`` (float64, rounded once, like BatchNorm). Only when the conv's
     result has no other reader (else the conv would be computed twice);
   * BatchNorm whose only reader is a conv (groups 1, constant weights), e.g. a
     pre-activation BN without the ReLU: ``conv(x * s + t, W)`` -> ``conv(x, W * s) +
     sum(W * t)``. A padded conv pads the normalized tensor with zeros, i.e. ``x`` with
     ``-t / s``, so a conv with padding takes the fold only when ``t == 0``;
   * an average pool whose every window is one element (``adaptive_avg_pool2d`` to its
     input's size, ``avg_pool2d`` kernel 1 / stride 1 / no padding: torchvision alexnet
     and vgg's 6 -> 6 and 7 -> 7 adaptive pools): its input.
4. Only when a BatchNorm is left (no conv could absorb it: DenseNet's pre-activation
   BN-ReLU-conv reads a concat, and the ReLU separates it from the conv): the same
   rewrite again, with such a BatchNorm -> ``conv2d(x, s, groups=C) + t``, a depthwise 1x1
   conv whose weights are the per-channel scale ``s`` and bias the shift ``t`` (float64
   rounded once to float32, as the folds; exact in float up to that rounding). The
   engine runs it in its ``CONV_DW`` mode (per-channel weight scales: any ``s``,
   negative or zero, is an int8 weight of +-127 or 0 at its own scale), its ReLU is the
   requantization's, and the ``conv`` pattern offloads it in the same function as the
   concat it reads and the conv after it; a Caffe2 Scale after it folds into it by the
   rule above. Only next to the accelerator: its input made by a conv, concat, pool,
   activation or add, or its result read -- through per-channel multiplies, adds and
   activations -- by a conv, concat or pool. A BatchNorm between CPU operators stays
   (``batch_norm_reason``): offloaded, it would be a function of its own.
5. ``DeadCodeElimination`` and ``CanonicalizeBindings`` after each pass that fired,
   ``FoldConstant`` once at the end.

Clip(0, c) on the accelerator. The engine's requantization ends with ReLU and saturation
to [-128, 127]; there is no per-layer upper clamp. A conv's output scale is its calibrated
absolute maximum / 127, and the calibrator evaluates the clamp in float
(``composite.conv2d_float``), so the range of a conv+Clip(0, c) is at most ``c``: when the
calibration set reaches ``c`` the output scale is ``c / 127`` and saturation at 127 IS the
clamp at ``c``, exactly; when it never reaches ``c`` the clamp falls at the calibrated
range, as every int8 tensor saturates there. ``codegen.lower`` also caps the range at ``c``.
The integer arithmetic is the ReLU layer's, so the golden model is unchanged.

What stays on the CPU keeps an operator name (``relax.nn.pad``, ``relax.clip``...); a
``call_tir`` left over is reported by its PrimFunc's name (``partitioner._report``).
"""
from __future__ import annotations

import re

import numpy as np
import tvm
import tvm_ffi
import tvm_ffi.structural
from tvm import relax, topi

from .limits import conv_limit_reason

# --------------------------------------------------------------------------- helpers


def _op_name(expr) -> str | None:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


def _is_const(expr) -> bool:
    return type(expr).__name__ in ("Constant", "GenericConst") and hasattr(expr, "value") \
        and hasattr(expr.value, "numpy")


def _scalar(expr) -> float | None:
    """The value of a constant holding one number (any rank), or of a float immediate."""
    if isinstance(expr, (tvm.tirx.FloatImm, tvm.tirx.IntImm)):
        return float(expr.value)
    if _is_const(expr):
        v = expr.value.numpy()
        if v.size == 1 and np.issubdtype(v.dtype, np.floating):
            return float(v.reshape(()))
    return None


def _static_shape(expr) -> tuple[int, ...] | None:
    try:
        return tuple(int(s) for s in expr.ty.shape)
    except (AttributeError, TypeError, ValueError):
        return None


def _per_channel(expr, channels: int) -> np.ndarray | None:
    """A float32 constant's values as one float64 per channel (shape ``(channels,)``) when
    it broadcasts along the channel axis of an NCHW tensor only (``(1, C, 1, 1)``,
    ``(C, 1, 1)``, or one value for all), else None."""
    if not _is_const(expr):
        return None
    v = expr.value.numpy()
    if v.dtype != np.float32 or v.ndim > 4:
        return None
    dims = (1,) * (4 - v.ndim) + v.shape
    if dims[0] != 1 or dims[2] != 1 or dims[3] != 1 or dims[1] not in (1, channels):
        return None
    return np.broadcast_to(v.reshape(-1).astype(np.float64), (channels,)).copy()


def _bn_scale_shift(bn: relax.Call) -> tuple[np.ndarray, np.ndarray] | None:
    """Inference BatchNorm on the channel axis with constant statistics as
    ``x * s + t`` (float64, one value per channel), else None."""
    a = bn.attrs
    if bool(getattr(a, "training", False)) or int(a.axis) != 1:
        return None
    if not all(_is_const(x) for x in bn.args[1:5]):
        return None
    gamma, beta, mean, var = (x.value.numpy().astype(np.float64) for x in bn.args[1:5])
    if len({x.shape for x in (gamma, beta, mean, var)}) != 1 or gamma.ndim != 1:
        return None
    if not bool(a.scale):
        gamma = np.ones_like(gamma)
    if not bool(a.center):
        beta = np.zeros_like(beta)
    s = gamma / np.sqrt(var + float(a.epsilon))
    return s, beta - mean * s


def _readers(func: relax.Function) -> dict:
    """Variable -> the bound values that read it (a binding per read)."""
    out: dict = {}
    for blk in func.body.blocks:
        for b in blk.bindings:
            for v in relax.analysis.free_vars(b.value):
                out.setdefault(v, []).append((b.var, b.value))
    return out


def _consumer_counts(func: relax.Function) -> dict:
    """Variable -> number of bindings (and the function's result) that read it."""
    counts: dict = {}
    reads = [relax.analysis.free_vars(b.value) for blk in func.body.blocks for b in blk.bindings]
    reads.append(relax.analysis.free_vars(func.body.body))
    for vs in reads:
        for v in vs:
            counts[v] = counts.get(v, 0) + 1
    return counts


def _base_name(gv) -> str:
    """A PrimFunc's name without the suffix that makes it unique (``maximum1``)."""
    return re.sub(r"_?\d+$", "", gv.name_hint)


# --------------------------------------------------------------------------- TE calls
def _regenerate(te_fn, arg_types, *extra):
    """The PrimFunc ``BlockBuilder.emit_te(te_fn, *args, *extra)`` makes for arguments of
    these types (the importer's own path)."""
    bb = relax.BlockBuilder()
    params = [relax.Var(f"a{i}", t) for i, t in enumerate(arg_types)]
    with bb.function("f", params):
        out = bb.emit_te(te_fn, *params, *extra)
        bb.emit_func_output(out)
    mod = bb.get()
    return mod[mod["f"].body.blocks[0].bindings[0].value.args[0]]


def _tir_nodes(func, *type_names):
    """Nodes of the given type names in a PrimFunc, in visiting order."""
    out = []
    tvm_ffi.structural_walk(
        func, lambda v: out.append(v) if type(v).__name__ in type_names else None)
    return out


def _same(a, b) -> bool:
    return bool(tvm_ffi.structural.structural_equal(a, b))


def _pad_offsets(func, ndim: int) -> list[int] | None:
    """pad_before of a TOPI pad PrimFunc, read off its input load ``x[i - b, ...]``."""
    loads = _tir_nodes(func, "TensorLoad", "BufferLoad")
    if len(loads) != 1 or len(loads[0].indices) != ndim:
        return None
    before = []
    for idx in loads[0].indices:
        kind = type(idx).__name__
        if kind == "Var":
            before.append(0)
        elif kind == "Sub" and type(idx.b).__name__ == "IntImm":
            before.append(int(idx.b.value))
        else:
            return None
    return before


def _raise_te_call(mod: tvm.IRModule, call: relax.Call):
    """The Relax operator equal to this importer ``call_tir``, or None."""
    gv, args = call.args[0], call.args[1]
    if not isinstance(gv, tvm.ir.GlobalVar) or not isinstance(args, relax.Tuple):
        return None
    func = mod[gv]
    args = list(args.fields)
    types = [a.ty for a in args]
    name = _base_name(gv)
    try:
        if name == "pad" and len(args) == 1:
            ishape, oshape = _static_shape(args[0]), _static_shape(call)
            if ishape is None or oshape is None or len(ishape) != len(oshape):
                return None
            before = _pad_offsets(func, len(ishape))
            values = [float(v.value) for v in _tir_nodes(func, "FloatImm")]
            if before is None or len(values) != 1:
                return None
            after = [o - i - b for o, i, b in zip(oshape, ishape, before)]
            if min(after) < 0 or not _same(func, _regenerate(
                    topi.nn.pad, types, before, after, values[0])):
                return None
            width = [v for b, a in zip(before, after) for v in (b, a)]
            return relax.op.nn.pad(args[0], width, "constant", values[0])
        if name in ("maximum", "minimum"):
            te_fn = topi.maximum if name == "maximum" else topi.minimum
            op = relax.op.maximum if name == "maximum" else relax.op.minimum
            if len(args) == 2 and _is_const(args[1]):
                if _same(func, _regenerate(te_fn, types)):
                    return op(args[0], args[1])
            elif len(args) == 1:  # Clip before opset 11: the bound is inlined
                values = _tir_nodes(func, "FloatImm")
                if len(values) == 1 and _same(func, _regenerate(te_fn, types,
                                                                float(values[0].value))):
                    return op(args[0], relax.const(float(values[0].value), types[0].dtype))
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError):
        return None  # not the TOPI function it is named after: leave it alone
    return None


# --------------------------------------------------------------------------- rewrites
# A BatchNorm no conv absorbs becomes a depthwise conv when it sits next to the accelerator:
# its input made by one of these, or its result read (through _ELEMENTWISE) by one of those.
_POOLS = ("relax.nn.max_pool2d", "relax.nn.avg_pool2d", "relax.nn.adaptive_avg_pool2d",
          "relax.mean")
_ACCEL_PRODUCERS = ("relax.nn.conv2d", "relax.concat", "relax.add", "relax.nn.relu",
                    "relax.clip", *_POOLS)
_ACCEL_READERS = ("relax.nn.conv2d", "relax.concat", *_POOLS)
_ELEMENTWISE = ("relax.multiply", "relax.add", "relax.nn.relu", "relax.clip")


def _conv(data, weight, attrs, padding=None):
    """relax.nn.conv2d with ``attrs`` (optionally another padding)."""
    return relax.op.nn.conv2d(
        data, weight, strides=list(attrs.strides),
        padding=list(padding if padding is not None else attrs.padding),
        dilation=list(attrs.dilation), groups=int(attrs.groups),
        data_layout=str(attrs.data_layout), kernel_layout=str(attrs.kernel_layout),
        out_layout=str(attrs.out_layout) if attrs.out_layout else None,
        out_dtype=attrs.out_dtype if attrs.out_dtype else None)


@relax.expr_functor.mutator
class _Cleaner(relax.PyExprMutator):
    """The rewrite of step 3 (and the TE raising of step 2; with ``depthwise``, step 4),
    one post-order walk."""

    def __init__(self, mod: tvm.IRModule, depthwise: bool = False):
        super().__init__(mod)
        self.mod_ = mod
        self.fired: list[str] = []
        has_main = "main" in [gv.name_hint for gv in mod.functions]
        self.consumers = _consumer_counts(mod["main"]) if has_main else {}
        # second pass: BatchNorms no conv absorbed become depthwise 1x1 convs
        self.depthwise = depthwise
        self.readers = _readers(mod["main"]) if depthwise and has_main else {}

    # ---- lookups on the rewritten program
    def _bound(self, expr):
        if isinstance(expr, relax.Var):
            v = self.lookup_binding(expr)
            return v if v is not None else expr
        return expr

    def _bound_op(self, expr) -> tuple[str | None, object]:
        v = self._bound(expr)
        return _op_name(v), v

    # ---- rules
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        name = _op_name(call)
        if name == "relax.call_tir":
            raised = _raise_te_call(self.builder_.get(), call)
            if raised is None:
                return call
            self.fired.append(f"te:{_base_name(call.args[0])}")
            call = self.builder_.normalize(raised)
            name = _op_name(call)
        if (name == "relax.maximum" and _scalar(call.args[1]) == 0.0
                and _static_shape(call) == _static_shape(call.args[0])):
            self.fired.append("max0->relu")
            return relax.op.nn.relu(call.args[0])
        if name == "relax.minimum":
            hi = _scalar(call.args[1])
            src_op, src = self._bound_op(call.args[0])
            same_shape = _static_shape(call) == _static_shape(call.args[0])
            if src_op == "relax.nn.relu" and hi is not None and 0 < hi < np.inf and same_shape:
                self.fired.append("relu+min->clip")
                return relax.op.clip(src.args[0], 0.0, hi)
            lo = _scalar(src.args[1]) if src_op == "relax.maximum" else None
            if (lo is not None and hi is not None and lo <= hi and same_shape
                    and _static_shape(src) == _static_shape(src.args[0])):
                # any other Clip(lo, hi): one operator, named as such if it stays on the CPU
                self.fired.append("max+min->clip")
                return relax.op.clip(src.args[0], lo, hi)
        if name == "relax.clip":
            return self._clip_or_relu(call)
        if name == "relax.nn.conv2d":
            return self._fold_batch_norm_before(self._fold_pad(call))
        if name == "relax.sum":
            return self._sum_of_stack(call)
        if name == "relax.multiply":
            return self._fold_scale(call)
        if name == "relax.add":
            return self._fold_shift(call)
        if name in ("relax.nn.avg_pool2d", "relax.nn.adaptive_avg_pool2d"):
            return self._identity_pool(call)
        return call

    def _sum_of_stack(self, call):
        """ONNX Sum of same-shape tensors: ``sum(stack([broadcast_to(x_i, S)...]), 0)``
        -> ``x_0 + x_1 + ...`` (the same additions, left to right)."""
        a = call.attrs
        if (a.axis is None or [int(v) for v in a.axis] != [0] or bool(a.keepdims)):
            return call
        op, stack = self._bound_op(call.args[0])
        if op != "relax.stack" or int(stack.attrs.axis) != 0:
            return call
        fields = self._bound(stack.args[0])
        if not isinstance(fields, relax.Tuple) or len(fields.fields) < 2:
            return call
        out = _static_shape(call)
        terms = []
        for f in fields.fields:
            f_op, f_val = self._bound_op(f)
            if f_op == "relax.broadcast_to":
                f = f_val.args[0]
            if out is None or _static_shape(f) != out:
                return call  # a real broadcast: not the plain residual sum
            terms.append(f)
        self.fired.append("sum->add")
        acc = terms[0]
        for t in terms[1:-1]:
            acc = self.builder_.emit(relax.op.add(acc, t))
        return relax.op.add(acc, terms[-1])

    def _identity_pool(self, call):
        """An average pool whose every window is one element (an adaptive pool to its
        input's size, or kernel 1 / stride 1 / no padding) is its input."""
        shape = _static_shape(call)
        if shape is None or shape != _static_shape(call.args[0]):
            return call
        a = call.attrs
        if str(a.layout) != "NCHW" or (a.out_layout and str(a.out_layout) != "NCHW"):
            return call
        if _op_name(call) == "relax.nn.avg_pool2d" and (
                [int(v) for v in a.pool_size] != [1, 1] or [int(v) for v in a.strides] != [1, 1]
                or any(int(v) for v in a.padding)):
            return call
        self.fired.append("identity pool")
        return call.args[0]

    def _single_reader(self, var) -> bool:
        """Whether one binding reads ``var`` (folding its producer into that reader then
        leaves no copy behind). Variables the clean-up emitted itself are not in the
        original program's counts: each has one reader, the rewrite that made it."""
        return isinstance(var, relax.Var) and self.consumers.get(var, 1) == 1

    # ---- per-channel affine (Caffe2 Scale) after a conv
    def _conv_and_bias(self, expr):
        """(conv call, bias constant or None) when ``expr`` is a conv2d with constant OIHW
        weights, optionally plus a constant, else None."""
        if not self._single_reader(expr):
            return None  # the conv's result is read elsewhere too: folding would copy it
        op, val = self._bound_op(expr)
        bias = None
        if op == "relax.add":
            lhs, rhs = val.args
            if _is_const(rhs) and _op_name(self._bound(lhs)) == "relax.nn.conv2d":
                bias, expr = rhs, lhs
            elif _is_const(lhs) and _op_name(self._bound(rhs)) == "relax.nn.conv2d":
                bias, expr = lhs, rhs
            else:
                return None
            if not self._single_reader(expr):
                return None
            op, val = self._bound_op(expr)
        if op != "relax.nn.conv2d" or not _is_const(val.args[1]):
            return None
        ca = val.attrs
        if (str(ca.kernel_layout) != "OIHW" or str(ca.data_layout) != "NCHW"
                or str(ca.out_layout) not in ("NCHW", "")
                or val.args[1].value.numpy().dtype != np.float32):
            return None
        o = int(val.args[1].value.numpy().shape[0])
        if bias is not None and _per_channel(bias, o) is None:
            return None
        return val, bias

    @staticmethod
    def _affine_operands(call):
        """(tensor operand, constant operand) of a binary op with one constant, or None."""
        lhs, rhs = call.args
        if _is_const(rhs) and not _is_const(lhs):
            return lhs, rhs
        if _is_const(lhs) and not _is_const(rhs):
            return rhs, lhs
        return None

    def _fold_scale(self, call):
        """``(conv(x, W) [+ b]) * m`` with one ``m`` per output channel ->
        ``conv(x, W * m) [+ b * m]``."""
        ops = self._affine_operands(call)
        found = self._conv_and_bias(ops[0]) if ops else None
        if found is None or _static_shape(call) != _static_shape(ops[0]):
            return call
        conv, bias = found
        w = conv.args[1].value.numpy()
        m = _per_channel(ops[1], w.shape[0])
        if m is None:
            return call
        w2 = (w.astype(np.float64) * m.reshape(-1, 1, 1, 1)).astype(np.float32)
        self.fired.append("scale->conv")
        new_conv = _conv(conv.args[0], relax.const(w2), conv.attrs)
        if bias is None:
            return new_conv
        b2 = (_per_channel(bias, w.shape[0]) * m).astype(np.float32)
        return relax.op.add(self.builder_.emit(new_conv), relax.const(b2.reshape(1, -1, 1, 1)))

    def _fold_shift(self, call):
        """``(conv(x, W) + b) + a`` with one ``a`` per output channel -> ``conv + (b + a)``
        (a conv's second constant add: the first is already its bias)."""
        ops = self._affine_operands(call)
        if ops is None or _static_shape(call) != _static_shape(ops[0]):
            return call
        found = self._conv_and_bias(ops[0])
        if found is None or found[1] is None:
            return call
        conv, bias = found
        o = int(conv.args[1].value.numpy().shape[0])
        a = _per_channel(ops[1], o)
        if a is None:
            return call
        b2 = (_per_channel(bias, o) + a).astype(np.float32).reshape(1, o, 1, 1)
        self.fired.append("shift->bias")
        return relax.op.add(self._bound_var_of_conv(ops[0], conv), relax.const(b2))

    def _bound_var_of_conv(self, biased, conv):
        """The conv operand of the bias add ``biased`` (the variable bound to ``conv``)."""
        lhs, rhs = self._bound(biased).args
        return rhs if _is_const(lhs) else lhs

    def _clip_or_relu(self, call):
        """clip(relu(x), 0, c) -> clip(x, 0, c)."""
        if _op_name(call) != "relax.clip":
            return call
        src_op, src = self._bound_op(call.args[0])
        if src_op == "relax.nn.relu" and _scalar(call.args[1]) == 0.0:
            self.fired.append("relu+clip->clip")
            return relax.op.clip(src.args[0], call.args[1], call.args[2])
        return call

    def _fold_pad(self, conv):
        a = conv.attrs
        op, pad = self._bound_op(conv.args[0])
        if op != "relax.nn.pad" or str(a.data_layout) != "NCHW":
            return conv
        pa = pad.attrs
        width = [int(v) for v in pa.pad_width]
        if (str(pa.pad_mode) != "constant" or float(pa.pad_value) != 0.0 or len(width) != 8
                or any(width[:4]) or min(width) < 0):
            return conv
        t, b, l, r = width[4:]
        pt, pl, pb, pr = (int(v) for v in a.padding)
        self.fired.append("pad->conv")
        return _conv(pad.args[0], conv.args[1], a, [pt + t, pl + l, pb + b, pr + r])

    def _fold_batch_norm_before(self, conv):
        """``conv(batch_norm(x), W)`` where the conv is the BatchNorm's only consumer ->
        ``conv(x, W * s) + sum(W * t)``, ``s`` and ``t`` its per-input-channel scale and
        shift. Exact only without padding: a padded conv pads the normalized tensor with
        zeros, i.e. ``x`` with ``-t / s``, so with padding it folds only when ``t == 0``."""
        if _op_name(conv) != "relax.nn.conv2d" or not isinstance(conv.args[0], relax.Var):
            return conv
        tgi = self._bound(conv.args[0])
        if (not isinstance(tgi, relax.TupleGetItem) or tgi.index != 0
                or not self._single_reader(conv.args[0])
                or not self._single_reader(tgi.tuple_value)):
            return conv
        op, bn = self._bound_op(tgi.tuple_value)
        st = _bn_scale_shift(bn) if op == "relax.nn.batch_norm" else None
        ca = conv.attrs
        if (st is None or not _is_const(conv.args[1]) or int(ca.groups) != 1
                or str(ca.kernel_layout) != "OIHW" or str(ca.data_layout) != "NCHW"
                or str(ca.out_layout) not in ("NCHW", "")):
            return conv
        w = conv.args[1].value.numpy()
        s, t = st
        if w.dtype != np.float32 or s.shape != (w.shape[1],):
            return conv
        if any(int(v) for v in ca.padding) and np.any(t != 0):
            return conv  # the zero border would become -t/s: not the same conv
        w64 = w.astype(np.float64)
        w2 = (w64 * s.reshape(1, -1, 1, 1)).astype(np.float32)
        b2 = np.einsum("oikl,i->o", w64, t).astype(np.float32).reshape(1, -1, 1, 1)
        self.fired.append("batch_norm->next conv")
        new_conv = self.builder_.emit(_conv(bn.args[0], relax.const(w2), ca))
        return relax.op.add(new_conv, relax.const(b2))

    def visit_tuple_getitem_(self, tgi):
        tgi = self.visit_expr_post_order(tgi)
        if tgi.index != 0:
            return tgi
        op, src = self._bound_op(tgi.tuple_value)
        if op == "relax.nn.dropout":
            self.fired.append("dropout")
            return src.args[0]
        if op == "relax.nn.batch_norm":
            folded = self._fold_batch_norm(tgi, src)
            if folded is tgi and self.depthwise:
                return self._batch_norm_to_depthwise(tgi, src)
            return folded
        return tgi

    # ---- BatchNorm that no conv absorbs (second pass)
    def _batch_norm_to_depthwise(self, tgi, bn):
        """``batch_norm(x)`` -> ``conv2d(x, s, groups=C) + t``: the per-channel affine
        ``x * s + t`` as a depthwise 1x1 conv (weight ``s[c]``, bias ``t[c]``; float64
        rounded once to float32), which the accelerator runs (``CONV_DW``) and whose
        ReLU / Clip(0, c) and following conv offload with it. Only for a static 4-D
        float32 NCHW input next to something the accelerator runs (``_next_to_accelerator``):
        alone between CPU operators it would be an offloaded function of its own."""
        st = _bn_scale_shift(bn)
        data = bn.args[0]
        shape = _static_shape(data)
        if (st is None or shape is None or len(shape) != 4
                or getattr(data.ty, "dtype", None) != "float32"):
            return tgi
        s, t = st
        c = shape[1]
        if (s.shape != (c,) or _depthwise_limit_reason(shape) is not None
                or not self._next_to_accelerator(data, tgi.tuple_value)):
            return tgi  # else the CPU would run a conv the model does not have
        w = s.astype(np.float32).reshape(c, 1, 1, 1)
        self.fired.append("batch_norm->depthwise")
        conv = self.builder_.emit(relax.op.nn.conv2d(data, relax.const(w), groups=c))
        return relax.op.add(conv, relax.const(t.astype(np.float32).reshape(1, c, 1, 1)))

    def _next_to_accelerator(self, data, bn_var) -> bool:
        """Whether a BatchNorm's input comes from an operator the accelerator runs (a conv
        chain, concat, pool, residual add) or its result reaches one (a conv, concat or
        pool) through per-channel multiplies / adds and activations."""
        if _op_name(self._bound(data)) in _ACCEL_PRODUCERS:
            return True
        seen: set = set()
        todo = [v for v, val in self.readers.get(bn_var, [])
                if isinstance(val, relax.TupleGetItem) and val.index == 0]
        while todo:
            var = todo.pop()
            for reader, val in self.readers.get(var, []):
                op = _op_name(val)
                if op in _ACCEL_READERS:
                    return True
                if op in _ELEMENTWISE and reader not in seen:
                    seen.add(reader)
                    todo.append(reader)
        return False

    def _fold_batch_norm(self, tgi, bn):
        st = _bn_scale_shift(bn)
        if st is None:
            return tgi
        op, pre = self._bound_op(bn.args[0])
        bias = None
        if op == "relax.add":
            lhs, rhs = pre.args
            if _op_name(self._bound(lhs)) == "relax.nn.conv2d" and _is_const(rhs):
                conv_expr, bias = lhs, rhs
            elif _op_name(self._bound(rhs)) == "relax.nn.conv2d" and _is_const(lhs):
                conv_expr, bias = rhs, lhs
            else:
                return tgi
            op, conv = self._bound_op(conv_expr)
        else:
            conv = pre
        if op != "relax.nn.conv2d" or not _is_const(conv.args[1]):
            return tgi
        ca = conv.attrs
        if (str(ca.kernel_layout) != "OIHW" or str(ca.data_layout) != "NCHW"
                or str(ca.out_layout) not in ("NCHW", "")):
            return tgi
        w = conv.args[1].value.numpy()
        o = w.shape[0]
        b = np.zeros(o) if bias is None else bias.value.numpy().astype(np.float64)
        if bias is not None and b.shape not in ((1, o, 1, 1), (o, 1, 1)):
            return tgi  # not one value per output channel
        s, t = st
        if s.shape != (o,) or w.dtype != np.float32:
            return tgi
        w2 = (w.astype(np.float64) * s.reshape(-1, 1, 1, 1)).astype(np.float32)
        b2 = (b.reshape(-1) * s + t).astype(np.float32).reshape(1, o, 1, 1)
        self.fired.append("batch_norm->conv")
        new_conv = self.builder_.emit(_conv(conv.args[0], relax.const(w2), ca))
        return relax.op.add(new_conv, relax.const(b2))

    def run(self) -> tvm.IRModule:
        gv = self.mod_.get_global_var("main")
        self.builder_.update_func(gv, self.visit_expr(self.mod_[gv]))
        return self.builder_.get()


def _depthwise_limit_reason(shape: tuple[int, ...]) -> str | None:
    """Why a depthwise 1x1 conv of an NCHW tensor of ``shape`` is beyond the engine."""
    return conv_limit_reason(shape[1:], shape[1:], (1, 1), (0, 0, 0, 0))


def batch_norm_reason(bn: relax.Call) -> str:
    """Why a BatchNorm left after the clean-up stays on the CPU (for the partition
    report): no conv absorbs it and it did not become a depthwise conv."""
    if _bn_scale_shift(bn) is None:
        return ("BatchNorm in training mode, not on the channel axis or with non-constant "
                "statistics: no per-channel affine to fold or run as a depthwise conv")
    data = bn.args[0]
    shape, dtype = _static_shape(data), getattr(data.ty, "dtype", None)
    if shape is None or len(shape) != 4 or dtype != "float32":
        return (f"BatchNorm of a {shape} {dtype} tensor: the accelerator's depthwise conv "
                "takes static 4-D float32 NCHW tensors")
    r = _depthwise_limit_reason(shape)
    if r:
        return f"BatchNorm as a depthwise conv: {r}"
    return ("BatchNorm between operators that stay on the CPU: no conv absorbs it, and as "
            "a depthwise conv it would be an offloaded function of its own")


def _has_batch_norm(mod: tvm.IRModule) -> bool:
    return any(_op_name(b.value) == "relax.nn.batch_norm"
               for blk in mod["main"].body.blocks for b in blk.bindings)


def _clean(mod: tvm.IRModule) -> tuple[tvm.IRModule, list[str]]:
    """(cleaned module, rules fired). Two passes: the folds, then -- only when a
    BatchNorm is left, i.e. none of them could take it -- the same rules with BatchNorm
    -> depthwise conv (whose per-channel Mul / Add then fold into it)."""
    mod = relax.transform.FoldConstant()(mod)
    out, fired = mod, []
    for depthwise in (False, True):
        if depthwise and ("main" not in [gv.name_hint for gv in out.functions]
                          or not _has_batch_norm(out)):
            break
        cleaner = _Cleaner(out, depthwise=depthwise)
        new = cleaner.run()
        if cleaner.fired:
            fired += cleaner.fired
            new = relax.transform.DeadCodeElimination(["main"])(new)
            out = relax.transform.CanonicalizeBindings()(new)
    # once, not per pass (about 1.6 s on DenseNet-121)
    return (relax.transform.FoldConstant()(out) if fired else mod), fired


def clean_up(mod: tvm.IRModule) -> tvm.IRModule:
    """FoldConstant, then fold the operators the accelerator absorbs (module docstring).

    Returns ``mod`` folded only, when nothing applies.
    """
    return _clean(mod)[0]


def rules_fired(mod: tvm.IRModule) -> list[str]:
    """The clean-up rules that apply to ``mod`` (for tests and diagnostics)."""
    return _clean(mod)[1]
