"""SqueezeNet v1.0 / v1.1 as ONNX, with seeded random (He-scaled) weights.

The topology follows the reference Caffe ``deploy.prototxt`` files of the SqueezeNet
authors layer by layer:

* ``conv1`` (v1.0: 96 x 7x7 stride 2; v1.1: 64 x 3x3 stride 2), no padding, ReLU;
* max pools 3x3 stride 2 with Caffe's round-up output size (ONNX ``ceil_mode=1``);
  v1.0 pools after conv1, fire4 and fire8, v1.1 after conv1, fire3 and fire5;
* fire modules ``fireN/squeeze1x1`` -> ReLU -> (``fireN/expand1x1`` -> ReLU ||
  ``fireN/expand3x3`` pad 1 -> ReLU) -> ``fireN/concat`` on the channel axis;
* ``drop9`` (Dropout) is omitted (inference graph);
* ``conv10`` 1x1 to 1000 classes -> ReLU -> ``pool10`` global average pool, then a
  ``flatten10`` (not in Caffe, whose Softmax works on [N,1000,1,1]) and ``prob`` Softmax.
  Note that the v1.0 prototxt gives conv10 ``pad: 1`` (a 1x1 kernel with padding, so its
  output is 2 pixels larger and the border is ReLU(bias)); that quirk is kept.

Node names are the Caffe layer names (``conv1``, ``relu_conv1``, ``pool1``,
``fire2/squeeze1x1``, ``fire2/relu_squeeze1x1``, ..., ``conv10``, ``relu_conv10``,
``pool10``, ``prob``); each node's output tensor has the node's name, except the
final ``prob``. Initializers are ``<conv>/weight`` and ``<conv>/bias``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx

from ._graph import GraphBuilder

VERSIONS = ("1.0", "1.1")
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Layer:
    """One Caffe layer of the inference graph (Dropout dropped, ReLUs implied).

    ``kind`` is ``"conv"`` (followed by ReLU), ``"fire"``, ``"maxpool"`` or ``"gap"``.
    For a fire module, ``channels`` is (squeeze, expand1x1, expand3x3).
    """

    name: str
    kind: str
    channels: tuple[int, ...] = ()
    kernel: int = 1
    stride: int = 1
    pad: int = 0


def _fire(n: int, s: int, e: int) -> Layer:
    return Layer(f"fire{n}", "fire", (s, e, e))


def _pool(name: str) -> Layer:
    return Layer(name, "maxpool", kernel=3, stride=2)


_SPECS: dict[str, tuple[Layer, ...]] = {
    "1.0": (
        Layer("conv1", "conv", (96,), kernel=7, stride=2),
        _pool("pool1"),
        _fire(2, 16, 64), _fire(3, 16, 64), _fire(4, 32, 128),
        _pool("pool4"),
        _fire(5, 32, 128), _fire(6, 48, 192), _fire(7, 48, 192), _fire(8, 64, 256),
        _pool("pool8"),
        _fire(9, 64, 256),
        Layer("conv10", "conv", (NUM_CLASSES,), kernel=1, stride=1, pad=1),
        Layer("pool10", "gap"),
    ),
    "1.1": (
        Layer("conv1", "conv", (64,), kernel=3, stride=2),
        _pool("pool1"),
        _fire(2, 16, 64), _fire(3, 16, 64),
        _pool("pool3"),
        _fire(4, 32, 128), _fire(5, 32, 128),
        _pool("pool5"),
        _fire(6, 48, 192), _fire(7, 48, 192), _fire(8, 64, 256), _fire(9, 64, 256),
        Layer("conv10", "conv", (NUM_CLASSES,), kernel=1, stride=1),
        Layer("pool10", "gap"),
    ),
}


def _check_version(version: str) -> str:
    version = str(version)
    if version not in _SPECS:
        raise ValueError(f"unknown SqueezeNet version {version!r}; expected one of {VERSIONS}")
    return version


def squeezenet_layers(version: str = "1.1") -> tuple[Layer, ...]:
    """The layer table the model is built from (for tests and tooling)."""
    return _SPECS[_check_version(version)]


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_out(size: int, kernel: int, stride: int) -> int:
    # Caffe rounds up; ONNX ceil_mode drops a last window that would start past the input.
    out = math.ceil((size - kernel) / stride) + 1
    if (out - 1) * stride >= size:
        out -= 1
    return out


def squeezenet_conv_shapes(version: str = "1.1", image_size: int = 224):
    """Per conv: (name, in_channels, out_channels, kernel, stride, pad, out_h, out_w)."""
    size, ch = int(image_size), 3
    convs = []
    for layer in squeezenet_layers(version):
        if layer.kind == "conv":
            (oc,) = layer.channels
            size = _conv_out(size, layer.kernel, layer.stride, layer.pad)
            convs.append((layer.name, ch, oc, layer.kernel, layer.stride, layer.pad, size, size))
            ch = oc
        elif layer.kind == "fire":
            s, e1, e3 = layer.channels
            convs.append((f"{layer.name}/squeeze1x1", ch, s, 1, 1, 0, size, size))
            convs.append((f"{layer.name}/expand1x1", s, e1, 1, 1, 0, size, size))
            convs.append((f"{layer.name}/expand3x3", s, e3, 3, 1, 1, size, size))
            ch = e1 + e3
        elif layer.kind == "maxpool":
            size = _pool_out(size, layer.kernel, layer.stride)
        if size < 1:
            raise ValueError(f"image_size {image_size} too small for SqueezeNet {version}")
    return convs


def squeezenet_macs(version: str = "1.1", image_size: int = 224) -> int:
    """Total convolution multiply-accumulates for one image (biases not counted).

    1.1 at 224x224: 349,151,936; 1.0 at 224x224: 847,596,576 (the v1.0 conv10 pad of 1
    makes its output 15x15 instead of 13x13; without it v1.0 would be 818,924,576).
    """
    return sum(ic * oc * k * k * oh * ow
               for _, ic, oc, k, _, _, oh, ow in squeezenet_conv_shapes(version, image_size))


def squeezenet(version: str = "1.1", seed: int = 0, opset: int = 13, batch: int | str = 1,
               image_size: int = 224) -> onnx.ModelProto:
    """Build SqueezeNet ``version`` ("1.0" or "1.1") with seeded random weights.

    Input ``data`` float32 [batch, 3, image_size, image_size] (NCHW); output ``prob``
    float32 [batch, 1000] (softmax probabilities). ``batch`` may be a string for a
    symbolic batch dimension. Weights are He-normal (std sqrt(2 / fan_in)) from
    ``numpy.random.default_rng(seed)``, biases uniform in [-0.05, 0.05]; the same
    arguments always give a byte-identical serialized model.
    """
    version = _check_version(version)
    rng = np.random.default_rng(seed)
    g = GraphBuilder(f"squeezenet{version.replace('.', '_')}", opset)

    def conv(name, x, ic, oc, k, stride=1, pad=0):
        w = rng.standard_normal((oc, ic, k, k), dtype=np.float32) * np.float32(math.sqrt(2.0 / (ic * k * k)))
        b = rng.uniform(-0.05, 0.05, size=oc).astype(np.float32)
        y = g.conv(name, x, w, b, stride=stride, pad=pad)
        relu_name = name.rsplit("/", 1)
        relu_name = (f"{relu_name[0]}/relu_{relu_name[1]}" if len(relu_name) == 2 else f"relu_{name}")
        return g.relu(relu_name, y)

    x = g.add_input("data", [batch, 3, image_size, image_size])
    ch = 3
    for layer in _SPECS[version]:
        if layer.kind == "conv":
            (oc,) = layer.channels
            x = conv(layer.name, x, ch, oc, layer.kernel, layer.stride, layer.pad)
            ch = oc
        elif layer.kind == "fire":
            s, e1, e3 = layer.channels
            sq = conv(f"{layer.name}/squeeze1x1", x, ch, s, 1)
            a = conv(f"{layer.name}/expand1x1", sq, s, e1, 1)
            b = conv(f"{layer.name}/expand3x3", sq, s, e3, 3, pad=1)
            x = g.concat(f"{layer.name}/concat", [a, b])
            ch = e1 + e3
        elif layer.kind == "maxpool":
            x = g.max_pool(layer.name, x, layer.kernel, layer.stride, ceil_mode=True)
        elif layer.kind == "gap":
            x = g.global_avg_pool(layer.name, x)
        else:  # pragma: no cover - table is static
            raise AssertionError(layer.kind)
    x = g.flatten("flatten10", x)
    g.softmax("prob", x, out="prob")
    g.add_output("prob", [batch, NUM_CLASSES])
    return g.model(doc=f"SqueezeNet v{version}, random weights (seed={seed}), "
                       f"input {image_size}x{image_size}; layers follow the Caffe deploy.prototxt")
