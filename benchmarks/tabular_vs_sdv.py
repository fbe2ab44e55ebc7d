"""Our TVAE and CTGAN against SDV's own, on the same table, split and scoring, in one run.

    python benchmarks/tabular_vs_sdv.py [--models tvae ctgan] [--epochs 300] [--seed 0]
                                        [--out benchmarks/tabular_vs_sdv_fair.json]

SDV is an optional benchmark dependency, never a dependency of the package:
``pip install -r benchmarks/requirements.txt`` (SDV and the CPU build of
torch that lies on this machine). Without it the script says so and exits 0
having measured nothing.

Both sides train on the train rows of the embedded ``fair`` table (the split
of ``configs/tvae_fair.yaml``: 20% held out, split seed 0) with the
published settings, which our configs copy: TVAE 128-128 layers, a 128-d
latent, batch 500, Adam 1e-3; CTGAN 256-256 generator and critic, pac 10,
Adam 2e-4 / (0.5, 0.9), batch 500; 300 epochs for both unless ``--epochs``
says otherwise. SDV is told which columns are categorical (the same ones our
config treats as discrete) and keeps its defaults otherwise (min / max and
rounding enforced). Each side then samples as many rows as the train split
holds and is scored by ``aigc_tf.tabular.scoring`` against the hold-out rows,
exactly as ``aigc-tf evaluate`` scores ours: SDMetrics' overall quality,
gradient-boosting efficacy on ``affairs > 0``, distance to the closest
training row, and the constraint ``yrs_married < age``.

The runs alternate (our TVAE, SDV's TVAE, our CTGAN, SDV's CTGAN) in one
process; training time is wall-clock time of ``fit`` on both sides (ours:
the whole ``aigc-tf train`` run, run directory and checkpoints included),
and the table reports the ratio of SDV's time to ours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import aigc_tf  # noqa: E402,F401  (before tensorflow: it sets TensorFlow's logging)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"tvae": ROOT / "configs" / "tvae_fair.yaml", "ctgan": ROOT / "configs" / "ctgan_fair.yaml"}


def ours(name: str, epochs: int, seed: int, folder: Path):
    """Train our model from its shipped config; ``(rows, fit seconds, sample seconds, train, holdout, info, cfg)``."""
    from aigc_tf import training
    from aigc_tf.config import load_config
    from aigc_tf.run_dir import final_model_path
    from aigc_tf.tabular.task import generate_table

    cfg = load_config(CONFIGS[name], [f"train.epochs={epochs}", "train.quality_every=0", f"seed={seed}"])
    task = training.task_of(cfg)
    train, holdout, info = task.tables(cfg)
    began = time.perf_counter()
    training.train(cfg, folder / name)
    fit_seconds = time.perf_counter() - began
    model = training.load_model(final_model_path(folder / name))
    began = time.perf_counter()
    rows = generate_table(model, train.num_rows, seed)
    return rows, fit_seconds, time.perf_counter() - began, train, holdout, info, cfg


def sdv_synthesizer(name: str, train, discrete: list[str], epochs: int):
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    frame = train.to_pandas()
    metadata = Metadata.detect_from_dataframes({"table": frame}, infer_keys=None)
    for column in frame.columns:
        metadata.update_column(column_name=column, sdtype="categorical" if column in discrete else "numerical",
                               table_name="table")
    cls = TVAESynthesizer if name == "tvae" else CTGANSynthesizer
    return cls(metadata, epochs=epochs, enable_gpu=False), frame


def theirs(name: str, train, discrete: list[str], epochs: int, seed: int):
    """SDV's synthesizer of the same name; ``(rows, fit seconds, sample seconds)``."""
    import numpy as np
    import pyarrow as pa
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    synthesizer, frame = sdv_synthesizer(name, train, discrete, epochs)
    began = time.perf_counter()
    synthesizer.fit({"table": frame})  # SDV 2 takes {table name: frame}
    fit_seconds = time.perf_counter() - began
    began = time.perf_counter()
    sampled = synthesizer.sample(num_rows=train.num_rows)
    sample_seconds = time.perf_counter() - began
    if isinstance(sampled, dict):
        sampled = sampled["table"]
    rows = pa.Table.from_pandas(sampled[frame.columns], preserve_index=False).cast(train.schema)
    return rows, fit_seconds, sample_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tvae", "ctgan"], choices=sorted(CONFIGS))
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "tabular_vs_sdv_fair.json"))
    args = parser.parse_args()
    try:
        import sdv
        import torch
    except ImportError as exc:
        print(f"SDV is not installed ({exc.name}): pip install -r benchmarks/requirements.txt; nothing measured")
        return

    from aigc_tf.tabular import scoring

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows, fit_s, sample_s, train, holdout, info, cfg = ours(name, args.epochs, args.seed, Path(tmp))
            constraints = cfg.data.constraints or []
            mine = scoring.score(f"aigc_tf {name}", rows, train, holdout, info, constraints, args.seed, fit_s)
            mine["sample_seconds"] = sample_s
            print(scoring.format_rows([mine]), flush=True)
            rows, fit_s, sample_s = theirs(name, train, list(info.discrete), args.epochs, args.seed)
            peer = scoring.score(f"SDV {name}", rows, train, holdout, info, constraints, args.seed, fit_s)
            peer["sample_seconds"] = sample_s
            peer["time_ratio_sdv_to_ours"] = fit_s / mine["seconds"]
            print(scoring.format_rows([peer]), flush=True)
            results += [mine, peer]
        references = [scoring.score(ref, table, train, holdout, info, constraints, args.seed, took)
                      for ref, (table, took) in scoring.reference_rows(train, info, train.num_rows, args.seed).items()]
    print(f"\n{info.name}: {train.num_rows} train rows, {holdout.num_rows} hold-out rows, {args.epochs} epochs; "
          f"efficacy target {info.target!r}; torch {torch.__version__}, sdv {sdv.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(scoring.format_rows([*references, *results]))
    for name in args.models:
        mine, peer = (r for r in results if r["synthesizer"].endswith(f" {name}"))
        print(f"{name}: SDV takes {peer['time_ratio_sdv_to_ours']:.2f}x our training time; quality "
              f"{mine['overall']:.4f} (ours) vs {peer['overall']:.4f} (SDV)")
    Path(args.out).write_text(json.dumps({
        "data": info.name, "epochs": args.epochs, "seed": args.seed, "train_rows": train.num_rows,
        "holdout_rows": holdout.num_rows, "torch": torch.__version__, "sdv": sdv.__version__,
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "results": [*references, *results]}, indent=2))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
