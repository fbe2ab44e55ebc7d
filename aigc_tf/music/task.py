"""Music families: the melody encoder-decoder LSTM (``melody``), the note LSTM
(``note_seq``), the music Transformer (``music_lm``), the chorale RNN-NADE
(``chorale``) and the piano-roll GAN (``music_gan``).

Data: :mod:`aigc_tf.music.data` (each family its representation). Per-epoch
samples: ``samples/epoch_NNNN/000.mid`` (+ ``.wav``) and
``samples/epoch_NNNN.png`` (piano rolls). Generation goes through one
``tf.function`` per model (:meth:`MusicTask.generation_function`) that takes
a primer as note arrays and returns note arrays: ``aigc-tf sample`` and the
SavedModel's ``serving_default`` run the same graph. Quality: held-out NLL
beside a Markov / n-gram baseline on the same tokens, and the Yang & Lerch
statistics of samples against held-out music (:mod:`aigc_tf.music.quality`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from aigc_tf.config import DataConfig
from aigc_tf.errors import ConfigError, UserError
from aigc_tf.tasks.base import Task, positive, quality_every_k_epochs, train_adam

MUSIC_DATASETS = ("chorales", "folk", "midi", "jsb")
SAMPLE_PIECES = 4  # MIDI/WAV files per epoch in samples/
STATISTICS_BARS = 8  # samples and held-out excerpts compared by the sample statistics
DEFAULT_BARS = 8  # length of samples when neither --steps nor --bars is given


@dataclasses.dataclass
class MusicDataConfig(DataConfig):
    """``data:`` keys of music models."""

    name: str = "chorales"
    # Tokens (music_transformer), notes (note_lstm), grid steps (melody_lstm: half seed, half continuation)
    # or frames (chorale_nade; null: whole pieces) per training example.
    seq_len: int | None = 256
    transpose: int = 0  # augmentation: shift each training example by a random -k..k semitones per epoch


def note_specs():
    """Input specs of a primer given as padded note arrays ``(B, N)`` and its note counts ``(B,)``."""
    import tensorflow as tf

    return [tf.TensorSpec([None, None], tf.int32, name="pitch"), tf.TensorSpec([None, None], tf.float32, name="start"),
            tf.TensorSpec([None, None], tf.float32, name="end"), tf.TensorSpec([None, None], tf.int32, name="velocity"),
            tf.TensorSpec([None], tf.int32, name="num_notes")]


class MusicTask(Task):
    """What every music family shares: config checks, data, compile, samples, the CLI's sample command."""

    modality = "music"
    datasets = MUSIC_DATASETS
    data_config = MusicDataConfig
    representation = ""
    objective = ("val_loss", "min")
    sparse_metrics = ("overlap",)
    # Sampling controls of the generation signature after (primer, steps), in order.
    controls = ("temperature", "top_k", "top_p", "seed")
    steps_name = "tokens"  # what --steps counts for this family

    # ------------------------------------------------------------ config
    def model_params(self, cfg) -> dict:
        """The model's constructor arguments: defaults and preset, then the config's ``model:`` keys."""
        from aigc_tf import registry

        params = {k: v for k, (_, v) in registry.model_arguments(cfg.model["name"]).items()}
        params.update({k: v for k, v in cfg.model.items() if k != "name"})
        return params

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        d = cfg.data
        if d.name in ("midi", "jsb") and not d.path:
            what = "a MIDI file or a folder of them" if d.name == "midi" else "a JSB Chorales .json or .pickle file"
            raise ConfigError(f"{source}: data.name={d.name} needs data.path, {what}")
        if d.seq_len is not None and d.seq_len < 2:
            raise ConfigError(f"{source}: data.seq_len must be at least 2 (or null for whole pieces), got {d.seq_len}")
        if d.seq_len is None and self.representation in ("events", "melody", "notes"):
            raise ConfigError(f"{source}: data.seq_len: null (whole pieces) applies to chorale_nade only; set a length")
        if not 0 <= d.transpose <= 12:
            raise ConfigError(f"{source}: data.transpose must be 0-12 semitones, got {d.transpose}")

    # -------------------------------------------------------- data, model
    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.music.data import load_music_data

        return load_music_data(cfg.data, self.representation, self.model_params(cfg), seed=cfg.seed + seed_offset,
                               verbose=cfg.train.verbose > 0)

    def build_model(self, cfg, data):
        from aigc_tf import registry
        from aigc_tf.tasks.text import learning_rate_of

        try:
            model = registry.build_model(cfg.model, cfg.seed)
        except ValueError as exc:
            raise ConfigError(f"model {cfg.model['name']!r} cannot be built: {exc}") from None
        t = cfg.train
        optimizer = train_adam(t, learning_rate_of(cfg, data))
        kwargs = dict(steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
        if t.clipnorm is not None:
            kwargs["clip_norm"] = t.clipnorm
        model.compile(optimizer=optimizer, **kwargs)
        return model

    # -------------------------------------------------------- generation
    def generation_function(self, model):
        """``(tf.function, input specs)``: ``model.generate_notes`` with the serving signature
        (primer note arrays, ``steps``, then :attr:`controls`, all ``[batch]``). Cached per model."""
        import tensorflow as tf

        cache = self.__dict__.setdefault("_generation_fns", {})
        if id(model) not in cache:
            kinds = {"temperature": tf.float32, "top_k": tf.int32, "top_p": tf.float32, "seed": tf.int32}
            specs = [*note_specs(), tf.TensorSpec([None], tf.int32, name="steps"),
                     *[tf.TensorSpec([None], kinds[c], name=c) for c in self.controls]]
            fn = tf.function(model.generate_notes, input_signature=specs, autograph=False)
            cache[id(model)] = (model, fn, specs)  # the model is kept so its id is not reused
        return cache[id(model)][1:]

    def generate(self, model, primer: np.ndarray | None, n: int, steps: int, seed: int, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0) -> list[np.ndarray]:
        """``n`` pieces continuing ``primer`` (a note array, or None) by ``steps`` model steps;
        piece ``i`` uses seed ``seed + i``."""
        out = self.generate_raw(model, primer, n, steps, seed, temperature, top_k, top_p)
        return self.notes_of(out)

    def generate_raw(self, model, primer, n, steps, seed, temperature=1.0, top_k=0, top_p=1.0) -> dict:
        import tensorflow as tf

        from aigc_tf.music.representations import pad_notes

        fn, _ = self.generation_function(model)
        primer = self.default_primer() if primer is None else primer
        arrays = pad_notes([primer] * n)
        values = {"temperature": tf.fill([n], float(temperature)), "top_k": tf.fill([n], int(top_k)),
                  "top_p": tf.fill([n], float(top_p)), "seed": tf.range(seed, seed + n, dtype=tf.int32)}
        out = fn(*[tf.constant(arrays[k]) for k in ("pitch", "start", "end", "velocity", "num_notes")],
                 tf.fill([n], int(steps)), *[values[c] for c in self.controls])
        return {k: v.numpy() for k, v in out.items()}

    @staticmethod
    def notes_of(out: dict) -> list[np.ndarray]:
        from aigc_tf.music.representations import notes_from_arrays

        return notes_from_arrays(out["pitch"], out["start"], out["end"], out["velocity"], out["num_notes"])

    def default_primer(self) -> np.ndarray:
        """What generation continues without ``--primer``: nothing (models that need a note override this)."""
        from aigc_tf.music.notes import NOTE_DTYPE

        return np.zeros(0, NOTE_DTYPE)

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        """Model steps that cover ``bars`` bars of 4/4 after ``primer`` (generation is then cut at the
        last bar line)."""
        raise NotImplementedError

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        from aigc_tf.music import outputs

        n = min(cfg.train.num_samples, SAMPLE_PIECES)
        pieces = self.sample_pieces(model, n, cfg.seed, bars=DEFAULT_BARS, temperature=cfg.train.sample_temperature)
        outputs.write_pieces(folder / f"epoch_{epoch:04d}", pieces)
        outputs.piano_roll_png(pieces, folder / f"epoch_{epoch:04d}.png",
                               titles=[f"epoch {epoch}, seed {cfg.seed + i}" for i in range(n)])

    def sample_pieces(self, model, n: int, seed: int, primer=None, steps: int | None = None, bars: int | None = None,
                      temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> list[np.ndarray]:
        """``n`` generated pieces: ``steps`` model steps, or ``bars`` bars (cut at the last bar line)."""
        from aigc_tf.music.notes import SECONDS_PER_BEAT

        if steps is None:
            steps = self.steps_for_bars(model, bars or DEFAULT_BARS, primer)
        pieces = self.generate(model, primer, n, steps, seed, temperature, top_k, top_p)
        if bars is not None:
            primer_end = float(primer["end"].max()) if primer is not None and len(primer) else 0.0
            limit = primer_end + bars * 4 * SECONDS_PER_BEAT
            pieces = [cut(p, limit) for p in pieces]
        return pieces

    def quality_callback(self, cfg):
        """The mean Yang & Lerch overlap area of samples against held-out music every
        ``train.quality_every`` epochs (``overlap``; 1 is indistinguishable)."""
        if not cfg.train.quality_every:
            return None
        from aigc_tf.music.quality import mean_overlap

        reference = self.reference_halves(cfg, 0)[0][: max(cfg.train.quality_samples, 2)]

        def overlap(model):
            generated = self.sample_pieces(model, len(reference), cfg.seed, bars=STATISTICS_BARS)
            return mean_overlap(self.comparable(reference, generated), generated)

        return quality_every_k_epochs(cfg, "overlap", overlap)

    def reference_halves(self, cfg, seed: int) -> tuple[list, list, str]:
        """Two halves of the held-out pieces (test, else valid), each cut to its first
        :data:`STATISTICS_BARS` bars of 4/4 from its first onset."""
        from aigc_tf.music.data import load_pieces

        pieces, _, _ = load_pieces(cfg.data, verbose=False)
        split = "test" if len(pieces["test"]) >= 4 else "valid"
        excerpts = [e for e in (excerpt(p.notes, STATISTICS_BARS) for p in pieces[split]) if len(e) >= 2]
        if len(excerpts) < 4:
            raise UserError(f"the {split} split of {cfg.data.name} has {len(excerpts)} usable pieces; the sample "
                            "statistics need at least 4 (two halves of two)")
        order = np.random.default_rng(seed).permutation(len(excerpts))
        half = len(order) // 2
        return [excerpts[i] for i in order[:half]], [excerpts[i] for i in order[half : 2 * half]], split

    @staticmethod
    def comparable(real: list[np.ndarray], generated: list[np.ndarray]) -> list[np.ndarray]:
        """Real pieces with their voices merged into one when the model's output has no voices
        (token models), so per-voice features compare like with like."""
        if any(len(g) and g["voice"].max() > 0 for g in generated):
            return real
        out = []
        for r in real:
            r = r.copy()
            r["voice"] = 0
            out.append(r)
        return out

    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        """Held-out likelihood beside its baseline (:meth:`likelihood`), then the Yang & Lerch
        statistics of ``-n`` samples (default: half the held-out pieces) of
        :data:`STATISTICS_BARS` bars against one half, beside the other half."""
        from aigc_tf.music.quality import yang_lerch

        data = self.load_data(cfg, model=model)
        result = {"run_dir": str(run_dir), "model": cfg.model["name"], "dataset": cfg.data.name,
                  "source": data.source, "seed": seed,
                  **{f"{s}_pieces": len(p) for s, p in data.pieces.items()}}
        result.update(self.likelihood(cfg, model, data))
        r1, r2, split = self.reference_halves(cfg, seed)
        n = n_samples or len(r1)
        generated = self.sample_pieces(model, n, seed, bars=STATISTICS_BARS)
        empty = sum(1 for g in generated if len(g) < 2)
        generated = [g for g in generated if len(g) >= 2]
        if len(generated) < 2:
            raise UserError(f"{empty} of {n} samples have fewer than 2 notes; the statistics need pieces. "
                            "Train longer or raise -n")
        r1c, r2c = self.comparable(r1, generated), self.comparable(r2, generated)
        result.update(statistics_split=split, statistics_bars=STATISTICS_BARS, statistics_samples=len(generated),
                      statistics_reference=len(r1), samples_without_notes=empty,
                      statistics=("Yang & Lerch: OA / KL of the reference half's intra-set distances against its "
                                  "distances to the samples (oa, kl) and to the other real half (oa_real, kl_real)"))
        result.update(yang_lerch(r1c, generated, r2c))
        result.update(self.more_statistics(cfg, model, generated, r1, r2))
        return result

    def likelihood(self, cfg, model, data) -> dict:
        return {}

    def more_statistics(self, cfg, model, generated, r1, r2) -> dict:
        return {}

    # ---------------------------------------------------- after training
    def export_endpoints(self, model) -> dict:
        fn, specs = self.generation_function(model)
        return {"serving_default": (fn, specs)}

    def warmup_inputs(self, model, batch: int) -> dict:
        """Warmup requests: an empty primer (one padding column) and one step."""
        names = [s.name for s in self.generation_function(model)[1]]
        values = {"pitch": np.zeros((batch, 1), np.int32), "start": np.zeros((batch, 1), np.float32),
                  "end": np.zeros((batch, 1), np.float32), "velocity": np.zeros((batch, 1), np.int32),
                  "num_notes": self._warmup_notes(batch), "steps": np.ones(batch, np.int32),
                  "temperature": np.ones(batch, np.float32), "top_k": np.zeros(batch, np.int32),
                  "top_p": np.ones(batch, np.float32), "seed": np.zeros(batch, np.int32)}
        if self.default_primer() is not None and len(self.default_primer()):
            p = self.default_primer()
            values.update(pitch=np.tile(p["pitch"][None], (batch, 1)).astype(np.int32),
                          start=np.tile(p["start"][None], (batch, 1)).astype(np.float32),
                          end=np.tile(p["end"][None], (batch, 1)).astype(np.float32),
                          velocity=np.tile(p["velocity"][None], (batch, 1)).astype(np.int32),
                          num_notes=np.full(batch, len(p), np.int32))
        return {"serving_default": {k: values[k] for k in names}}

    @staticmethod
    def _warmup_notes(batch):
        return np.zeros(batch, np.int32)

    # ----------------------------------------------------------------- cli
    @classmethod
    def add_sample_arguments(cls, parser) -> None:
        import argparse

        parser.add_argument("--primer", metavar="FILE.mid", help="music: a MIDI file to continue (default: none; "
                                                                 "the note and melody LSTMs start from middle C)")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--steps", type=positive, help="music: model steps to generate (tokens, notes, "
                                                          "16th-note steps or beat frames, by model)")
        group.add_argument("--bars", type=positive, help="music: bars of 4/4 to generate (default 8)")
        # Shared with text: defined by whichever family adds it first.
        for flag, kwargs in (("--temperature", dict(type=float, default=1.0, help="softmax temperature; 0 = greedy")),
                             ("--top-k", dict(type=int, default=0, help="sample among the K most likely; 0 = off")),
                             ("--top-p", dict(type=float, default=1.0, help="nucleus mass in (0, 1]; 1 = off"))):
            try:
                parser.add_argument(flag, **kwargs)
            except argparse.ArgumentError:
                pass
        try:
            parser.add_argument("--no-wav", action="store_true", help="music: write MIDI and PNG only, no WAV render")
        except argparse.ArgumentError:
            pass

    def _out(self, args, cfg, run_dir: Path) -> Path:
        seed = cfg.seed if args.seed is None else args.seed
        return Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_n{args.n or 1}"

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
        if args.primer is not None:
            self.read_primer(args.primer)
        out = self._out(args, cfg, run_dir)
        if out.suffix.lower() in (".mid", ".midi", ".wav", ".png") or (out.exists() and not out.is_dir()):
            raise UserError(f"--out {out} must be a folder (the pieces are written as 000.mid, 001.mid, ...)")
        if out.is_dir() and any(out.glob("*.mid")):
            raise UserError(f"--out {out} already holds MIDI files; choose another folder (nothing is overwritten)")

    @staticmethod
    def read_primer(path) -> np.ndarray:
        from aigc_tf.music.midi import read_midi

        if not Path(path).is_file():
            raise UserError(f"--primer {path} not found; pass a MIDI file to continue")
        return read_midi(path)[0].notes

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        from aigc_tf.music import outputs

        seed = cfg.seed if args.seed is None else args.seed
        n = args.n or 1
        primer = self.read_primer(args.primer) if args.primer else None
        self.check_primer(model, primer, args.steps)
        bars = None if args.steps else (args.bars or DEFAULT_BARS)
        pieces = self.sample_pieces(model, n, seed, primer, steps=args.steps, bars=bars,
                                    temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        out = self._out(args, cfg, run_dir)
        outputs.write_pieces(out, pieces, wav=not args.no_wav)
        outputs.piano_roll_png(pieces, out / "piano_rolls.png",
                               titles=[f"seed {seed + i} ({len(p)} notes)" for i, p in enumerate(pieces)])
        length = f"{args.steps} {self.steps_name}" if args.steps else f"{bars} bars"
        print(f"Wrote {n} pieces ({length}, seed {seed}) to {out}")
        return 0

    def check_primer(self, model, primer, steps) -> None:
        """Refuse, before generating, a primer the model cannot continue."""


def excerpt(notes: np.ndarray, bars: int) -> np.ndarray:
    """The first ``bars`` bars of 4/4 of a note array, from its first onset (moved to 0)."""
    from aigc_tf.music.notes import SECONDS_PER_BEAT

    if not len(notes):
        return notes
    shifted = notes.copy()
    first = shifted["start"].min()
    shifted["start"] -= first
    shifted["end"] -= first
    return cut(shifted, bars * 4 * SECONDS_PER_BEAT)


def cut(notes: np.ndarray, limit: float) -> np.ndarray:
    """Notes that start before ``limit`` seconds, ended at it."""
    kept = notes[notes["start"] < limit].copy()
    kept["end"] = np.minimum(kept["end"], limit)
    return kept


# ------------------------------------------------------------------ chorale
class ChoraleTask(MusicTask):
    """``chorale_nade``: 88-key frames, NLL in nats per frame."""

    family = "chorale"
    representation = "frames"
    controls = ("temperature", "seed")
    steps_name = "frames"
    sparse_metrics = ("test_nll",)

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        return 4 * bars

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        if cfg.train.clipnorm is not None:
            raise ConfigError(f"{source}: train.clipnorm applies to the token models, not chorale_nade")

    def build_model(self, cfg, data):
        from aigc_tf import registry
        from aigc_tf.tasks.text import learning_rate_of

        model = registry.build_model(cfg.model, cfg.seed)
        t = cfg.train
        model.compile(optimizer=train_adam(t, learning_rate_of(cfg, data)),
                      steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
        return model

    def quality_callback(self, cfg):
        """The test NLL in nats per frame every ``train.quality_every`` epochs."""
        if not cfg.train.quality_every:
            return None
        frames = self.split_frames(cfg, "test")

        def test_nll(model):
            return chorale_nll(model, frames)

        return quality_every_k_epochs(cfg, "test_nll", test_nll)

    def likelihood(self, cfg, model, data) -> dict:
        from aigc_tf.music.quality import KeyMarkov

        ex = data.examples
        test = ex["test"] or ex["valid"]
        ours = chorale_nll(model, test)
        markov = KeyMarkov().fit(ex["train"]).nll(test)
        return {"nll_unit": "nats per frame (88-key quarter-note frames, whole pieces)",
                "test_split": "test" if ex["test"] else "valid", "test_frames": int(sum(len(f) for f in test)),
                "test_nll": ours, "valid_nll": chorale_nll(model, ex["valid"]) if ex["valid"] else None,
                "baseline": "each key a first-order Markov chain of its own (add-one), independent keys",
                "baseline_test_nll": markov, "beats_baseline": bool(ours < markov)}

    def split_frames(self, cfg, split: str) -> list[np.ndarray]:
        from aigc_tf.music.data import frames_of, load_pieces
        from aigc_tf.music.jsb import piece_frames

        pieces, frames, _ = load_pieces(cfg.data, verbose=False)
        if frames is None:
            frames = {s: [piece_frames(p) for p in pieces[s]] for s in pieces}
        return [frames_of(f) for f in frames.get(split, []) if len(f)]


def chorale_nll(model, frames: list[np.ndarray], batch_size: int = 16) -> float:
    """Mean negative log-likelihood in nats per frame over whole pieces (each from its first frame)."""
    import tensorflow as tf

    if not frames:
        raise UserError("no pieces to score (the split is empty)")
    total, count = 0.0, 0
    order = sorted(range(len(frames)), key=lambda i: len(frames[i]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        rows = [frames[i] for i in order[start : start + batch_size]]
        width = max(len(r) for r in rows)
        x = np.zeros((len(rows), width, frames[0].shape[1]), np.float32)
        mask = np.zeros((len(rows), width), np.float32)
        for i, r in enumerate(rows):
            x[i, : len(r)] = r
            mask[i, : len(r)] = 1
        nll = model.frame_nll(tf.constant(x)).numpy()
        total += float((nll * mask).sum())
        count += int(mask.sum())
    return total / count


# ------------------------------------------------------------ token models
class MusicLMTask(MusicTask):
    """``music_transformer``: event tokens, NLL in nats per token."""

    family = "music_lm"
    representation = "events"
    steps_name = "tokens"
    tokens_per_bar = 48  # budget for --bars (a chorale bar of 4/4 takes about 20-40 event tokens)

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        used = self.primer_length(model, primer)
        return max(1, min(self.tokens_per_bar * bars, model.context_room(used)))

    @staticmethod
    def primer_length(model, primer) -> int:
        """Event tokens of a primer (START included)."""
        import tensorflow as tf

        from aigc_tf.music.representations import pad_notes

        if primer is None:
            return 1
        a = pad_notes([primer])
        _, lengths = model.primer_tokens(*[tf.constant(a[k]) for k in ("pitch", "start", "end", "velocity",
                                                                        "num_notes")])
        return int(lengths.numpy()[0])

    def check_model(self, cfg, model) -> None:
        if cfg.data.seq_len > model.context_length:
            raise ConfigError(f"data.seq_len={cfg.data.seq_len} is longer than model.context_length="
                              f"{model.context_length}; lower data.seq_len or raise model.context_length")

    def check_primer(self, model, primer, steps) -> None:
        used = self.primer_length(model, primer)
        model.new_token_budget(used, steps, "--steps")  # the text models' policy: one line naming what fits

    def likelihood(self, cfg, model, data) -> dict:
        from aigc_tf.tasks.text import lm_perplexity

        train, valid, test = data.examples["train"], data.examples["valid"], data.examples["test"]
        split = "test" if len(test) > 1 else "valid"
        test = test if split == "test" else valid
        ours = float(np.log(lm_perplexity(model, test, min(cfg.data.seq_len, model.context_length))))
        tuning = valid if split == "test" and len(valid) > 1 else None
        result = ngram_baseline(train, tuning, test, model.vocab_size, lambda lm, ids: np.log(lm.perplexity(ids)))
        return {"nll_unit": "nats per event token (sliding windows, each token once)", "test_split": split,
                "test_tokens": int(len(test)), "test_nll": ours, "test_perplexity": float(np.exp(ours)),
                **result, "beats_baseline": bool(ours < result["baseline_test_nll"])}


class MelodyTask(MusicTask):
    """``melody_lstm``: 16th-note melody tokens, NLL in nats per step of the continuation."""

    family = "melody"
    representation = "melody"
    steps_name = "16th-note steps"

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        return 4 * model.steps_per_beat * bars

    def default_primer(self) -> np.ndarray:
        from aigc_tf.music.notes import make_notes

        return make_notes([60], [0.0], [0.5])  # middle C, one beat

    def likelihood(self, cfg, model, data) -> dict:
        from aigc_tf.tasks.text import continuation_perplexity

        split = "test" if data.build("test") is not None else "valid"
        test = data.build(split)
        if test is None:
            raise UserError(f"{cfg.data.name} has no held-out melody of data.seq_len={cfg.data.seq_len} steps; "
                            "lower it")
        ours = float(model.evaluate(test, return_dict=True, verbose=0)["loss"])
        pairs = [(x["prefix"].numpy(), y.numpy()) for x, y in test]
        valid = data.build("valid") if split == "test" else None
        valid_pairs = [(x["prefix"].numpy(), y.numpy()) for x, y in valid] if valid is not None else None
        train = np.concatenate(data.examples["train"])
        result = ngram_baseline(train, valid_pairs, pairs, model.vocab_size,
                                lambda lm, p: np.log(continuation_perplexity(lm, p)))
        return {"nll_unit": "nats per 16th-note step of the continuation, given the seed", "test_split": split,
                "test_pairs": len(pairs), "test_nll": ours, **result,
                "beats_baseline": bool(ours < result["baseline_test_nll"])}


class NoteSequenceTask(MusicTask):
    """``note_lstm``: (pitch, step, duration) per note, NLL in nats per note."""

    family = "note_seq"
    representation = "notes"
    steps_name = "notes"
    notes_per_bar = 24

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        return self.notes_per_bar * bars

    def default_primer(self) -> np.ndarray:
        from aigc_tf.music.notes import make_notes

        return make_notes([60], [0.0], [0.5])

    def build_model(self, cfg, data):
        if cfg.train.clipnorm is not None:
            raise ConfigError("train.clipnorm applies to the token models (music_transformer, melody_lstm)")
        return ChoraleTask.build_model(self, cfg, data)

    def likelihood(self, cfg, model, data) -> dict:
        train, valid, test = data.examples["train"], data.examples["valid"], data.examples["test"]
        split = "test" if len(test) > 1 else "valid"
        test = test if split == "test" else valid
        ours = note_stream_nll(model, test, cfg.data.seq_len)
        symbols = lambda e: note_symbols(e, model.max_step, model.max_duration)  # noqa: E731
        vocab = 128 * (model.max_step + 1) * model.max_duration
        tuning = symbols(valid) if split == "test" and len(valid) > 1 else None
        result = ngram_baseline(symbols(train), tuning, symbols(test), vocab,
                                lambda lm, ids: np.log(lm.perplexity(ids)))
        return {"nll_unit": "nats per note (pitch + step + duration; sliding windows)", "test_split": split,
                "test_notes": int(len(test)), "test_nll": ours["nll"],
                **{f"test_{f}_nll": ours[f] for f in ("pitch", "step", "duration")}, **result,
                "baseline_symbols": "each note one symbol (pitch, step class, duration class)",
                "beats_baseline": bool(ours["nll"] < result["baseline_test_nll"])}


# ------------------------------------------------------------------- GAN
class MusicGANTask(MusicTask):
    """``musegan``: piano-roll phrases from noise."""

    family = "music_gan"
    representation = "rolls"
    objective = ("overlap", "max")
    sparse_metrics = ("overlap",)
    controls = ()
    steps_name = "phrases"

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        if cfg.train.lr_schedule != "constant" or cfg.train.clipnorm is not None:
            raise ConfigError(f"{source}: train.lr_schedule and train.clipnorm apply to the likelihood models")

    def build_model(self, cfg, data):
        from aigc_tf import registry
        from aigc_tf.tasks.base import compile_adam

        try:
            model = registry.build_model(cfg.model, cfg.seed)
        except ValueError as exc:
            raise ConfigError(f"model {cfg.model['name']!r} cannot be built: {exc}") from None
        return compile_adam(model, cfg.train)

    def steps_for_bars(self, model, bars: int, primer=None) -> int:
        return -(-bars // model.bars)  # phrases

    def rolls_to_notes(self, model, rolls) -> list[np.ndarray]:
        """Generated rolls ``(n, phrases, bars, steps, pitches, voices)`` -> one note array per piece
        (phrases one after the other; a cell above 0 is on)."""
        from aigc_tf.music.representations import roll_to_notes

        n, phrases = rolls.shape[:2]
        flat = rolls.reshape(n, -1, model.num_pitches, model.voices)
        return [roll_to_notes(r, model.steps_per_beat, model.pitch_low) for r in flat]

    def generate_rolls(self, model, n: int, phrases: int, seed: int) -> np.ndarray:
        """``(n, phrases, bars, steps, pitches, voices)``: piece ``i`` from the noise of seed ``seed + i``."""
        out = []
        for i in range(n):
            z = model.sample_latent(phrases, seed=seed + i)
            out.append(np.asarray(model.generate(z=z)))
        return np.stack(out)

    def generate(self, model, primer, n, steps, seed, temperature=1.0, top_k=0, top_p=1.0) -> list[np.ndarray]:
        return self.rolls_to_notes(model, self.generate_rolls(model, n, max(int(steps), 1), seed))

    def sample_pieces(self, model, n, seed, primer=None, steps=None, bars=None, temperature=1.0, top_k=0, top_p=1.0):
        phrases = steps if steps is not None else self.steps_for_bars(model, bars or DEFAULT_BARS)
        pieces = self.generate(model, None, n, phrases, seed)
        if bars is not None:
            from aigc_tf.music.notes import SECONDS_PER_BEAT

            pieces = [cut(p, bars * 4 * SECONDS_PER_BEAT) for p in pieces]
        return pieces

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        if args.primer is not None:
            raise UserError("--primer needs a sequence model; a piano-roll GAN generates from noise only")
        if args.temperature != 1.0 or args.top_k or args.top_p != 1.0:
            raise UserError("--temperature, --top-k and --top-p apply to the sequence models, not a GAN")
        super().check_sample_arguments(args, cfg, run_dir)

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        def rolls(z):
            x = model.generate(z=z)
            return {"rolls": x, "notes_on": x > 0}

        return {"serving_default": (rolls, [tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")])}

    def warmup_inputs(self, model, batch: int) -> dict:
        return {}

    def more_statistics(self, cfg, model, generated, r1, r2) -> dict:
        """MuseGAN's metrics of generated phrases and of the held-out phrases."""
        from aigc_tf.music.data import load_music_data
        from aigc_tf.music.quality import musegan_metrics

        steps_per_bar = 4 * model.steps_per_beat
        n = len(generated)
        fake = self.generate_rolls(model, n, 1, 10_000 + cfg.seed)[:, 0] > 0  # (n, bars, steps, pitches, voices)
        data = load_music_data(cfg.data, "rolls", self.model_params(cfg), verbose=False)
        real = data.examples["test"] if len(data.examples["test"]) else data.examples["valid"]
        flat = lambda r: r.reshape(len(r), -1, model.num_pitches, model.voices)  # noqa: E731
        out = {"musegan_phrases": n, "musegan_real_phrases": int(len(real)),
               "musegan_note": f"qualified notes: at least {2} grid steps (an 8th note)"}
        for name, rolls in (("generated", fake), ("real", real)):
            for key, values in musegan_metrics(flat(rolls), steps_per_bar).items():
                out[f"{key}_{name}"] = [round(float(v), 4) for v in values]
        return out


# ------------------------------------------------------------ likelihoods
def ngram_baseline(train, tuning, test, vocab_size: int, nll) -> dict:
    """Modified Kneser-Ney on the training tokens, its order (1-10) chosen by ``nll(lm, tuning)``
    (no tuning data: order 5), scored by ``nll(lm, test)`` in nats."""
    from aigc_tf.metrics.ngram import MAX_TUNED_ORDER, ModifiedKneserNey, NgramCounts, tuned_modified_kneser_ney

    counts = NgramCounts(train, MAX_TUNED_ORDER)
    if tuning is not None:
        best, by_order = tuned_modified_kneser_ney(train, vocab_size, lambda lm: nll(lm, tuning), counts=counts)
        how = f"modified Kneser-Ney, order {best.order} chosen on the valid split from 1 to {MAX_TUNED_ORDER}"
    else:
        best, by_order = ModifiedKneserNey(5, vocab_size, counts), {}
        how = "modified Kneser-Ney of order 5 (no valid split to choose the order on)"
    return {"baseline": how, "baseline_order": best.order, "baseline_test_nll": float(nll(best, test)),
            "baseline_valid_nll_by_order": {str(k): float(v) for k, v in by_order.items()}}


def note_symbols(events: np.ndarray, max_step: int, max_duration: int) -> np.ndarray:
    """Note events ``(n, 4)`` (pitch, step, duration class, velocity) -> one symbol id per note."""
    return ((events[:, 0].astype(np.int64) * (max_step + 1) + events[:, 1]) * max_duration + events[:, 2])


def note_stream_nll(model, events: np.ndarray, window: int, batch_size: int = 32) -> dict:
    """The note LSTM's NLL in nats per note of a note stream, with sliding windows as
    :func:`aigc_tf.tasks.text.lm_perplexity` does (stride ``window / 2``, each note scored once,
    after at least ``window / 2`` notes of context once past the first window)."""
    import tensorflow as tf
    from keras import ops

    from aigc_tf.music.note_lstm import FIELDS

    n = len(events) - 1
    if n < 1:
        raise UserError("the held-out notes are fewer than 2; they cannot be scored")
    window = min(window, n)
    stride = max(window // 2, 1)
    rows, masks, scored, start = [], [], 0, 0
    while scored < n:
        start = min(start, n - window)
        rows.append(events[start : start + window + 1])
        positions = np.arange(start + 1, start + window + 1)
        masks.append((positions > scored).astype(np.float32))
        scored = start + window
        start += stride
    rows, masks = np.stack(rows), np.stack(masks)
    sums = {f: 0.0 for f in FIELDS}
    for i in range(0, len(rows), batch_size):
        x = rows[i : i + batch_size]
        logits = model({f: tf.constant(x[:, :-1, j]) for j, f in enumerate(FIELDS)}, training=False)
        for j, f in enumerate(FIELDS):
            ce = ops.sparse_categorical_crossentropy(x[:, 1:, j], logits[f], from_logits=True)
            sums[f] += float(tf.reduce_sum(ce * masks[i : i + batch_size]))
    count = float(masks.sum())
    if int(count) != n:
        raise RuntimeError(f"scored {int(count)} of {n} notes")
    out = {f: sums[f] / count for f in FIELDS}
    out["nll"] = sum(out.values())
    return out
