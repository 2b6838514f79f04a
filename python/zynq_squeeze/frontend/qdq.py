"""QDQ models: the quantization an ONNX model carries, read off and folded into float.

A QDQ model (onnxruntime's ``quantize_static(..., quant_format=QuantFormat.QDQ)``, or any
exporter writing ``QuantizeLinear`` / ``DequantizeLinear``) states the int8 scale and zero
point of every quantized activation and the int8 values of its weights. ``dequantize_model``
turns it into the float model the partitioner matches, and records what the quantization
said, so that the accelerator uses the model's own scales instead of calibrating:

* ``DequantizeLinear(constant)`` (weights, int32 biases) -> a float initializer computed as
  onnxruntime does, ``float32(q - zp) * scale``; an int8/uint8 weight of a ``Conv`` is
  recorded (scales, zero points, dtype) so lowering can take its int8 values as they are.
* ``QuantizeLinear(x) -> DequantizeLinear`` with the same scale and zero point (an
  activation's fake quantization) -> ``x``; its scale and zero point are recorded as the
  range of ``x``. When the pair clamps at 0 (asymmetric int8 with zero point -128, uint8
  with 0: the quantizer dropped the ReLU it absorbed) a ``Relu`` takes its place, so the
  float graph computes what the QDQ graph does and conv+ReLU / fire fusion still applies.
  Only the lower clamp is restored: the upper one (``(qmax - zp) * scale``) is where the
  accelerator's own int8 saturation falls for a symmetric tensor; on the CPU the float
  graph does not clamp there.
* Per conv, the record names the scale of its input, of its output (after its ReLU; for a
  conv read only by a ``Concat``, the concat's: a fire module's two expands write one
  tensor, and ``part``: its own scale before the concat, which onnxruntime rounds to
  first) and its weight's quantization, keyed by a digest of its float weights
  (``weight_key``), which is what a composite function carries into the partitioner.

Malformed quantization (a scale <= 0 or not finite, a per-axis scale or zero point whose
length is not the axis's, a scale or zero point that is not a constant) raises
``QdqError`` naming the node. A ``QuantizeLinear`` not followed by a matching
``DequantizeLinear``, and every pair after an operator no offloaded chain absorbs (a
Softmax, a Flatten...), is left as it is: TVM runs it on the CPU, so the CPU part keeps
the model's fake quantization (``kept_quantize``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ZynqSqueezeError

QDQ_ATTR = "zynq_squeeze.qdq"
QDQ_VERSION = 1
_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int32": (-2**31, 2**31 - 1),
           "int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1)}
# Producers of the tensors whose Q -> DQ pairs are folded away: the operators an offloaded
# chain absorbs (and graph inputs). A pair after any other operator stays: the CPU then
# computes the model's fake quantization there, as onnxruntime does (e.g. a Softmax output).
_ACCEL_SIDE = {"Conv", "Relu", "Clip", "Add", "Concat", "MaxPool", "AveragePool",
               "GlobalAveragePool", "Gemm", "MatMul"}
# Operators that keep a non-negative input non-negative (so no ReLU needs restoring).
_KEEPS_SIGN = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat",
               "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity"}


class QdqError(ZynqSqueezeError, ValueError):
    """The model's QuantizeLinear / DequantizeLinear nodes are malformed."""


def weight_key(weight: np.ndarray) -> str:
    """A digest of a float32 weight array and its shape: finds a conv's record again in
    the composite function that carries the same weights."""
    w = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
    h = hashlib.sha1(repr(w.shape).encode())
    h.update(w.tobytes())
    return h.hexdigest()


@dataclass
class TensorQuant:
    """The quantization of one activation tensor: ``lo``/``hi`` its representable range."""

    scale: float
    zero_point: int
    dtype: str

    @property
    def lo(self) -> float:
        return (_QRANGE[self.dtype][0] - self.zero_point) * self.scale

    @property
    def hi(self) -> float:
        return (_QRANGE[self.dtype][1] - self.zero_point) * self.scale

    @property
    def symmetric(self) -> bool:
        """Zero point 0 and int8: the engine's own kind of tensor, scale usable as is."""
        return self.zero_point == 0 and self.dtype == "int8"

    def to_json(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point, "dtype": self.dtype}


@dataclass
class QdqInfo:
    """What ``dequantize_model`` read: per tensor, per conv (by ``weight_key``)."""

    tensors: dict[str, TensorQuant] = field(default_factory=dict)
    convs: dict[str, dict] = field(default_factory=dict)
    restored_relus: list[str] = field(default_factory=list)
    kept_quantize: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"version": QDQ_VERSION, "convs": self.convs,
                "tensors": {k: v.to_json() for k, v in sorted(self.tensors.items())},
                "restored_relus": self.restored_relus, "kept_quantize": self.kept_quantize}


