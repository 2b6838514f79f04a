#!/usr/bin/env python3
"""Train the small SqueezeNet-style digits model and write models/digits.onnx.

Needs torch (an optional, training-only dependency; the package never imports it) and
scikit-learn. Reproducible: weights are initialised from numpy's default_rng(seed),
mini-batches are drawn from numpy, and torch runs single-threaded with deterministic
algorithms. The ONNX graph is written by zynq_squeeze.frontend.models._graph (names follow the
SqueezeNet prototxt convention) and checked against onnxruntime before saving.

    python scripts/train_digits.py [--seed 0] [--epochs 60] [--out PATH]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from zynq_squeeze.frontend.models._graph import GraphBuilder  # noqa: E402
from zynq_squeeze.frontend.models.digits import INPUT_NAME, OUTPUT_NAME, digits_data  # noqa: E402

DEFAULT_OUT = REPO / "python" / "zynq_squeeze" / "models" / "digits.onnx"

# (name, in, out, kernel, pad) for every conv, in graph order.
CONV1 = ("conv1", 1, 32, 3, 1)
FIRES = (("fire2", 32, 8, 32), ("fire3", 64, 16, 64))  # (name, in, squeeze, expand each)
CONV10 = ("conv10", 128, 10, 1, 0)


def conv_table():
    convs = [CONV1]
    for name, ic, s, e in FIRES:
        convs += [(f"{name}/squeeze1x1", ic, s, 1, 0), (f"{name}/expand1x1", s, e, 1, 0),
                  (f"{name}/expand3x3", s, e, 3, 1)]
    convs.append(CONV10)
    return convs


def init_params(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = {}
    for name, ic, oc, k, _ in conv_table():
        # He-normal, except conv10 (the classifier in front of ReLU + global average
        # pool): small weights and a positive bias so no class starts (and stays) dead.
        std = 0.01 if name == "conv10" else math.sqrt(2.0 / (ic * k * k))
        w = rng.standard_normal((oc, ic, k, k)) * std
        b = np.full(oc, 1.0 if name == "conv10" else 0.0)
        params[name] = (w.astype(np.float32), b.astype(np.float32))
    return params


def forward(torch, P, x):
    F = torch.nn.functional

    def conv(name, x, pad):
        w, b = P[name]
        return F.relu(F.conv2d(x, w, b, padding=pad))

    x = conv("conv1", x, 1)
    for i, (name, *_rest) in enumerate(FIRES):
        sq = conv(f"{name}/squeeze1x1", x, 0)
        x = torch.cat([conv(f"{name}/expand1x1", sq, 0), conv(f"{name}/expand3x3", sq, 1)], 1)
        if i == 0:
            x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    x = conv("conv10", x, 0)
    return x.mean(dim=(2, 3))


def export(params: dict[str, tuple[np.ndarray, np.ndarray]], seed: int):
    g = GraphBuilder("digits_squeezenet", opset=13)
    pads = {name: pad for name, _, _, _, pad in conv_table()}

    def conv(name, x):
        w, b = params[name]
        y = g.conv(name, x, w, b, pad=pads[name])
        head, _, tail = name.rpartition("/")
        return g.relu(f"{head}/relu_{tail}" if head else f"relu_{name}", y)

    x = g.add_input(INPUT_NAME, [1, 1, 8, 8])
    x = conv("conv1", x)
    for i, (name, *_rest) in enumerate(FIRES):
        sq = conv(f"{name}/squeeze1x1", x)
        x = g.concat(f"{name}/concat", [conv(f"{name}/expand1x1", sq), conv(f"{name}/expand3x3", sq)])
        if i == 0:
            x = g.max_pool("pool2", x, 3, 2, ceil_mode=True)
    x = conv("conv10", x)
    x = g.global_avg_pool("pool10", x)
    g.flatten("flatten10", x, out=OUTPUT_NAME)
    g.add_output(OUTPUT_NAME, [1, 10])
    return g.model(doc=f"SqueezeNet-style classifier for sklearn digits (8x8, pixels/16); "
                       f"trained by scripts/train_digits.py --seed {seed}")


def ort_accuracy(model, X, y) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pred = [int(np.argmax(sess.run(None, {INPUT_NAME: X[i:i + 1]})[0])) for i in range(len(X))]
    return float(np.mean(np.asarray(pred) == y))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    X_tr, y_tr = digits_data("train")
    X_te, y_te = digits_data("test")
    P = {k: (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
         for k, (w, b) in init_params(args.seed).items()}
    flat = [t for wb in P.values() for t in wb]
    opt = torch.optim.Adam(flat, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(X_tr) / args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    rng = np.random.default_rng(args.seed + 1)
    Xt, yt = torch.from_numpy(X_tr), torch.from_numpy(y_tr)
    Xe = torch.from_numpy(X_te)

    for epoch in range(args.epochs):
        order = torch.from_numpy(rng.permutation(len(X_tr)))
        total = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * args.batch:(s + 1) * args.batch]
            loss = torch.nn.functional.cross_entropy(forward(torch, P, Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            with torch.no_grad():
                acc = float((forward(torch, P, Xe).argmax(1).numpy() == y_te).mean())
            print(f"epoch {epoch + 1:3d}  loss {total / len(X_tr):.4f}  test acc {acc:.4f}")

    params = {k: (w.detach().numpy().copy(), b.detach().numpy().copy()) for k, (w, b) in P.items()}
    model = export(params, args.seed)
    acc_tr = ort_accuracy(model, X_tr, y_tr)
    acc_te = ort_accuracy(model, X_te, y_te)
    print(f"onnxruntime accuracy: train {acc_tr:.4f}  test {acc_te:.4f} ({len(y_te)} held-out)")
    if acc_te < 0.95:
        print("test accuracy below 0.95; not writing the model", file=sys.stderr)
        return 1
    args.out.write_bytes(model.SerializeToString())
    n_params = sum(w.size + b.size for w, b in params.values())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n_params} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
