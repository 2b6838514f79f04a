"""benchmarks/model_zoo.py: the zoo's own models (light zoo with random weights, tied
weights), its goal checks, its error lines, and one model end to end through the CLI."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "model_zoo.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("model_zoo_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


zoo = _load_script()


def _ort(model, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _init(model, name):
    return next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


def test_light_zoo_weights_become_seeded_random_initializers():
    src = onnx.load(str(zoo.light_zoo_dir() / "light_squeezenet.onnx"))
    m = zoo.randomize_constants(src, seed=0)
    assert not [n for n in m.graph.node if n.op_type == "ConstantOfShape"]
    assert [i.name for i in m.graph.input] == ["data_0"]  # weights are no longer inputs
    conv1 = next(n for n in m.graph.node if n.op_type == "Conv")
    w = _init(m, conv1.input[1])
    assert len(np.unique(w)) > 100  # not the constant 0.02 any more
    fan_in = int(np.prod(w.shape[1:]))
    assert 0.8 < w.std() * np.sqrt(fan_in / 2) < 1.2  # He-scaled
    again = zoo.randomize_constants(src, seed=0)
    np.testing.assert_array_equal(_init(again, conv1.input[1]), w)
    assert not np.array_equal(_init(zoo.randomize_constants(src, seed=1), conv1.input[1]), w)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    y = _ort(m, x)
    assert np.all(np.isfinite(y)) and y.std() > 0  # a real output, not a constant


def test_batchnorm_variance_positive_and_scale_near_one():
    src = onnx.load(str(zoo.light_zoo_dir() / "light_resnet50.onnx"))
    m = zoo.randomize_constants(src)
    generated = {n.output[0] for n in src.graph.node if n.op_type == "ConstantOfShape"}
    bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    bn = next(n for n in bns if n.input[4] in generated)  # a few carry real statistics
    scale, var = _init(m, bn.input[1]), _init(m, bn.input[4])
    assert var.min() >= 1.0 and abs(scale.mean() - 1) < 0.1


def test_tied_conv_applies_one_weight_twice():
    m = zoo.tied_conv_model()
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert convs[0].input[1:] == convs[1].input[1:] and convs[2].input[1] != convs[0].input[1]
    x = np.random.default_rng(0).standard_normal((1, 16, 56, 56)).astype(np.float32)
    assert _ort(m, x).shape == (1, 32, 56, 56)


def test_goal_checks_fail_when_a_goal_is_missed():
    row = {"offload_pct": 99.5, "functions": 3, "cosine_min": 0.995, "bit_exact": True}
    g = zoo._goal_checks("resnet18", row)
    assert not g["offload_pct"]["pass"] and not g["functions"]["pass"]
    assert g["cosine"]["pass"] and g["bit_exact"]["pass"]
    g = zoo._goal_checks("squeezenet1_1_qdq", {**row, "functions": 0})
    assert not g["functions"]["pass"]  # exactly one function wanted, 0 is not it
    assert not zoo._goal_checks("anything", {**row, "bit_exact": False})["bit_exact"]["pass"]


def test_missing_export_is_an_error_line_not_a_traceback(tmp_path):
    row = zoo.run_one("resnet18", "ts17", tmp_path, {})
    assert row["pass"] is False and "zoo_export.py" in row["error"], row
    (tmp_path / "resnet18.ts13.error").write_text("RuntimeError: exporter said no\n")
    assert "exporter said no" in zoo.run_one("resnet18", "ts13", tmp_path, {})["error"]


def _small_net(path):
    """conv3x3+ReLU -> maxpool -> conv1x1+ReLU -> GlobalAveragePool -> Flatten."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in (("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (10, 8, 1, 1)), ("b2", (10,)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_cli_one_json_line_per_model(tmp_path):
    pytest.importorskip("onnxruntime")
    _small_net(tmp_path / "small.onnx")
    p = subprocess.run([sys.executable, str(SCRIPT), "--onnx", f"small={tmp_path / 'small.onnx'}",
                        "--onnx", f"broken={tmp_path / 'nothing.onnx'}", "--exporters", "file",
                        "--workdir", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["model"] for r in rows] == ["small", "broken"]
    small, broken = rows
    assert "error" not in small, small
    assert small["functions"] >= 1 and small["offload_pct"] > 99
    assert small["bit_exact"] is True and all(small["bit_exact_functions"].values())
    assert small["cosine_min"] > 0.99 and small["top1"].endswith("/4")
    assert small["sim_ms"] > 0 and small["ort_ms"] > 0 and small["compile_s"] > 0
    assert small["pass"] is True and set(small["goals"]) == {"bit_exact"}
    assert broken["pass"] is False and "nothing.onnx" in broken["error"]
    assert "Traceback" not in p.stderr


def test_table_has_a_row_per_line_and_names_failed_goals():
    ok = {"model": "resnet18", "exporter": "ts17", "offload_pct": 100.0, "functions": 12,
          "cpu_ops": {"relax.add": 8}, "compile_s": 90.0, "cosine_min": 0.9998, "top1": "4/4",
          "sim_ms": 300.0, "ort_ms": 200.0, "accel_modeled_ms": 250.0, "bit_exact": True}
    ok["goals"] = zoo._goal_checks("resnet18", ok)
    err = zoo._error_line("vgg11_bn", "ts13", "BuildError: boom")
    lines = zoo.table([ok, err]).splitlines()
    assert len(lines) == 4 and all(ln.count("|") == lines[0].count("|") for ln in lines)
    assert "FAIL functions 12 (want <= 2)" in lines[2] and "add 8" in lines[2]
    assert "error: BuildError: boom" in lines[3]


def test_light_models_compare_logits_not_saturated_probabilities():
    m = zoo._light("light_squeezenet").model
    assert m.graph.node[-1].op_type != "Softmax" and "final Softmax dropped: logits compared" \
        in zoo._light("light_squeezenet").notes
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    y = _ort(m, x)
    assert y.size == 1000 and (y.min() < 0 or y.max() > 1)  # logits, not probabilities
    from zynq_squeeze.frontend import from_onnx

    from_onnx(m)  # still a valid model for the importer (its output keeps its shape)
    unchanged, dropped = zoo.drop_final_softmax(zoo.tied_conv_model())
    assert not dropped and unchanged.graph.node[-1].op_type == "Relu"
