"""Text families: language models (``lstm_lm``, ``gpt``), ``seq2seq``, ``text_vae`` and
the pretrained ``gpt2`` (KerasHub).

Data: :mod:`aigc_tf.data.text` (each family trains on its own batches: LM
windows, (prefix, continuation) pairs, sentences). Per-epoch samples: a
``.txt`` of continuations of ``train.sample_prompt`` (the text VAE: prior
samples). Evaluation: validation perplexity (sliding windows for language
models) against two n-gram baselines on the same tokens (Kneser-Ney with one
discount, and modified Kneser-Ney with its order tuned on them), distinct-n of
samples, and the ELBO and active units for the text VAE. Export: strings in,
strings out (:func:`aigc_tf.models.text_base.text_generation_function`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from aigc_tf.config import DataConfig
from aigc_tf.data import TEXT_DATASETS, TOKENIZER_LEVELS
from aigc_tf.errors import ConfigError, UserError
from aigc_tf.tasks.base import Task, train_adam

# Kneser-Ney order of the n-gram baseline, per tokenizer level.
BASELINE_ORDER = {"char": 5, "word": 3, "bpe": 3}


@dataclasses.dataclass
class TextDataConfig(DataConfig):
    """``data:`` keys of text models."""

    name: str = "embedded"
    tokenizer: str = "char"  # char | word
    vocab_size: int | None = None  # most frequent tokens kept, incl. padding and [UNK]; null = all
    seq_len: int = 128  # LM window / seq2seq half / VAE sentence length, in tokens
    unsupervised: bool = False  # imdb: add the 50,000 unlabelled reviews to training
    random_windows: bool = False  # LMs and seq2seq: new random cut points for training rows each epoch


@dataclasses.dataclass
class GPT2DataConfig(TextDataConfig):
    """``data:`` keys of ``gpt2``: text keys, with GPT-2's byte-level BPE as the tokenizer."""

    tokenizer: str = "bpe"  # the preset's byte-level BPE (model.preset null: one trained on the training text)
    vocab_size: int | None = None  # model.preset null only: BPE vocabulary to learn (null: 4096)


