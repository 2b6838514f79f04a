"""Export the torchvision part of the model zoo to ONNX (step 1 of benchmarks/model_zoo.py).

Runs in a venv with torch (the project's venv has none; see model_zoo.py's docstring):

    python3.11 -m venv .venv-zoo
    .venv-zoo/bin/pip install torch==2.14.1 torchvision==0.29.1 onnxscript onnx
    .venv-zoo/bin/python benchmarks/zoo_export.py [--workdir DIR] [--models a,b] [--exporters e,f]

Every model is built with ``weights=None`` (no download: random init after
``torch.manual_seed(0)``); its BatchNorm statistics are then measured on 32 random images
(``sane_batchnorm``) and it is exported in eval mode with a static 1x3x224x224 input by
each exporter:

* ``ts13`` / ``ts17``: the TorchScript exporter (``dynamo=False``), opset 13 / 17;
* ``dynamo20``: the dynamo exporter (``dynamo=True``, needs onnxscript), opset 20.

Files: ``DIR/<model>.<exporter>.onnx`` (weights inside the file). A model that fails to
export writes ``DIR/<model>.<exporter>.error`` with the message instead (model_zoo.py
reports it as that model's error line); the run goes on.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

MODELS = ("squeezenet1_0", "squeezenet1_1", "resnet18", "mobilenet_v2", "googlenet", "alexnet",
          "vgg11_bn")
EXPORTERS = {"ts13": (False, 13), "ts17": (False, 17), "dynamo20": (True, 20)}
DEFAULT_WORKDIR = Path.home() / ".cache" / "zynq_squeeze" / "zoo"


def build_model(name: str):
    """The torchvision model ``name``, random weights seeded with 0, in eval mode."""
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"weights": None}
    if name == "googlenet":  # no auxiliary heads at inference; init_weights silences a warning
        kwargs.update(aux_logits=False, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs)
    return sane_batchnorm(model).eval()


def sane_batchnorm(model, batches: int = 4, batch: int = 8):
    """Set every BatchNorm's running statistics to those of its input on random images.

    With random weights the init's mean 0 / variance 1 does not normalize anything: the
    activations of a deep net shrink or grow layer after layer (googlenet's logits end up
    the same for every input), and a comparison of its outputs measures nothing. A few
    training-mode forward passes (cumulative average, no gradient) give each BatchNorm the
    statistics of what it sees, as trained weights would."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the passes
    g = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch, 3, 224, 224, generator=g))
    return model


def export(name: str, exporter: str, path: Path) -> None:
    """Write ``name`` exported by ``exporter`` to ``path``."""
    import onnx
    import torch

    dynamo, opset = EXPORTERS[exporter]
    model = build_model(name)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tmp = path.with_suffix(".tmp.onnx")
    # the exporters print pages of diagnostics: keep stderr for this script's progress
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        torch.onnx.export(model, (x,), str(tmp), input_names=["x"], output_names=["y"],
                          opset_version=opset, dynamo=dynamo, external_data=False)
    m = onnx.load(str(tmp))  # one self-contained file, checked
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    tmp.unlink()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--exporters", default=",".join(EXPORTERS))
    ap.add_argument("--force", action="store_true", help="re-export files that exist")
    a = ap.parse_args(argv)
    a.workdir.mkdir(parents=True, exist_ok=True)
    for exporter in a.exporters.split(","):
        if exporter not in EXPORTERS:
            ap.error(f"unknown exporter {exporter!r} (known: {', '.join(EXPORTERS)})")
        for name in a.models.split(","):
            if name not in MODELS:
                ap.error(f"unknown model {name!r} (known: {', '.join(MODELS)})")
            path = a.workdir / f"{name}.{exporter}.onnx"
            err = path.with_suffix(".error")
            if path.exists() and not a.force:
                print(f"[zoo-export] {path.name}: exists", file=sys.stderr)
                continue
            print(f"[zoo-export] {path.name} ...", file=sys.stderr, flush=True)
            try:
                export(name, exporter, path)
                err.unlink(missing_ok=True)
            except Exception as e:  # noqa: BLE001 -- one model's failure is that model's result
                msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                err.write_text(msg + "\n")
                print(f"[zoo-export] {path.name}: FAILED {msg}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