def is_qdq(proto: onnx.ModelProto) -> bool:
    """True when the graph has QuantizeLinear or DequantizeLinear nodes."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.domain in ("", "ai.onnx")
               for n in proto.graph.node)


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class _Graph:
    """Constants (initializers and Constant nodes) and consumers of one ONNX graph."""

    def __init__(self, graph: onnx.GraphProto):
        self.consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for n in graph.node:
            if n.op_type == "Constant" and len(n.output) == 1:
                t = _attr(n, "value", None)
                if t is not None:
                    self.consts[n.output[0]] = numpy_helper.to_array(t)
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in graph.output}

    def const(self, node, k: int, what: str):
        if len(node.input) <= k or not node.input[k]:
            return None
        name = node.input[k]
        if name not in self.consts:
            raise QdqError(f"{node.op_type} {node.name or node.output[0]!r}: its {what} "
                           f"{name!r} is not a constant (zynq-squeeze needs static scales)")
        return self.consts[name]


def _scale_zp(g: _Graph, node, data_shape=None):
    """(scale float32 array, zero point int64 array, quantized dtype, axis) of a Q/DQ node,
    checked; the per-axis forms are broadcast-ready along ``axis``."""
    where = f"{node.op_type} {node.name or node.output[0]!r}"
    scale = g.const(node, 1, "scale")
    zp = g.const(node, 2, "zero point")
    if _attr(node, "block_size", 0):
        raise QdqError(f"{where}: blocked quantization is not supported")
    scale = np.asarray(scale)
    if not np.issubdtype(scale.dtype, np.floating):
        raise QdqError(f"{where}: scale of dtype {scale.dtype} (expected float)")
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise QdqError(f"{where}: scale must be finite and > 0, got "
                       f"{scale.ravel()[:4].tolist()}")
    if zp is None:
        out_dtype = _attr(node, "output_dtype", 0)
        dtype = helper.tensor_dtype_to_np_dtype(out_dtype).name if out_dtype else "uint8"
        zp = np.zeros(scale.shape, np.int64)
    else:
        dtype = np.asarray(zp).dtype.name
        if np.asarray(zp).size != scale.size:
            raise QdqError(f"{where}: zero point shape {np.asarray(zp).shape} does not match "
                           f"scale shape {scale.shape}")
        zp = np.asarray(zp).astype(np.int64).reshape(scale.shape)
    if dtype not in _QRANGE:
        raise QdqError(f"{where}: quantized type {dtype} is not supported")
    axis = int(_attr(node, "axis", 1))
    if scale.ndim > 1:
        raise QdqError(f"{where}: scale of rank {scale.ndim} (expected a scalar or 1-D)")
    if scale.size == 1:
        return scale.astype(np.float32).reshape(()), zp.reshape(()), dtype, None
    if data_shape is None:
        raise QdqError(f"{where}: a per-axis scale on a tensor of unknown shape")
    ax = axis + len(data_shape) if axis < 0 else axis
    if not 0 <= ax < len(data_shape) or data_shape[ax] != scale.size:
        raise QdqError(f"{where}: {scale.size} scales for axis {axis} of a tensor of shape "
                       f"{tuple(data_shape)}")
    shape = [1] * len(data_shape)
    shape[ax] = -1
    return scale.astype(np.float32).reshape(shape), zp.reshape(shape), dtype, ax


def _dequantize(q: np.ndarray, scale: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """onnxruntime's DequantizeLinear: ``float32(q - zp) * scale`` in float32."""
    return (q.astype(np.int64) - zp).astype(np.float32) * scale.astype(np.float32)


def _tensor_shape(proto: onnx.ModelProto, name: str):
    for vi in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                return [d.dim_value for d in dims]
    return None