class TextTask(Task):
    modality = "text"
    datasets = TEXT_DATASETS
    data_config = TextDataConfig
    objective = ("val_perplexity", "min")
    batches = "lm"  # which batches aigc_tf.data.text.load_text_data builds for the family
    random_windows = True  # data.random_windows applies
    continues_prompts = True  # per-epoch samples continue train.sample_prompt (a text VAE samples its prior)
    needs_prompt = True  # `sample` refuses an empty prompt and defaults to train.sample_prompt
    tokenizer_levels = TOKENIZER_LEVELS  # what data.tokenizer may be

    def check_config(self, cfg, source: str) -> None:
        if cfg.data.name not in TEXT_DATASETS:
            raise ConfigError(
                f"{source}: model {cfg.model['name']!r} is a text model but data.name={cfg.data.name!r} is not text; "
                f"use one of: {', '.join(TEXT_DATASETS)}"
            )
        for key in ("seq_len", "vocab_size"):
            value = getattr(cfg.data, key)
            if value is not None and value < 1:
                raise ConfigError(f"{source}: data.{key} must be at least 1, got {value}")
        if cfg.data.tokenizer not in self.tokenizer_levels:
            raise ConfigError(
                f"{source}: data.tokenizer must be one of {', '.join(self.tokenizer_levels)} for model "
                f"{cfg.model['name']!r}, got {cfg.data.tokenizer!r}"
            )
        if cfg.data.random_windows and not self.random_windows:
            raise ConfigError(
                f"{source}: data.random_windows applies to language models and seq2seq, "
                f"not {cfg.model['name']!r}; remove it"
            )

    # -------------------------------------------------------- data, model
    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.data.text import load_text_data

        d = cfg.data
        return load_text_data(
            d.name, task=self.batches, path=d.path, level=d.tokenizer, seq_len=d.seq_len,
            batch_size=d.batch_size, vocab_size=d.vocab_size,
            vocabulary=model.vocabulary if model is not None else None,
            max_examples=d.max_examples, data_dir=d.data_dir, download=d.download, unsupervised=d.unsupervised,
            random_windows=d.random_windows, shuffle_buffer=d.shuffle_buffer, seed=cfg.seed + seed_offset,
        )

    def _instantiate(self, cfg, data):
        """The configured model for ``data``, before compiling."""
        from aigc_tf import registry

        return registry.build_model(cfg.model, cfg.seed, vocabulary=data.vocabulary, tokenizer=data.level)

    def build_model(self, cfg, data):
        try:
            model = self._instantiate(cfg, data)
        except ValueError as exc:
            raise ConfigError(
                f"model {cfg.model['name']!r} cannot be built for data {cfg.data.name!r} "
                f"({len(data.vocabulary) + 2} tokens, {data.level} level): {exc}"
            ) from None
        context = getattr(model, "context_length", None)
        if context is not None and cfg.data.seq_len > context:
            raise ConfigError(
                f"data.seq_len={cfg.data.seq_len} is longer than model.context_length={context}; "
                "lower data.seq_len or raise model.context_length"
            )
        if context is not None and context > cfg.data.seq_len and getattr(model, "positions", "") == "learned":
            raise ConfigError(
                f"model.context_length={context} is longer than data.seq_len={cfg.data.seq_len}: learned positions "
                "beyond the training windows would never be trained; set them equal or use model.positions=sinusoidal"
            )
        t = cfg.train
        optimizer = train_adam(t, learning_rate_of(cfg, data))
        # Clipping in the model, not the optimizer: see TextModel.apply_clipped_gradients.
        model.compile(optimizer=optimizer, clip_norm=t.clipnorm, steps_per_execution=t.steps_per_execution,
                      jit_compile=t.jit_compile)
        return model

    def sample_prompt(self, cfg) -> str:
        return cfg.train.sample_prompt if self.continues_prompts else ""

    def check_model(self, cfg, model) -> None:
        # Fail now, not after the first epoch, if the per-epoch samples cannot be written.
        sample_budget(model, self.sample_prompt(cfg), cfg.train.sample_max_new_tokens)

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        from aigc_tf.models.text_base import text_generation_function

        t = cfg.train
        prompt = self.sample_prompt(cfg)
        # Traced once per run; kept on the task, not the model (Keras would track it).
        cache = self.__dict__.setdefault("_generate_fns", {})
        if id(model) not in cache:
            cache[id(model)] = text_generation_function(model)[0]
        max_new = sample_budget(model, prompt, t.sample_max_new_tokens)
        texts = sample_texts(model, prompt, t.num_samples, max_new, t.sample_temperature, cfg.seed,
                             fn=cache[id(model)])
        write_text_samples(folder / f"epoch_{epoch:04d}.txt", prompt, [model.join(prompt, x) for x in texts])

    # ---------------------------------------------------- after training
    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        """Validation perplexity (or ELBO) and distinct-1/2 of samples; subclasses add their baselines."""
        from aigc_tf.metrics.text import distinct_n

        data = self.load_data(cfg, model=model)
        if data.test is None:
            raise UserError(f"{cfg.data.name} has no validation text for data.seq_len={cfg.data.seq_len}; lower it")
        scores = model.evaluate(data.test, return_dict=True, verbose=0)
        result = {
            "run_dir": str(run_dir),
            "model": cfg.model["name"],
            "dataset": cfg.data.name,
            "tokenizer": cfg.data.tokenizer,
            "vocab_size": model.vocab_size,
            "validation_tokens": int(len(data.test_ids)),
            "seed": seed,
        }
        result.update({f"val_{k}": float(v) for k, v in scores.items()})
        n = n_samples or 100
        prompt = self.sample_prompt(cfg)
        # Evaluation's own protocol (like its temperature of 1): the default length,
        # 200 tokens or what the context leaves after the prompt.
        max_new = model.new_token_budget(int(model.tokenize([prompt])[1].numpy()[0]))
        texts = sample_texts(model, prompt, n, max_new, 1.0, seed)
        result.update({"samples": n, "sample_prompt": prompt, "sample_temperature": 1.0, "sample_tokens": max_new})
        result["distinct_1"] = distinct_n(texts, 1)
        result["distinct_2"] = distinct_n(texts, 2)
        self._evaluate_more(result, cfg, model, data)
        result["example"] = texts[0]
        return result

    def _evaluate_more(self, result: dict, cfg, model, data) -> None:
        pass

    def _baselines(self, result: dict, cfg, model, data, ours: float, score) -> None:
        """Both n-gram baselines beside the model's perplexity ``ours``, each
        scored by ``score(lm)`` on the model's own validation tokens: the
        single-discount Kneser-Ney of ``BASELINE_ORDER`` and the tuned one,
        modified Kneser-Ney with the order (1 to 10) that scores best there."""
        from aigc_tf.metrics.ngram import MAX_TUNED_ORDER, ModifiedKneserNey, NgramCounts, tuned_modified_kneser_ney

        order = BASELINE_ORDER[cfg.data.tokenizer]
        counts = NgramCounts(data.train_ids, MAX_TUNED_ORDER)
        # One discount of 0.75 at every order is exactly `KneserNey` (tested to 1e-12), vectorised.
        kn = score(ModifiedKneserNey(order, model.vocab_size, counts, discounts=(0.75, 0.75, 0.75)))
        tuned, by_order = tuned_modified_kneser_ney(data.train_ids, model.vocab_size, score, counts=counts)
        best = by_order[tuned.order]
        result.update(
            ngram_order=order, ngram_val_perplexity=kn, beats_ngram=bool(ours < kn),
            tuned_ngram=f"modified Kneser-Ney, order chosen on these validation tokens from 1 to {MAX_TUNED_ORDER}",
            tuned_ngram_order=tuned.order, tuned_ngram_val_perplexity=best, beats_tuned_ngram=bool(ours < best),
            tuned_ngram_perplexity_by_order={str(k): v for k, v in by_order.items()},
            vs_tuned_ngram=ours / best - 1.0, vs_ngram=ours / kn - 1.0,
            baselines=f"{_relation(ours, best, f'the tuned {tuned.order}-gram modified Kneser-Ney ({best:.3f})')}; "
                      f"{_relation(ours, kn, f'the {order}-gram Kneser-Ney ({kn:.3f})')}",
        )

    def export_endpoints(self, model) -> dict:
        from aigc_tf.models.text_base import text_generation_function

        fn, specs = text_generation_function(model)
        return {"serving_default": (fn, specs)}

    # ----------------------------------------------------------------- cli
    @classmethod
    def add_sample_arguments(cls, parser) -> None:
        from aigc_tf.tasks.base import positive

        parser.add_argument("--prompt", help="text: the text to continue (text_vae: to encode and decode; empty: prior sample)")
        parser.add_argument("--max-new-tokens", type=positive,
                            help="text: tokens to generate (default 200, or what the model's context leaves after the prompt)")
        parser.add_argument("--temperature", type=float, default=1.0, help="text: softmax temperature; 0 = greedy (default 1.0)")
        parser.add_argument("--top-k", type=int, default=0, help="text: sample among the K most likely tokens; 0 = off (default)")
        parser.add_argument("--top-p", type=float, default=1.0, help="text: nucleus sampling mass in (0, 1]; 1 = off (default)")
        parser.add_argument("--beam", type=positive, metavar="WIDTH", help="text: beam search of this width instead of sampling")
        parser.add_argument("--stop", metavar="TEXT",
                            help="text: end each sample where it spells TEXT, which is left out (lstm_lm, gpt, seq2seq; "
                                 "gpt2 stops at <|endoftext|>)")
        parser.add_argument("--interpolate", metavar="TEXT_B", help="text_vae: decode points between --prompt and TEXT_B (-n steps)")

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        seed = cfg.seed if args.seed is None else args.seed
        if args.temperature < 0:
            raise UserError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
        if not 0 < args.top_p <= 1:
            raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
        if args.top_k < 0:
            raise UserError(f"--top-k must be >= 0 (0 = off), got {args.top_k}")
        n = args.n or 1
        if seed + n > 2**31:
            raise UserError(f"--seed + -n must stay below 2**31 (sample i uses seed + i), got {seed} + {n}")
        if args.interpolate is not None:
            raise UserError("--interpolate needs a text_vae run")
        if args.stop is not None and not args.stop:
            raise UserError("--stop is empty; pass the text a sample should end at")

    def _budget(self, model, prompt: str, max_new_tokens: int | None) -> int:
        """Refuse, before any decoding, a prompt the model cannot continue; return the new-token count."""
        n = int(model.tokenize([prompt])[1].numpy()[0])
        if n == 0 and self.needs_prompt:
            raise UserError("--prompt is empty (no known tokens); a language model continues a text: pass --prompt 'TEXT'")
        return model.new_token_budget(n, max_new_tokens, "--max-new-tokens")

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        seed = cfg.seed if args.seed is None else args.seed
        n = args.n or 1
        prompt = args.prompt
        if prompt is None:
            prompt = cfg.train.sample_prompt if self.needs_prompt else ""
        max_new = self._budget(model, prompt, args.max_new_tokens)
        if args.stop is not None:
            model.stop_ids(args.stop)  # refuses a stop string that can never be generated
        if args.beam:
            ids, lengths = model.tokenize([prompt])
            tokens, score = model.beam_search_ids(ids, lengths, max_new, beam_width=args.beam)
            text = model.detokenize(tokens).numpy()[0].decode("utf-8", errors="replace")
            if args.stop is not None:
                text = text.split(args.stop)[0]  # beam search has no stop sequence: cut the text
            print(f"--- beam search (width {args.beam}, log-probability {float(score[0]):.2f})")
            print(self._shown(model, prompt, text))
            return 0
        texts = sample_texts(model, prompt, n, max_new, args.temperature, seed, top_k=args.top_k, top_p=args.top_p,
                             stop=args.stop)
        texts = [self._shown(model, prompt, text) for text in texts]
        for i, text in enumerate(texts):
            print(f"--- sample {i + 1} (seed {seed + i})")
            print(text)
        if args.out:
            write_text_samples(Path(args.out), prompt, texts)
            print(f"Wrote {n} samples to {args.out}")
        return 0

    def _shown(self, model, prompt: str, text: str) -> str:
        """What ``sample`` prints: the prompt and its continuation (seq2seq and the VAE: the output alone)."""
        return text


