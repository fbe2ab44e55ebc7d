"""``aigc-tf``: train, sample and export generative models from YAML configs.

The CLI only parses arguments and calls library functions. TensorFlow is
imported inside the commands that need it, so ``aigc-tf --help`` is instant.
Errors caused by user input (:class:`aigc_tf.errors.UserError`) print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from aigc_tf.errors import UserError

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3


def _verbose(flag: bool) -> bool:
    return flag or os.environ.get("AIGC_TF_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    """Send the process's file descriptor 2 to /dev/null inside the block.

    TensorFlow's C++ start-up lines (absl's "before InitializeLog", CUDA stub
    and cuInit notices on a machine without a GPU, oneDNN, CPU features) are
    written straight to fd 2 during ``import tensorflow`` and the first device
    set-up, and ``TF_CPP_MIN_LOG_LEVEL`` does not hide all of them. Python
    exceptions still propagate and are printed after the block.
    """
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_tensorflow(verbose: bool = False, cpu_devices: int = 1) -> None:
    """Import TensorFlow and set up its devices (``cpu_devices`` logical CPUs for a
    mirrored run without a GPU), quietly unless ``verbose``."""
    quiet = not _verbose(verbose)
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_stderr(quiet):
        import tensorflow as tf

        from aigc_tf.training import configure_cpu_devices

        # Logical CPU devices must exist before TensorFlow runs its first op.
        configure_cpu_devices(cpu_devices)
        tf.config.list_logical_devices()


def _default_run_dir(config_path: str) -> Path:
    return Path("runs") / Path(config_path).stem


def cmd_train(args) -> int:
    from aigc_tf.config import load_config

    cfg = load_config(args.config, [item for group in (args.set or []) for item in group])
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(args.config)
    start_tensorflow(args.verbose, cfg.train.cpu_devices if cfg.train.strategy == "mirrored" else 1)
    from aigc_tf.training import train

    train(cfg, run_dir, resume=args.resume)
    print(f"Finished: {run_dir} (model.keras, samples/, history.json)")
    return 0


def _text_budget(model, family: str, prompt: str, max_new_tokens: int | None) -> int:
    """Refuse, before any decoding, a prompt the model cannot continue; return the new-token count."""
    ids, lengths = model.tokenize([prompt])
    n = int(lengths.numpy()[0])
    if n == 0 and family == "lm":
        raise UserError("--prompt is empty (no known tokens); a language model continues a text: pass --prompt 'TEXT'")
    return model.new_token_budget(n, max_new_tokens, "--max-new-tokens")


def _sample_text(args, cfg, run_dir: Path, seed: int) -> int:
    from aigc_tf import registry, training

    family = registry.family(cfg.model["name"])
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be >= 0 (0 = off), got {args.top_k}")
    n = args.n or 1
    if seed + n > 2**31:
        raise UserError(f"--seed + -n must stay below 2**31 (sample i uses seed + i), got {seed} + {n}")
    model = training.load_model(training.final_model_path(run_dir))
    if args.interpolate is not None:
        if family != "text_vae":
            raise UserError("--interpolate needs a text_vae run")
        if args.prompt is None:
            raise UserError("--interpolate TEXT_B needs --prompt TEXT_A: it walks from one to the other")
        max_new = model.new_token_budget(0, args.max_new_tokens, "--max-new-tokens")
        for i, line in enumerate(model.interpolate(args.prompt, args.interpolate, steps=max(n, 2),
                                                   max_new_tokens=max_new)):
            print(f"[{i}] {line}")
        return 0
    prompt = args.prompt
    if prompt is None:
        prompt = "" if family != "lm" else cfg.train.sample_prompt
    max_new = _text_budget(model, family, prompt, args.max_new_tokens)
    if args.beam:
        ids, lengths = model.tokenize([prompt])
        tokens, score = model.beam_search_ids(ids, lengths, max_new, beam_width=args.beam)
        text = model.detokenize(tokens).numpy()[0].decode("utf-8", errors="replace")
        print(f"--- beam search (width {args.beam}, log-probability {float(score[0]):.2f})")
        print(model.join(prompt, text) if family == "lm" else text)
        return 0
    texts = training.sample_texts(model, prompt, n, max_new, args.temperature, seed,
                                  top_k=args.top_k, top_p=args.top_p)
    if family == "lm":
        texts = [model.join(prompt, text) for text in texts]
    for i, text in enumerate(texts):
        print(f"--- sample {i + 1} (seed {seed + i})")
        print(text)
    if args.out:
        training.write_text_samples(Path(args.out), prompt, texts)
        print(f"Wrote {n} samples to {args.out}")
    return 0


def cmd_sample(args) -> int:
    from aigc_tf import registry, training, viz

    run_dir = Path(args.run_dir)
    cfg = training.load_run_config(run_dir)
    seed = cfg.seed if args.seed is None else args.seed
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed must be in [0, 2**31), got {seed}")
    if registry.is_text(cfg.model["name"]):
        return _sample_text(args, cfg, run_dir, seed)
    if args.prompt is not None or args.interpolate is not None:
        raise UserError(f"--prompt and --interpolate are for text runs; {run_dir} holds an image model")
    args.n = args.n or 64
    out = Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_n{args.n}.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out} must be a .png file path")
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file path ending in .png")
    model = training.load_model(training.final_model_path(run_dir))
    images = training.sample_images(model, args.n, seed)
    viz.save_grid(images, out)
    print(f"Wrote {args.n} samples (seed {seed}) to {out}")
    return 0


def cmd_export(args) -> int:
    from aigc_tf import export, training

    run_dir = Path(args.run_dir)
    training.load_run_config(run_dir)
    model = training.load_model(training.final_model_path(run_dir))
    name = args.name or run_dir.resolve().name
    path = export.export_model(model, args.out, name, args.version)
    print(f"Exported {run_dir} to {path} (signatures: {', '.join(export._endpoints(model))})")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from aigc_tf.evaluate import evaluate_run, format_table

    result = evaluate_run(args.run_dir, n_samples=args.n, iwae_k=args.iwae_k, seed=args.seed, verbose=2)
    print(format_table(result))
    out = Path(args.out) if args.out else Path(args.run_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"Wrote {out}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aigc-tf",
        description="Train, sample and export Keras 3 / TensorFlow generative models from YAML configs.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up log lines (also: AIGC_TF_VERBOSE=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a config into a run directory (resumes an interrupted run)")
    p.add_argument("config", help="YAML config, e.g. configs/dcgan_digits.yaml")
    p.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE",
                   help="override config keys, e.g. --set train.epochs=5 data.batch_size=32 (repeatable)")
    p.add_argument("--run-dir", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="train a finished run further (with a larger train.epochs)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="image runs: write a PNG grid; text runs: print generated texts")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("-n", type=_positive, help="number of samples (default: 64 images, 1 text)")
    p.add_argument("--seed", type=int, help="seed (default: the run's seed); same seed, same output; text sample i uses SEED+i")
    p.add_argument("--out", help="images: output PNG (default: RUN_DIR/samples/sample_seed<S>_n<N>.png); text: also write a .txt")
    p.add_argument("--prompt", help="text: the text to continue (text_vae: to encode and decode; empty: prior sample)")
    p.add_argument("--max-new-tokens", type=_positive,
                   help="text: tokens to generate (default 200, or what the model's context leaves after the prompt)")
    p.add_argument("--temperature", type=float, default=1.0, help="text: softmax temperature; 0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=0, help="text: sample among the K most likely tokens; 0 = off (default)")
    p.add_argument("--top-p", type=float, default=1.0, help="text: nucleus sampling mass in (0, 1]; 1 = off (default)")
    p.add_argument("--beam", type=_positive, metavar="WIDTH", help="text: beam search of this width instead of sampling")
    p.add_argument("--interpolate", metavar="TEXT_B", help="text_vae: decode points between --prompt and TEXT_B (-n steps)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="sample-quality metrics (FID, KID, precision/recall; ELBO/IWAE for VAEs)")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("-n", type=_positive, help="generated samples (default: half the reference set)")
    p.add_argument("--out", help="JSON output (default: RUN_DIR/metrics.json)")
    p.add_argument("--iwae-k", type=_positive, default=1000, help="importance samples for the VAE bound (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and the reference split (default 0)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="export a trained run as a TF Serving SavedModel")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("--out", required=True, help="export root; writes OUT/<name>/<version>/saved_model.pb")
    p.add_argument("--version", type=_positive, help="version number (default: next free); never overwritten")
    p.add_argument("--name", help="model name in the serving layout (default: the run directory's name)")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from aigc_tf.training import TrainingDiverged

    try:
        if args.func is not cmd_train:
            start_tensorflow(args.verbose)
        else:
            # Config validation imports the model classes (and so TensorFlow);
            # the devices are set up once the config is known.
            with _quiet_stderr(not _verbose(args.verbose)):
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _verbose(args.verbose) else "2")
                import tensorflow  # noqa: F401
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"aigc-tf: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except UserError as exc:
        print(f"aigc-tf: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("aigc-tf: interrupted; rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