def dequantize_model(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, QdqInfo | None]:
    """The float model of a QDQ model and what its quantization said (module docstring).

    Returns ``(proto, None)`` for a model without QuantizeLinear / DequantizeLinear.
    """
    if not is_qdq(proto):
        return proto, None
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # shapes only refine the per-axis checks
        inferred = proto
    g = _Graph(proto.graph)
    info = QdqInfo()
    rename: dict[str, str] = {}  # DQ output -> the tensor that replaces it
    new_inits: dict[str, np.ndarray] = {}
    weights: dict[str, dict] = {}  # float weight name -> its quantization record
    nodes: list = []
    relu_of: dict[str, str] = {}
    clamped: set[str] = set()  # outputs of kept pairs that clamp at 0

    def src(name: str) -> str:
        return rename.get(name, name)

    def nonneg(name: str) -> bool:
        if name in clamped:
            return True
        n = produced.get(name)
        if n is None:
            return False
        if n.op_type == "Relu":
            return True
        return n.op_type in _KEEPS_SIGN and all(nonneg(i) for i in n.input[:1] if i) and (
            n.op_type != "Concat" or all(nonneg(i) for i in n.input))

    produced: dict[str, onnx.NodeProto] = {}
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in g.consts:
            q = np.asarray(g.consts[node.input[0]])
            scale, zp, dtype, axis = _scale_zp(g, node, q.shape)
            if q.dtype.name != dtype:
                raise QdqError(f"DequantizeLinear {node.name or node.output[0]!r}: data of "
                               f"dtype {q.dtype.name} with a {dtype} zero point")
            new_inits[node.output[0]] = _dequantize(q, scale, zp)
            weights[node.output[0]] = {
                "dtype": dtype, "axis": axis,
                "scale": [float(s) for s in np.asarray(scale, np.float64).ravel()],
                "zero_point": [int(z) for z in np.asarray(zp).ravel()]}
            continue
        if node.op_type == "QuantizeLinear":
            users = g.consumers.get(node.output[0], [])
            scale, zp, dtype, axis = _scale_zp(g, node, _tensor_shape(inferred, node.input[0]))
            x = src(node.input[0])
            tq = TensorQuant(scale=float(scale), zero_point=int(zp), dtype=dtype) \
                if axis is None else None
            # every consumer a DequantizeLinear with the same scale and zero point
            matching = bool(users) and tq is not None
            for u in users:
                if not matching or u.op_type != "DequantizeLinear":
                    matching = False
                    break
                s2, z2, d2, a2 = _scale_zp(g, u)
                matching = a2 is None and d2 == dtype and float(s2) == tq.scale \
                    and int(z2) == tq.zero_point
            pair = (matching and node.output[0] not in g.outputs
                    and (x not in produced or produced[x].op_type in _ACCEL_SIDE)
                    and not _rescaling_avg_pool(g, users, tq.scale))
            if pair and tq.lo > 0:
                raise QdqError(f"QuantizeLinear {node.name or node.output[0]!r}: its range "
                               f"[{tq.lo:g}, {tq.hi:g}] excludes 0 (not an activation clamp "
                               "zynq-squeeze can restore)")
            if (tq is not None and tq.lo == 0 and not nonneg(x)
                    and (pair or matching and x in produced
                         and produced[x].op_type in _ACCEL_SIDE)):
                # the quantizer absorbed a ReLU into this pair's clamp at 0: restore it
                # (before a kept pair too: it clamps there anyway, and the chain keeps it)
                if x not in relu_of:
                    relu_of[x] = f"{x}_zsq_relu"
                    relu = helper.make_node("Relu", [x], [relu_of[x]],
                                            name=f"{x}_zsq_restored_relu")
                    nodes.append(relu)
                    produced[relu_of[x]] = relu
                    info.restored_relus.append(x)
                x = relu_of[x]
            if matching:
                info.tensors.setdefault(x, tq)
            if not pair:
                info.kept_quantize.append(node.name or node.output[0])
                kept = _renamed(node, src)
                kept.input[0] = x
                nodes.append(kept)
                if matching:  # what a consumer of the kept pair reads (a dense layer's input)
                    for u in users:
                        info.tensors.setdefault(u.output[0], tq)
                        if tq.lo == 0:
                            clamped.add(u.output[0])
                continue
            info.tensors.setdefault(x, tq)
            for u in users:
                rename[u.output[0]] = x
            continue
        if node.op_type == "DequantizeLinear":
            if node.output[0] not in rename:  # the DQ of a kept QuantizeLinear
                nodes.append(_renamed(node, src))
            continue
        new = _renamed(node, src)
        nodes.append(new)
        for o in new.output:
            produced[o] = new
    _record_convs(info, nodes, new_inits, weights)
    graph = proto.graph
    outputs = []
    for o in graph.output:
        o2 = onnx.ValueInfoProto()
        o2.CopyFrom(o)
        if o.name in rename:  # a graph output produced by a stripped pair: keep its name
            nodes.append(helper.make_node("Identity", [rename[o.name]], [o.name]))
        outputs.append(o2)
    used = {i for n in nodes for i in n.input}
    inits = [i for i in graph.initializer if i.name in used]
    inits += [numpy_helper.from_array(v, k) for k, v in new_inits.items() if k in used]
    kept_values = {o for n in nodes for o in n.output}
    value_info = [v for v in graph.value_info if v.name in kept_values]
    # an old-style model lists its initializers as inputs too: drop the folded ones
    inputs = [i for i in graph.input if i.name not in g.consts or i.name in used]
    new_graph = helper.make_graph(nodes, graph.name, inputs, outputs, inits,
                                  value_info=value_info)
    out = onnx.ModelProto()
    out.CopyFrom(proto)  # opsets, IR version, metadata, local functions
    out.graph.CopyFrom(new_graph)
    return out, info