class LanguageModelTask(TextTask):
    family = "lm"

    def _shown(self, model, prompt: str, text: str) -> str:
        return model.join(prompt, text)

    def _evaluate_more(self, result: dict, cfg, model, data) -> None:
        ours = result["val_perplexity_sliding"] = lm_perplexity(model, data.test_ids, cfg.data.seq_len)
        self._baselines(result, cfg, model, data, ours, lambda lm: lm.perplexity(data.test_ids))


class Seq2SeqTask(TextTask):
    family = "seq2seq"
    batches = "pairs"
    needs_prompt = False

    def _evaluate_more(self, result: dict, cfg, model, data) -> None:
        # The same tokens the seq2seq loss scores: each continuation, given its prefix.
        pairs = [(inputs["prefix"].numpy(), targets.numpy()) for inputs, targets in data.test]
        self._baselines(result, cfg, model, data, result["val_perplexity"],
                        lambda lm: continuation_perplexity(lm, pairs))


class TextVAETask(TextTask):
    family = "text_vae"
    batches = "sentences"
    random_windows = False
    continues_prompts = False
    needs_prompt = False

    def _evaluate_more(self, result: dict, cfg, model, data) -> None:
        from aigc_tf.metrics.text import active_units

        result["val_elbo"] = -result["val_loss"]
        tokens = np.concatenate([x.numpy() for x, _ in data.test])[:2000]
        means, _ = model.encode(tokens)
        result["active_units"] = active_units(means.numpy())
        result["latent_dim"] = model.latent_dim

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        endpoints = super().export_endpoints(model)
        specs = endpoints["serving_default"][1]
        z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
        endpoints["encode"] = (model.encode_text, [tf.TensorSpec([None], tf.string, name="texts")])
        endpoints["decode"] = (model.decode_text, [z_spec, *specs[1:]])
        return endpoints

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        interpolate, args.interpolate = args.interpolate, None
        try:
            super().check_sample_arguments(args, cfg, run_dir)
        finally:
            args.interpolate = interpolate
        if interpolate is not None and args.prompt is None:
            raise UserError("--interpolate TEXT_B needs --prompt TEXT_A: it walks from one to the other")
        if args.stop is not None:
            raise UserError("--stop is for language models and seq2seq; a text VAE run decodes whole sentences")

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        if args.interpolate is None:
            return super().sample(args, cfg, run_dir, model)
        max_new = model.new_token_budget(0, args.max_new_tokens, "--max-new-tokens")
        steps = max(args.n or 1, 2)
        for i, line in enumerate(model.interpolate(args.prompt, args.interpolate, steps=steps, max_new_tokens=max_new)):
            print(f"[{i}] {line}")
        return 0


