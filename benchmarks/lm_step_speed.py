"""Training speed (tokens/s) of the shipped text configs, with and without XLA.

    python benchmarks/lm_step_speed.py [--steps 40] [--repeats 2] [--configs configs/lstm_lm_embedded.yaml ...]
                                       [--out benchmarks/lm_step_speed.json]

Each config is built as `aigc-tf train` builds it (its own batch, window and
optimizer), once with `train.jit_compile=false` and once with `true`; after a
warm-up fit that traces the step, `fit` runs a fixed number of steps. The two
settings alternate `--repeats` times in this one process so a slow minute of
the host hits both; the table gives the median of each and the ratio. A
faster step buys more tokens in the same budget (the text-baseline issue).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(path: str, jit: bool):
    from aigc_tf import training
    from aigc_tf.config import load_config

    cfg = load_config(path, [f"train.jit_compile={str(jit).lower()}"])
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    stream = data.train.repeat()
    model.fit(stream, steps_per_epoch=3, epochs=1, verbose=0)  # trace + warm caches
    tokens = cfg.data.batch_size * cfg.data.seq_len
    return model, stream, tokens


def tokens_per_s(model, stream, tokens: int, steps: int) -> float:
    t0 = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * tokens / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["configs/lstm_lm_embedded.yaml", "configs/gpt_embedded.yaml"])
    parser.add_argument("--out", default="benchmarks/lm_step_speed.json")
    args = parser.parse_args()
    rows = []
    for path in args.configs:
        built = {jit: build(path, jit) for jit in (False, True)}
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for jit in (False, True):
                rate = tokens_per_s(*built[jit], args.steps)
                rates[jit].append(rate)
                print(f"  measured {path} xla={str(jit):5s} {rate:9.0f} tokens/s", flush=True)
        plain, xla = (statistics.median(rates[j]) for j in (False, True))
        rows.append({"config": path, "tokens_per_step": built[False][2],
                     "tokens_per_s": round(plain), "tokens_per_s_xla": round(xla),
                     "xla_speedup": round(xla / plain, 3),
                     "all": {"plain": [round(r) for r in rates[False]], "xla": [round(r) for r in rates[True]]}})
    print()
    print("| config | tokens a step | tokens/s | tokens/s with XLA | XLA / plain |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['config']}` | {r['tokens_per_step']} | {r['tokens_per_s']} | {r['tokens_per_s_xla']} | {r['xla_speedup']:.2f} |")
    meta = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "steps": args.steps, "repeats": args.repeats}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
