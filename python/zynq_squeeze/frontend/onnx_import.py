"""Import: ONNX file or ModelProto -> Relax IRModule, with clear errors for bad models."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import tvm

from ..errors import ZynqSqueezeError
from .qdq import QDQ_ATTR, dequantize_model


class ModelImportError(ZynqSqueezeError):
    """The model file cannot be read or converted to Relax."""


def load_onnx(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Read and check an ONNX model; raises ``ModelImportError`` naming the problem."""
    if isinstance(model, onnx.ModelProto):
        proto, where = model, "model"
    else:
        where = str(model)
        path = Path(model)
        if not path.is_file():
            raise ModelImportError(f"{where}: no such ONNX file")
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # onnx raises DecodeError, ValueError... for corrupt files
            raise ModelImportError(f"{where}: not a readable ONNX model ({type(e).__name__}: "
                                   f"{str(e)[:200]})") from None
    if not proto.graph.node:
        raise ModelImportError(f"{where}: the ONNX graph has no nodes")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise ModelImportError(f"{where}: invalid ONNX model: {str(e)[:300]}") from None
    return proto


def from_onnx(model: str | Path | onnx.ModelProto, shape_dict: dict | None = None
              ) -> tvm.IRModule:
    """ONNX -> Relax IRModule with weights bound as constants (opsets 7 to 21).

    A QDQ model (QuantizeLinear / DequantizeLinear nodes) is imported as its float model
    (``qdq.dequantize_model``); the module then carries the model's scales and int8
    weights (attribute ``qdq.QDQ_ATTR``), which compiling uses instead of calibrating.
    """
    from tvm.relax.frontend.onnx import from_onnx as _from_onnx

    proto, qdq = dequantize_model(load_onnx(model))
    if qdq is not None:
        try:
            onnx.checker.check_model(proto)
        except Exception as e:
            raise ModelImportError(f"the float model of this QDQ model is invalid: "
                                   f"{str(e)[:300]}") from None
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    try:
        mod = _from_onnx(proto, shape_dict=shape_dict, opset=opset, keep_params_in_input=False)
    except Exception as e:  # the frontend raises bare errors for unsupported ops
        msg = str(e).strip().splitlines()
        raise ModelImportError(f"cannot import the ONNX model into Relax: "
                               f"{msg[-1] if msg else type(e).__name__}") from None
    for p in mod["main"].params:
        try:
            [int(s) for s in p.ty.shape]
        except (TypeError, ValueError):
            raise ModelImportError(
                f"input {p.name!r} has a dynamic shape {p.ty.shape}; give static shapes "
                "(shape_dict={name: shape} or --shape)") from None
    if qdq is not None:
        mod = mod.with_attr(QDQ_ATTR, json.dumps(qdq.to_json(), sort_keys=True))
    return mod


def parse_shapes(proto: onnx.ModelProto, items) -> dict[str, list[int]] | None:
    """``--shape NAME=D0,D1,...`` options -> a ``shape_dict`` for ``from_onnx``.

    Each name must be a graph input, each dim a positive integer, the rank the input's, and
    every dim the model fixes must be kept (only symbolic dims such as a dynamic batch may
    be set). Raises ``OptionError`` naming the option; None when ``items`` is empty.
    """
    from ..errors import OptionError

    if not items:
        return None
    declared = {i.name: i for i in proto.graph.input if i.name in set(input_names(proto))}
    out: dict[str, list[int]] = {}
    for item in items:
        name, sep, dims = str(item).rpartition("=")
        if not sep or not name:
            raise OptionError(f"--shape {item!r}: expected NAME=D0,D1,... (e.g. "
                              f"{next(iter(declared), 'input')}=1,3,224,224)")
        if name not in declared:
            raise OptionError(f"--shape {item!r}: the model has no input {name!r} (inputs: "
                              f"{', '.join(declared) or 'none'})")
        try:
            shape = [int(d) for d in dims.split(",")]
        except ValueError:
            shape = []
        if not shape or min(shape) < 1:
            raise OptionError(f"--shape {item!r}: dims must be positive integers")
        want = declared[name].type.tensor_type.shape.dim
        if len(want) != len(shape):
            raise OptionError(f"--shape {item!r}: input {name!r} has rank {len(want)}, "
                              f"got {len(shape)} dims")
        for k, (d, v) in enumerate(zip(want, shape)):
            if d.HasField("dim_value") and d.dim_value != v:
                raise OptionError(f"--shape {item!r}: dim {k} of {name!r} is fixed at "
                                  f"{d.dim_value} by the model")
        if name in out:
            raise OptionError(f"--shape: input {name!r} given twice")
        out[name] = shape
    return out


def input_names(proto: onnx.ModelProto) -> list[str]:
    """Graph inputs that are not initializers."""
    inits = {i.name for i in proto.graph.initializer}
    return [i.name for i in proto.graph.input if i.name not in inits]