class GPT2Task(LanguageModelTask):
    """``gpt2``: GPT-2 from KerasHub (:class:`aigc_tf.models.gpt2.GPT2`) on the text datasets.

    The tokenizer comes first, from the data step: the preset's byte-level BPE,
    or (``model.preset: null``) one trained on the training text with
    ``data.vocab_size`` tokens. Documents are joined by ``<|endoftext|>``.
    Training, evaluation (perplexities per BPE token, n-gram baselines on the
    same tokens), samples and export are the language models'.
    """

    family = "gpt2"
    data_config = GPT2DataConfig
    tokenizer_levels = ("bpe",)
    default_bpe_vocab = 4096

    def check_config(self, cfg, source: str) -> None:
        from aigc_tf.models import gpt2_presets

        super().check_config(cfg, source)
        missing = gpt2_presets.missing_extra()
        if missing is not None:
            raise ConfigError(f"{source}: model gpt2 needs {missing}, which is not installed: "
                              f"{gpt2_presets.INSTALL_HINT}")
        for key in ("backbone", "tokenizer"):
            if cfg.model.get(key) is not None:
                raise ConfigError(f"{source}: model.{key} is set when a saved GPT-2 loads, not in a config; "
                                  "remove it (model.preset names the weights)")
        preset = cfg.model.get("preset")
        if preset is not None and cfg.data.vocab_size is not None:
            raise ConfigError(f"{source}: data.vocab_size applies to a GPT-2 trained from scratch (model.preset: "
                              f"null); the preset {preset!r} brings its own vocabulary: remove data.vocab_size")
        try:
            gpt2_presets.check_preset_path(preset, f"{source}: model.preset")
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None

    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.data.text import load_text_data
        from aigc_tf.models import gpt2, gpt2_presets

        preset = cfg.model.get("preset")
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is not None and not isinstance(tokenizer, str):
            encoder = gpt2.BPEEncoder(tokenizer)
        elif preset is not None:
            encoder = gpt2.BPEEncoder(gpt2_presets.load_tokenizer(preset))
        else:
            size = cfg.data.vocab_size or self.default_bpe_vocab

            def encoder(texts):
                return gpt2.BPEEncoder(gpt2_presets.train_tokenizer(texts, size))

        d = cfg.data
        return load_text_data(
            d.name, task=self.batches, path=d.path, seq_len=d.seq_len, batch_size=d.batch_size,
            max_examples=d.max_examples, data_dir=d.data_dir, download=d.download, unsupervised=d.unsupervised,
            random_windows=d.random_windows, shuffle_buffer=d.shuffle_buffer, seed=cfg.seed + seed_offset,
            encoder=encoder,
        )

    def _instantiate(self, cfg, data):
        from aigc_tf import registry

        return registry.build_model(cfg.model, cfg.seed, tokenizer=data.tokenizer.tokenizer)

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        super().check_sample_arguments(args, cfg, run_dir)
        if args.stop is not None:
            raise UserError("--stop is for the char and word models; a gpt2 run stops at <|endoftext|> by itself "
                            "(its BPE spells one string with different tokens in different contexts)")


