"""Built-in reference models: SqueezeNet v1.0/v1.1 (random weights) and the digits net."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from zynq_squeeze.frontend.models import (
    digits_data,
    digits_model,
    squeezenet,
    squeezenet_layers,
    squeezenet_macs,
)

ort = pytest.importorskip("onnxruntime")

VERSIONS = ("1.0", "1.1")
# ../shared/ beside the repository (as CI and the developers have it)
REFERENCE = Path(os.environ.get("ZYNQ_SQUEEZE_REFERENCE",
                                Path(__file__).resolve().parents[2] / "shared" / "reference" / "squeezenet"))
EXPECTED_MACS = {"1.0": 847_596_576, "1.1": 349_151_936}  # at 224x224


@pytest.fixture(scope="module", params=VERSIONS)
def version(request):
    return request.param


_MODELS: dict = {}


def _model(version: str) -> onnx.ModelProto:
    if version not in _MODELS:
        _MODELS[version] = squeezenet(version)
    return _MODELS[version]


def _session(model: onnx.ModelProto, extra_outputs=()):
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for name in extra_outputs:
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# --------------------------------------------------------------------------- prototxt
def _parse_prototxt(text: str) -> list[dict]:
    """Minimal protobuf text-format parser: returns the ``layer`` messages, with a
    top-level ``input:`` / ``input_shape`` declaration (old-style nets) turned into an
    ``Input`` layer.

    A message is a dict mapping field name -> list of values (scalars or dicts)."""
    text = re.sub(r"#[^\n]*", "", text)
    tokens = re.findall(r'"[^"]*"|[{}:]|[^\s{}:"]+', text)
    pos = 0

    def message(end_token):
        nonlocal pos
        msg: dict = {}
        while pos < len(tokens) and tokens[pos] != end_token:
            key = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            if tokens[pos] == "{":
                pos += 1
                value = message("}")
                pos += 1
            else:
                value = tokens[pos].strip('"')
                pos += 1
            msg.setdefault(key, []).append(value)
        return msg

    net = message(None)
    layers = net.get("layer", [])
    for name, shape in zip(net.get("input", []), net.get("input_shape", [])):
        layers.insert(0, {"name": [name], "type": ["Input"], "top": [name],
                          "input_param": [{"shape": [shape]}]})
    return layers


def _prototxt_layers(version: str) -> list[dict]:
    path = REFERENCE / f"v{version}" / "deploy.prototxt"
    if not path.exists():
        pytest.skip(f"reference prototxt not found at {path} (set ZYNQ_SQUEEZE_REFERENCE)")
    return _parse_prototxt(path.read_text())


def _one(msg: dict, key: str, default=None):
    values = msg.get(key)
    return default if values is None else values[0]


def test_prototxt_parser_sanity():
    layers = _prototxt_layers("1.1")
    conv1 = layers[1]
    assert _one(conv1, "name") == "conv1" and _one(conv1, "type") == "Convolution"
    cp = _one(conv1, "convolution_param")
    assert (_one(cp, "num_output"), _one(cp, "kernel_size"), _one(cp, "stride")) == ("64", "3", "2")


# --------------------------------------------------------------------------- SqueezeNet
def test_checker_and_io(version):
    model = _model(version)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13
    (inp,) = model.graph.input
    (out,) = model.graph.output
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    assert inp.name == "data" and dims(inp) == [1, 3, 224, 224]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.name == "prob" and dims(out) == [1, 1000]


def test_runs_with_sane_activations(version):
    sess = _session(_model(version), extra_outputs=["pool10", "fire9/concat"])
    x = np.random.default_rng(123).standard_normal((1, 3, 224, 224)).astype(np.float32)
    prob, logits, fire9 = sess.run(None, {"data": x})
    assert prob.shape == (1, 1000) and logits.shape == (1, 1000, 1, 1)
    assert np.isfinite(prob).all() and abs(float(prob.sum()) - 1.0) < 1e-4
    assert np.isfinite(logits).all() and np.isfinite(fire9).all()
    assert (logits > 0).mean() > 0.3, "logits mostly dead"
    assert 0.1 < float(logits.std()) < 100 and float(logits.max()) < 1000
    assert 0.1 < float(fire9.std()) < 100
    assert float(prob.max()) < 0.99, "softmax saturated"


def test_batch_and_image_size():
    model = squeezenet("1.1", batch=2, image_size=96, opset=13)
    sess = _session(model)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 96, 96)).astype(np.float32)
    (prob,) = sess.run(None, {"data": x})
    assert prob.shape == (2, 1000) and np.allclose(prob.sum(axis=1), 1, atol=1e-4)
    sym = squeezenet("1.0", batch="N")
    assert sym.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    onnx.checker.check_model(sym)
    with pytest.raises(ValueError):
        squeezenet("1.2")


def test_macs(version):
    assert squeezenet_macs(version) == EXPECTED_MACS[version]
    assert squeezenet_macs(version, image_size=224) == EXPECTED_MACS[version]
    # Independent count from the graph itself, via ONNX shape inference.
    inferred = onnx.shape_inference.infer_shapes(_model(version), strict_mode=True)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in inferred.graph.value_info}
    inits = {t.name: list(t.dims) for t in inferred.graph.initializer}
    total = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            oc, ic, kh, kw = inits[node.input[1]]
            _, _, oh, ow = shapes[node.output[0]]
            total += oc * ic * kh * kw * oh * ow
    assert total == EXPECTED_MACS[version]
    assert squeezenet_macs("1.1") == pytest.approx(349.2e6, rel=1e-3)


def test_determinism():
    a = squeezenet("1.1", seed=0).SerializeToString()
    assert a == squeezenet("1.1", seed=0).SerializeToString()
    assert a != squeezenet("1.1", seed=1).SerializeToString()
    assert len(a) == len(squeezenet("1.1", seed=1).SerializeToString())


def test_initializers(version):
    model = _model(version)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 2 + 3 * 8
    for node in convs:
        assert list(node.input[1:]) == [f"{node.name}/weight", f"{node.name}/bias"]
        w, b = inits[node.input[1]], inits[node.input[2]]
        assert w.dtype == np.float32 and b.shape == (w.shape[0],)
        fan_in = w[0].size
        assert 0.6 < w.std() * np.sqrt(fan_in / 2.0) < 1.4  # He-scaled
        assert np.abs(b).max() <= 0.05 and np.abs(b).max() > 0
    assert len(inits) == 2 * len(convs)


def test_matches_prototxt(version):
    """Walk the Caffe layers in order and match each against the ONNX graph by name,
    kind, parameters and wiring (Caffe in-place tops mapped to ONNX tensors)."""
    layers = _prototxt_layers(version)
    model = _model(version)
    nodes = {n.name: n for n in model.graph.node}
    assert len(nodes) == len(model.graph.node), "node names must be unique"
    kinds = {"Convolution": "Conv", "ReLU": "Relu", "Concat": "Concat", "Softmax": "Softmax"}
    blob = {}
    matched = set()
    pools = []
    for layer in layers:
        name, ltype = _one(layer, "name"), _one(layer, "type")
        bottoms, tops = layer.get("bottom", []), layer.get("top", [])
        if ltype == "Input":
            assert name == "data"
            shape = [int(d) for d in _one(_one(layer, "input_param"), "shape")["dim"]]
            assert shape[1] == 3
            blob["data"] = "data"
            continue
        if ltype == "Dropout":  # inference: omitted
            assert name not in nodes and tops == bottoms
            continue
        node = nodes[name]
        matched.add(name)
        inputs = [blob[b] for b in bottoms]
        if ltype == "Pooling":
            pp = _one(layer, "pooling_param")
            if _one(pp, "global_pooling") == "true":
                assert _one(pp, "pool") == "AVE" and node.op_type == "GlobalAveragePool"
            else:
                assert _one(pp, "pool") == "MAX" and node.op_type == "MaxPool"
                a = _attrs(node)
                k, s = int(_one(pp, "kernel_size")), int(_one(pp, "stride", 1))
                assert a["kernel_shape"] == [k, k] and a["strides"] == [s, s]
                assert a["ceil_mode"] == 1 and list(a.get("pads", [0] * 4)) == [0] * 4
                pools.append(name)
        else:
            assert node.op_type == kinds[ltype], name
        if ltype == "Convolution":
            cp = _one(layer, "convolution_param")
            a = _attrs(node)
            k, s, p = (int(_one(cp, f, d)) for f, d in
                       (("kernel_size", None), ("stride", 1), ("pad", 0)))
            assert a["kernel_shape"] == [k, k] and a["strides"] == [s, s], name
            assert a["pads"] == [p] * 4 and a.get("group", 1) == 1, name
            w = next(t for t in model.graph.initializer if t.name == node.input[1])
            assert w.dims[0] == int(_one(cp, "num_output")) and w.dims[2:] == [k, k], name
            assert list(node.input[:1]) == inputs, name
        elif ltype == "Softmax":
            (flat,) = [n for n in model.graph.node if n.output[0] == node.input[0]]
            assert flat.op_type == "Flatten" and list(flat.input) == inputs
            matched.add(flat.name)
            assert node.output[0] == "prob"
        else:
            assert list(node.input) == inputs, name
        (top,) = tops
        blob[top] = node.output[0]
    assert matched == set(nodes), f"ONNX nodes not in the prototxt: {set(nodes) - matched}"
    fires = sorted({n.split("/")[0] for n in nodes if n.startswith("fire")})
    assert len(fires) == 8
    expected_pools = {"1.0": ["pool1", "pool4", "pool8"], "1.1": ["pool1", "pool3", "pool5"]}
    assert pools == expected_pools[version]
    # the layer table agrees with the prototxt's fire module sizes
    table = {l.name: l.channels for l in squeezenet_layers(version) if l.kind == "fire"}
    for f in fires:
        sq = [l for l in layers if _one(l, "name") == f"{f}/squeeze1x1"][0]
        e1 = [l for l in layers if _one(l, "name") == f"{f}/expand1x1"][0]
        e3 = [l for l in layers if _one(l, "name") == f"{f}/expand3x3"][0]
        got = tuple(int(_one(_one(l, "convolution_param"), "num_output")) for l in (sq, e1, e3))
        assert table[f] == got


# --------------------------------------------------------------------------- digits
def test_digits_data():
    X, y = digits_data("test")
    Xt, yt = digits_data("train")
    assert X.shape == (450, 1, 8, 8) and X.dtype == np.float32 and y.dtype == np.int64
    assert Xt.shape == (1347, 1, 8, 8) and yt.shape == (1347,)
    assert X.min() >= 0 and X.max() <= 1 and X.max() == 1
    assert set(np.unique(y)) == set(range(10))
    X2, _ = digits_data("test")
    assert np.array_equal(X, X2)
    with pytest.raises(ValueError):
        digits_data("val")


def test_digits_model_accuracy():
    model = digits_model()
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13
    (inp,), (out,) = model.graph.input, model.graph.output
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, dims(inp)) == ("input", [1, 1, 8, 8])
    assert (out.name, dims(out)) == ("logits", [1, 10])
    ops = {n.op_type for n in model.graph.node}
    assert ops == {"Conv", "Relu", "Concat", "MaxPool", "GlobalAveragePool", "Flatten"}
    assert len(model.SerializeToString()) < 300_000
    X, y = digits_data("test")
    sess = _session(model)
    pred = np.array([int(np.argmax(sess.run(None, {"input": X[i:i + 1]})[0])) for i in range(len(X))])
    acc = float((pred == y).mean())
    assert acc >= 0.95, acc
