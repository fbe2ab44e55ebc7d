"""Our DCGAN step through ``model.fit`` against a PyTorch twin of the same network.

    python benchmarks/gan_vs_pytorch.py [--widths 32 64] [--steps 40] [--pairs 5] [--out benchmarks/gan_vs_pytorch.json]

PyTorch is an optional benchmark dependency, never a dependency of the
package: ``pip install -r benchmarks/requirements.txt`` (the CPU build of
torch). Without it the script says so and exits 0 having measured nothing.

Both sides train the DCGAN of ``configs/dcgan_digits.yaml`` (28x28x1, latent
100, BCE, Adam 2e-4 / 0.5, batch 64) at width ``b``: the same layers, shapes,
initial-weight scheme aside, batch-norm momentum and epsilon matched. The
PyTorch side is the standard two-pass loop of the PyTorch DCGAN tutorial: D
on a real batch, ``fake = G(z)``, D on ``fake.detach()``, step; then G
through the updated D on the same ``fake``, step. Ours is ``GAN.train_step``
under ``fit`` (one generator forward pass, reused the same way), without
DiffAugment or the moving average, so both do the same arithmetic.

Timing alternates: each pair times ``--steps`` steps of ours, then of
PyTorch's, after a warm-up of both; the table shows medians over
``--pairs`` pairs and the ratio of medians. The step's floating-point work
is counted from the layer shapes (multiply-adds x 2; a backward pass costs
twice its forward pass), and divided by this machine's float32 matmul rate,
measured with each framework at 1024 x 1024 (the larger is used).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 64
LATENT = 100
SIZE = 28


def step_flops(b: int) -> float:
    """Floating-point operations of one GAN step per image (see the module docstring)."""
    s4, s2 = SIZE // 4, SIZE // 2
    g = LATENT * s4 * s4 * 4 * b  # dense projection
    g += s4 * s4 * 4 * b * 2 * b * 16  # transposed conv 4x4, stride 2 (per input pixel)
    g += s2 * s2 * 2 * b * b * 16
    g += SIZE * SIZE * b * 1 * 9  # output conv 3x3
    d = s2 * s2 * 1 * b * 16  # conv 4x4 stride 2
    d += s4 * s4 * b * 2 * b * 16
    d += s4 * s4 * 2 * b * 4 * b * 9  # conv 3x3 stride 1
    d += s4 * s4 * 4 * b  # logits
    # G forward once + backward; D forward on real, fake, fake again, each with a backward.
    return 2 * (3 * g + 3 * 3 * d)


# ------------------------------------------------------------------- ours
def ours(b: int, spe: int):
    import numpy as np
    import tensorflow as tf

    from aigc_tf import training
    from aigc_tf.config import from_dict

    cfg = from_dict(
        {
            "model": {"name": "dcgan", "latent_dim": LATENT, "base_filters": b, "loss": "bce"},
            "data": {"name": "digits", "batch_size": BATCH},
            "train": {"learning_rate": 2e-4, "beta_1": 0.5, "steps_per_execution": spe},
        },
        "benchmark",
    )
    model = training.build_model(cfg, training.load_data(cfg))
    images = np.random.default_rng(0).uniform(-1, 1, (BATCH * 16, SIZE, SIZE, 1)).astype("float32")
    stream = tf.data.Dataset.from_tensor_slices({"images": images}).batch(BATCH, drop_remainder=True).cache().repeat()

    def run(steps):
        model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)

    return run


# ---------------------------------------------------------------- pytorch
def pytorch(b: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    s4 = SIZE // 4

    def bn(n, dims):
        # Keras' batch norm: momentum 0.99 (PyTorch counts 1 - that), epsilon 1e-3.
        return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(n, momentum=0.01, eps=1e-3)

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Sequential(nn.Linear(LATENT, s4 * s4 * 4 * b, bias=False), bn(s4 * s4 * 4 * b, 1), nn.ReLU())
            self.up = nn.Sequential(
                nn.ConvTranspose2d(4 * b, 2 * b, 4, 2, 1, bias=False), bn(2 * b, 2), nn.ReLU(),
                nn.ConvTranspose2d(2 * b, b, 4, 2, 1, bias=False), bn(b, 2), nn.ReLU(),
                nn.Conv2d(b, 1, 3, 1, 1), nn.Tanh(),
            )

        def forward(self, z):
            return self.up(self.project(z).view(-1, 4 * b, s4, s4))

    d = nn.Sequential(
        nn.Conv2d(1, b, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(b, 2 * b, 4, 2, 1, bias=False), bn(2 * b, 2), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * b, 4 * b, 3, 1, 1, bias=False), bn(4 * b, 2), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(4 * b * s4 * s4, 1),
    )
    g = G()
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()
    images = torch.rand(BATCH * 16, 1, SIZE, SIZE) * 2 - 1
    ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

    def run(steps):
        for i in range(steps):
            real = images[(i % 16) * BATCH : (i % 16 + 1) * BATCH]
            d.zero_grad(set_to_none=True)
            fake = g(torch.randn(BATCH, LATENT))
            err_d = loss(d(real), ones) + loss(d(fake.detach()), zeros)
            err_d.backward()
            opt_d.step()
            g.zero_grad(set_to_none=True)
            err_g = loss(d(fake), ones)
            err_g.backward()
            opt_g.step()

    return run


# ---------------------------------------------------------------- matmul
def matmul_rates(n: int = 1024, seconds: float = 2.0) -> dict:
    import tensorflow as tf

    rates = {}
    a = tf.random.normal((n, n))

    @tf.function
    def chain(x):
        for _ in range(10):
            x = tf.matmul(x, a) * (1.0 / n)
        return x

    chain(a).numpy()
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        chain(a).numpy()
        k += 1
    rates["tensorflow"] = k * 10 * 2 * n**3 / (time.perf_counter() - t0)
    try:
        import torch
    except ImportError:
        return rates
    x = torch.randn(n, n)
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        y = x
        for _ in range(10):
            y = (y @ x) * (1.0 / n)
        k += 1
    rates["pytorch"] = k * 10 * 2 * n**3 / (time.perf_counter() - t0)
    return rates


def timed(run, steps) -> float:
    t0 = time.perf_counter()
    run(steps)
    return steps * BATCH / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64], help="DCGAN widths b (32: quick start, 64: MNIST)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--spe", type=int, nargs="+", default=[1],
                        help="steps_per_execution values of ours to time (each alternates with PyTorch)")
    parser.add_argument("--out", default="benchmarks/gan_vs_pytorch.json")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install -r benchmarks/requirements.txt (CPU build). Nothing measured.")
        return 0
    import aigc_tf  # noqa: F401  (sets TensorFlow's CPU kernel options before it starts)

    rows = []
    for b in args.widths:
        theirs = pytorch(b)
        candidates = {spe: ours(b, spe) for spe in args.spe}
        for run in (theirs, *candidates.values()):
            run(max(args.spe) * 2)  # trace, warm caches and thread pools
        for spe, mine in candidates.items():
            a, t = [], []
            for _ in range(args.pairs):
                a.append(timed(mine, args.steps))
                t.append(timed(theirs, args.steps))
            rows.append({"b": b, "steps_per_execution": spe, "ours": statistics.median(a), "pytorch": statistics.median(t),
                         "ours_all": [round(v) for v in a], "pytorch_all": [round(v) for v in t]})
            print(f"  b={b} spe={spe}: ours {rows[-1]['ours']:.0f} images/s, PyTorch {rows[-1]['pytorch']:.0f}", flush=True)
    rates = matmul_rates()
    peak = max(rates.values())
    print("\nfloat32 matmul 1024x1024: " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in rates.items()))
    print("\n| b | steps/exec | ours images/s | PyTorch images/s | ratio | ours % of matmul | PyTorch % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        flops = step_flops(r["b"])
        r["ratio"] = r["ours"] / r["pytorch"]
        r["ours_matmul_fraction"] = r["ours"] * flops / peak
        r["pytorch_matmul_fraction"] = r["pytorch"] * flops / peak
        print(f"| {r['b']} | {r['steps_per_execution']} | {r['ours']:.0f} | {r['pytorch']:.0f} | {r['ratio']:.2f} | "
              f"{100 * r['ours_matmul_fraction']:.0f}% | {100 * r['pytorch_matmul_fraction']:.0f}% |")
    meta = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "torch": torch.__version__,
            "steps": args.steps, "pairs": args.pairs, "batch": BATCH, "matmul_flops": rates,
            "step_flops_per_image": {b: step_flops(b) for b in args.widths}}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
