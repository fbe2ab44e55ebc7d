"""GPT-2 speed: generation tokens/s without the cache, with it (prompt token by token) and
with batched prefill, and the time of a fine-tuning step with and without LoRA.

    python benchmarks/gpt2_speed.py [--lengths 64 256 512] [--prompt 128] [--repeats 2]
                                    [--models tiny small] [--steps 6] [--out benchmarks/gpt2_speed.json]

Models, random weights (speed does not depend on training): ``tiny`` (2 blocks x 16
channels, the tests' size, 1,024 positions) and ``small`` (GPT-2 small's shape: 12
blocks x 768 channels, 12 heads, MLP 3,072, 50,257 tokens, 1,024 positions: 124M
parameters). The vocabulary does not matter for speed, so the backbone is built at
its size directly (no tokenizer calls are timed).

Generation: one prompt of ``--prompt`` random tokens, then N new tokens (sampling at
temperature 0.8, no stop token, so every row makes all N), inside one ``tf.function``;
a first call with one new token traces; then the modes take turns and the best of
``--repeats`` (``--small-repeats`` for the 124M model) is kept. ``uncached``
re-runs the model over the whole prefix every step; ``cached`` fills the key/value
cache one prompt token per step; ``prefill`` reads the prompt in one batched call.
The three must give the same tokens (checked).

Fine-tuning: ``model.fit`` steps on one fixed batch (``--batch`` x ``--seq-len``,
the ``gpt2_finetune_imdb`` config's 8 x 128) with Adam, all weights vs LoRA rank 8
(``--lora-rank``); the median time of ``--steps`` steps after one untimed step.

The CPU is usually shared with other work here: the load average at the start and
end is written next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = {
    "tiny": {"vocabulary_size": 300, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32},
    "small": {"vocabulary_size": 50257, "num_layers": 12, "num_heads": 12, "hidden_dim": 768,
              "intermediate_dim": 3072},
}


def build(size: str, lora_rank: int = 0, dropout: float = 0.0):
    import keras
    import keras_hub

    from aigc_tf.models.gpt2 import GPT2
    from aigc_tf.models.gpt2_presets import END_OF_TEXT

    backbone = keras_hub.models.GPT2Backbone(max_sequence_length=1024, dropout=dropout, **SIZES[size])
    # A two-token vocabulary stands in for the tokenizer: it is never called here.
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary={"a": 0, "b": 1, "ab": 2, END_OF_TEXT: 3},
                                               merges=["a b"])
    return GPT2(backbone=keras.saving.serialize_keras_object(backbone), tokenizer=tokenizer, lora_rank=lora_rank,
                seed=0)


def generation(size: str, lengths: list[int], prompt_len: int, repeats: int) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    model = build(size)
    prompt = tf.constant(np.random.default_rng(0).integers(2, model.vocab_size, (1, prompt_len)), tf.int32)
    length = tf.constant([prompt_len])
    modes = ("uncached", "cached", "prefill")
    fns = {mode: tf.function(lambda p, ln, *c, mode=mode: model.generate_ids(
        p, ln, *c, use_cache=mode != "uncached", prefill=mode == "prefill", stop_ids=tf.constant([0])))
        for mode in modes}

    def controls(n):
        return tf.constant([n]), tf.constant([0.8]), tf.constant([0]), tf.constant([1.0]), tf.constant([1])

    for fn in fns.values():
        fn(prompt, length, *controls(1))  # trace once (the new-token count is a tensor: no retrace)
    rows = []
    for n in lengths:
        best = dict.fromkeys(modes, float("inf"))
        tokens = {}
        for _ in range(repeats):  # the modes take turns, so a burst of load hits them alike
            for mode, fn in fns.items():
                t0 = time.perf_counter()
                tokens[mode] = fn(prompt, length, *controls(n)).numpy()
                best[mode] = min(best[mode], time.perf_counter() - t0)
        same = all((tokens[m] == tokens["uncached"]).all() for m in modes)
        for mode in modes:
            rows.append({"model": size, "params": model.count_params(), "prompt_tokens": prompt_len,
                         "new_tokens": n, "mode": mode, "seconds": round(best[mode], 3),
                         "tokens_per_s": round(n / best[mode], 2), "same_tokens": bool(same),
                         "load_average": round(os.getloadavg()[0], 1)})
            print(rows[-1], flush=True)
    return rows


def finetune(size: str, batch: int, seq_len: int, steps: int, lora_rank: int) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    class Clock(keras.callbacks.Callback):
        """Wall time of every training step."""

        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    rows = []
    for rank in (0, lora_rank):
        model = build(size, lora_rank=rank, dropout=0.1)
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        ids = np.random.default_rng(1).integers(2, model.vocab_size, (batch, seq_len + 1)).astype("int32")
        data = tf.data.Dataset.from_tensors((ids[:, :-1], ids[:, 1:])).repeat()
        clock = Clock()
        model.fit(data, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=[clock])
        step = statistics.median(clock.times[1:])  # the first step traces
        trainable = int(sum(np.prod(v.shape) for v in model.trainable_variables))
        rows.append({"model": size, "params": model.count_params(), "lora_rank": rank, "trainable": trainable,
                     "batch": batch, "seq_len": seq_len, "steps_timed": steps, "seconds_per_step": round(step, 3),
                     "tokens_per_s": round(batch * seq_len / step, 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--small-repeats", type=int, default=1, help="repeats for the 124M model (slow)")
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/gpt2_speed.json")
    args = parser.parse_args()

    load_start = os.getloadavg()
    out = {"generation": [], "finetune": [], "load_average_start": load_start, "cpus": os.cpu_count(),
           "shared_machine": True}

    def save():  # after every part, so a long run that is stopped keeps what it measured
        out["load_average_end"] = os.getloadavg()
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")

    for size in args.models:  # the step times first: they are quick
        out["finetune"] += finetune(size, args.batch, args.seq_len, args.steps, args.lora_rank)
        save()
    for size in args.models:
        for n in args.lengths:
            out["generation"] += generation(size, [n], args.prompt,
                                            args.small_repeats if size == "small" else args.repeats)
            save()
    generate_rows, finetune_rows, load_end = out["generation"], out["finetune"], out["load_average_end"]

    print("\n| model | new tokens | uncached tok/s | cached tok/s | prefill tok/s | prefill vs uncached | same tokens |")
    print("|---|---|---|---|---|---|---|")
    for i in range(0, len(generate_rows), 3):
        u, c, p = generate_rows[i : i + 3]
        print(f"| {u['model']} | {u['new_tokens']} | {u['tokens_per_s']} | {c['tokens_per_s']} | {p['tokens_per_s']} | "
              f"{p['tokens_per_s'] / u['tokens_per_s']:.1f}x | {u['same_tokens']} |")
    print("\n| model | LoRA rank | trainable weights | s / step | tokens/s |")
    print("|---|---|---|---|---|")
    for r in finetune_rows:
        print(f"| {r['model']} | {r['lora_rank'] or 'off'} | {r['trainable']:,} | {r['seconds_per_step']} | "
              f"{r['tokens_per_s']} |")
    print(f"load average (1 min) at start {load_start[0]:.1f}, at end {load_end[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