def _canonical_weight(node, new_inits) -> tuple[np.ndarray, int] | None:
    """(float weight as the partitioner's composite holds it, the axis of the ONNX weight
    that is the output channel) of a Conv, or of a Gemm / MatMul with a constant weight
    (a dense layer is a 1x1 conv of weight [O, K, 1, 1]); None for any other node."""
    if len(node.input) < 2 or node.input[1] not in new_inits:
        return None
    w = new_inits[node.input[1]]
    if node.op_type == "Conv":
        return w, 0
    if w.ndim != 2:
        return None
    o_first = node.op_type == "Gemm" and _attr(node, "transB", 0) == 1
    if node.op_type == "Gemm" and (_attr(node, "alpha", 1.0) != 1.0 or _attr(node, "transA", 0)):
        return None
    if node.op_type not in ("Gemm", "MatMul"):
        return None
    wt = w if o_first else np.ascontiguousarray(w.T)
    return wt.reshape(*wt.shape, 1, 1), 0 if o_first else 1


def _rescaling_avg_pool(g: _Graph, dequantizers, scale: float) -> bool:
    """True when one of these DequantizeLinear outputs feeds an average pool whose output
    the model quantizes at another scale than ``scale``. The engine's pool keeps its
    input's scale, so such a pool keeps its Q -> DQ input pair: the pair stops the chain
    before the pool, which then runs on the CPU with the model's own requantization."""
    for dq in dequantizers:
        for pool in g.consumers.get(dq.output[0], []):
            if pool.op_type not in ("AveragePool", "GlobalAveragePool"):
                continue
            for q in g.consumers.get(pool.output[0], []):
                if q.op_type == "QuantizeLinear" and q.input[1] in g.consts \
                        and float(np.asarray(g.consts[q.input[1]]).reshape(-1)[0]) != scale:
                    return True
    return False


def _renamed(node, src):
    new = onnx.NodeProto()
    new.CopyFrom(node)
    for k, i in enumerate(new.input):
        new.input[k] = src(i)
    return new


def _record_convs(info: QdqInfo, nodes, new_inits, weights) -> None:
    """Per Conv with a constant weight: the quantization of its input, output and weight."""
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def out_quant(name: str):
        """(the recorded tensor a conv's result becomes, the one it is before a Concat or
        None): through its bias Add and ReLU / Clip, then a Concat it alone feeds (the
        last recorded along the way). The model quantizes a concat's part at its own
        scale, then the concat requantizes it: two roundings (``part`` of the record)."""
        best, seen = info.tensors.get(name), 0
        while seen < 4:
            seen += 1
            users = consumers.get(name, [])
            if len(users) != 1 or users[0].op_type not in ("Add", "Relu", "Clip", "Concat"):
                break
            if users[0].op_type == "Concat":
                return info.tensors.get(users[0].output[0], best), best
            name = users[0].output[0]
            best = info.tensors.get(name, best)
        return best, None

    for n in nodes:
        canon = _canonical_weight(n, new_inits)
        if canon is None:
            continue
        w, out_axis = canon
        key = weight_key(w)
        wrec = weights.get(n.input[1])
        if wrec is not None:
            # the engine's weight scales are per output channel (or one per tensor)
            wrec = {**wrec, "per_output_channel": wrec["axis"] in (None, out_axis)}
        tin, (tout, tpart) = info.tensors.get(n.input[0]), out_quant(n.output[0])
        rec = {"node": n.name or n.output[0],
               "in": tin.to_json() if tin else None,
               "out": tout.to_json() if tout else None,
               "weight": wrec}
        if tpart is not None:
            rec["part"] = tpart.to_json()
        prev = info.convs.get(key)
        if prev is None:
            info.convs[key] = rec
        elif any(prev.get(k) != rec.get(k) for k in ("in", "out", "weight", "part")):
            prev["ambiguous"] = True  # tied weights quantized differently at two sites