# ------------------------------------------------------------ shared helpers
def learning_rate_of(cfg, data):
    """``train.learning_rate``, or a warm-up + cosine schedule over the whole run."""
    import keras

    t = cfg.train
    if t.lr_schedule == "constant":
        return t.learning_rate
    steps_per_epoch = t.steps_per_epoch or int(data.train.cardinality())
    total = max(t.epochs * steps_per_epoch - t.warmup_steps, 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if t.warmup_steps else t.learning_rate,
        decay_steps=total,
        warmup_target=t.learning_rate if t.warmup_steps else None,
        warmup_steps=t.warmup_steps,
    )


def sample_texts(model, prompt: str, num_samples: int, max_new_tokens: int, temperature: float, seed: int,
                 top_k: int = 0, top_p: float = 1.0, use_cache: bool = True, fn=None, stop: str | None = None
                 ) -> list[str]:
    """``num_samples`` continuations of ``prompt``; sample ``i`` uses seed ``seed + i``.

    Runs :func:`aigc_tf.models.text_base.text_generation_function`, the same
    graph the SavedModel export serves. ``fn``: a function made earlier by it.
    ``stop``: each sample ends where it spells this string (left out).
    """
    import tensorflow as tf

    from aigc_tf.models.text_base import text_generation_function

    if fn is None:
        fn, _ = text_generation_function(model, use_cache=use_cache, stop=stop)
    n = num_samples
    out = fn(
        tf.constant([prompt] * n),
        tf.fill([n], max_new_tokens),
        tf.fill([n], float(temperature)),
        tf.fill([n], top_k),
        tf.fill([n], float(top_p)),
        tf.range(seed, seed + n, dtype=tf.int32),
    )
    return [t.decode("utf-8", errors="replace") for t in out["texts"].numpy()]


def sample_budget(model, prompt: str, requested: int | None) -> int:
    """New tokens for the per-epoch samples after ``prompt`` (``train.sample_max_new_tokens``).

    Raises :class:`ConfigError` if a language model's prompt is empty, or if an
    explicit ``requested`` does not fit what the model's context leaves.
    """
    used = int(model.tokenize([prompt])[1].numpy()[0])
    if used == 0 and model.family in ("lm", "gpt2"):
        raise ConfigError(f"train.sample_prompt {prompt!r} has no tokens; a language model needs a text to continue")
    room = model.context_room(used)
    if room is not None and room < 1:
        raise ConfigError(
            f"train.sample_prompt has {used} tokens and fills the context of {model.context_length}; shorten it"
        )
    try:
        return model.new_token_budget(used, requested, "train.sample_max_new_tokens")
    except UserError as exc:
        raise ConfigError(f"{exc} (train.sample_prompt {prompt!r})") from None


def write_text_samples(path: Path, prompt: str, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [f"--- sample {i + 1} (prompt {prompt!r})\n{t}" for i, t in enumerate(texts)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def lm_perplexity(model, ids: np.ndarray, window: int, stride: int | None = None, batch_size: int = 32) -> float:
    """Perplexity of a token stream under a language model, with sliding windows.

    Windows of ``window`` tokens start every ``stride`` tokens (default
    ``window // 2``) and each target is scored once, in the first window
    where it is not among the first ``window - stride`` positions, so after
    the first window every token is predicted from at least
    ``window - stride`` tokens of context. (Disjoint windows, as in training,
    predict a window's first tokens from almost nothing, which inflates the
    perplexity and is not what an n-gram model is measured with.)
    """
    from aigc_tf.losses import masked_token_loss

    stride = stride or max(window // 2, 1)
    if not 1 <= stride <= window:
        raise ValueError(f"stride must be in [1, window={window}], got {stride}")
    n = len(ids) - 1  # predictable targets: ids[1:]
    if n < 1:
        raise UserError("the validation text has fewer than 2 tokens; it cannot be scored")
    window = min(window, n)
    inputs, targets, scored = [], [], 0
    start = 0
    while scored < n:
        start = min(start, n - window)
        x = ids[start : start + window]
        y = ids[start + 1 : start + window + 1].copy()
        positions = np.arange(start + 1, start + window + 1)
        y[positions <= scored] = 0  # already scored by an earlier window: masked like padding
        inputs.append(x)
        targets.append(y)
        scored = start + window
        start += stride
    inputs, targets = np.stack(inputs).astype("int32"), np.stack(targets).astype("int32")
    total, count = 0.0, 0.0
    for i in range(0, len(inputs), batch_size):
        t, c = masked_token_loss(targets[i : i + batch_size], model(inputs[i : i + batch_size], training=False))
        total, count = total + float(t), count + float(c)
    if int(count) != n:  # every target exactly once
        raise RuntimeError(f"scored {int(count)} of {n} tokens")
    return float(np.exp(total / count))


def _relation(ours: float, baseline: float, name: str) -> str:
    """``"beats NAME by 5.1%"``, ``"loses to NAME by 2.0%"`` or ``"ties with NAME"`` (perplexities: lower wins)."""
    change = ours / baseline - 1.0
    if change == 0:
        return f"ties with {name}"
    return f"{'beats' if change < 0 else 'loses to'} {name} by {abs(change):.1%}"


def continuation_perplexity(kn, pairs) -> float:
    """An n-gram model's perplexity of every seq2seq continuation given its
    prefix: the tokens (targets != 0) the seq2seq validation loss averages over.

    ``pairs``: the seq2seq validation batches, or ``(prefix ids, target ids)``
    numpy pairs taken from them once (faster when scoring many models)."""
    total, count = 0.0, 0
    for inputs, targets in pairs:
        if isinstance(inputs, dict):
            inputs, targets = inputs["prefix"].numpy(), targets.numpy()
        for prefix, cont in zip(inputs, targets, strict=True):
            prefix, cont = prefix[prefix != 0], cont[cont != 0]
            ll, n = kn.log_likelihood(np.concatenate([prefix, cont]), start=len(prefix))
            total, count = total + ll, count + n
    return float(np.exp(-total / max(count, 1)))


