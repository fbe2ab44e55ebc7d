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
import tempfile
from pathlib import Path

from aigc_tf.errors import UserError
from aigc_tf.tasks.base import positive

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
# Also: aigc_tf.distribute.EXIT_WORKER_LOST (4) and EXIT_PREEMPTED (143).


def _verbose(flag: bool) -> bool:
    return flag or os.environ.get("AIGC_TF_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    """Keep what the process writes to file descriptor 2 inside the block off the terminal.

    TensorFlow's C++ start-up lines (absl's "before InitializeLog", CUDA stub
    and cuInit notices on a machine without a GPU, CPU features) are written
    straight to fd 2 during ``import tensorflow`` and the first device set-up,
    and ``TF_CPP_MIN_LOG_LEVEL`` does not hide all of them. They go to a
    temporary file, which is replayed if the block raises, so a real failure
    still shows. Without a usable fd 2 nothing is redirected.
    """
    if not quiet:
        yield
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    captured = tempfile.TemporaryFile()
    os.dup2(captured.fileno(), 2)
    try:
        yield
    except BaseException:
        os.dup2(saved, 2)
        captured.seek(0)
        os.write(2, captured.read())
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        captured.close()


def start_tensorflow(verbose: bool = False, cpu_devices: int = 1, multi_worker: bool = False) -> None:
    """Import TensorFlow and set up its devices (``cpu_devices`` logical CPUs for a
    mirrored run without a GPU; the cluster of ``TF_CONFIG`` for a multi-worker
    run), quietly unless ``verbose``."""
    quiet = not _verbose(verbose)
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_stderr(quiet):
        import tensorflow as tf

        from aigc_tf.training import configure_cpu_devices

        if multi_worker:
            from aigc_tf import distribute

            # Collectives are configured when the strategy is created, before any other op.
            distribute.multi_worker_strategy()
        # Logical CPU devices must exist before TensorFlow runs its first op.
        configure_cpu_devices(cpu_devices)
        tf.config.list_logical_devices()


def _default_run_dir(config_path: str) -> Path:
    return Path("runs") / Path(config_path).stem


def cmd_train(args) -> int:
    from aigc_tf.config import load_config

    overrides = [item for group in (args.set or []) for item in group]
    if args.workers is not None:
        overrides.append("train.strategy=multi_worker")
    cfg = load_config(args.config, overrides)
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(args.config)
    from aigc_tf.run_dir import is_chief, prepare_run_dir

    if is_chief():  # a worker of a cluster takes the chief's word about the run directory
        prepare_run_dir(run_dir, cfg, args.resume, write=False)  # refuse a bad run directory before TensorFlow starts
    if args.workers is not None:
        return _launch_workers(args, cfg, run_dir)
    multi = cfg.train.strategy == "multi_worker"
    if multi:
        from aigc_tf.distribute import cluster_from_env

        cluster_from_env()  # a missing or malformed TF_CONFIG answers now
    start_tensorflow(args.verbose, cfg.train.cpu_devices if cfg.train.strategy == "mirrored" else 1, multi_worker=multi)
    from aigc_tf.training import train

    train(cfg, run_dir, resume=args.resume)
    if is_chief():
        print(f"Finished: {run_dir} (model.keras, samples/, history.json)")
    return 0


def _launch_workers(args, cfg, run_dir: Path) -> int:
    """``aigc-tf train CONFIG --workers N``: this command, as N local workers of one cluster."""
    from aigc_tf import distribute

    if os.environ.get("TF_CONFIG"):
        raise UserError("--workers starts a local cluster, but TF_CONFIG is already set (this process is a worker of "
                        "one); drop --workers, or unset TF_CONFIG")
    argv = ["train", str(args.config), "--run-dir", str(run_dir)]
    argv += ["--set", *[item for group in (args.set or []) for item in group], "train.strategy=multi_worker"]
    if args.resume:
        argv.append("--resume")
    if _verbose(args.verbose):
        argv.append("--verbose")
    print(f"Training {run_dir} on {args.workers} local workers (train.strategy=multi_worker, global batch "
          f"data.batch_size={cfg.data.batch_size})", flush=True)
    code = distribute.launch(argv, args.workers, grace=args.grace)
    if code == 0:
        print(f"Finished: {run_dir} (model.keras, samples/, history.json)")
    elif code == distribute.EXIT_PREEMPTED:
        print(f"aigc-tf: the workers saved a checkpoint and stopped; rerun the same command to resume {run_dir}",
              file=sys.stderr)
    else:
        print(f"aigc-tf: the cluster stopped (status {code}); rerun the same command to resume {run_dir} from its "
              "last checkpoint", file=sys.stderr)
    return code


def cmd_sample(args) -> int:
    from aigc_tf import registry, training

    run_dir = Path(args.run_dir)
    cfg = training.load_run_config(run_dir)
    seed = cfg.seed if args.seed is None else args.seed
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed must be in [0, 2**31), got {seed}")
    task = registry.task_for(cfg.model["name"])
    task.refuse_foreign_sample_options(args, run_dir)
    task.check_sample_arguments(args, cfg, run_dir)
    start_tensorflow(args.verbose)
    model = training.load_model(training.final_model_path(run_dir))
    return task.sample(args, cfg, run_dir, model)


def cmd_export(args) -> int:
    from aigc_tf import export, training

    run_dir = Path(args.run_dir)
    training.load_run_config(run_dir)
    start_tensorflow(args.verbose)
    model = training.load_model(training.final_model_path(run_dir))
    name = args.name or run_dir.resolve().name
    path = export.export_model(model, args.out, name, args.version)
    print(f"Exported {run_dir} to {path} (signatures: {', '.join(export.endpoints(model))})")
    return 0


def cmd_tune(args) -> int:
    from aigc_tf.config import load_tune_config

    cfg, tune = load_tune_config(args.config, [item for group in (args.set or []) for item in group])
    search_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{Path(args.config).stem}_tune"
    from aigc_tf.tuning_dir import check_search_dir

    check_search_dir(search_dir, cfg, tune)  # before TensorFlow starts
    start_tensorflow(args.verbose, cfg.train.cpu_devices if cfg.train.strategy == "mirrored" else 1)
    from aigc_tf import tuning

    summary = tuning.search(cfg, tune, search_dir, verbose=1)
    if summary is None:
        print(f"Worker finished: its trials are in {search_dir / 'trials'}; the chief writes the summary")
        return 0
    print(tuning.format_trials(summary))
    if summary["best_trial"] is None:
        raise UserError(f"no trial of {search_dir} finished (see trials.json); fix the config and rerun")
    values = " ".join(f"{k}={v!r}" for k, v in summary["best_values"].items())
    print(f"Best trial {summary['best_trial']}: {tune.objective} {summary['best_score']:.5g} with {values}")
    print(f"Wrote {search_dir} (trials.json, trials.png, best/ run directory, best_config.yaml); "
          f"retrain with the full budget: aigc-tf train {search_dir / 'best_config.yaml'} "
          f"--run-dir {search_dir.parent / (search_dir.name + '_best')}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from aigc_tf.evaluate import evaluate_run, format_table, unfinished_warning
    from aigc_tf.run_dir import load_run_config

    load_run_config(args.run_dir)
    start_tensorflow(args.verbose)
    result = evaluate_run(args.run_dir, n_samples=args.n, iwae_k=args.iwae_k, seed=args.seed, verbose=2)
    print(format_table(result))
    warning = unfinished_warning(result)
    if warning:
        print(warning, file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.run_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"Wrote {out}")
    return 0


def _family_sample_arguments():
    """Each family's ``add_sample_arguments``, once per distinct function (subclasses share them)."""
    from aigc_tf import registry

    seen = []
    for family in registry.FAMILIES:
        add = registry.task_class(family).add_sample_arguments
        if add.__func__ not in [a.__func__ for a in seen]:
            seen.append(add)
    return seen


def _verbose_option(p: argparse.ArgumentParser) -> None:
    # Also after the command (`aigc-tf train cfg.yaml --verbose`); unset, the top-level value stands.
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show TensorFlow's start-up log lines (also: AIGC_TF_VERBOSE=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aigc-tf",
        description="Train, sample and export Keras 3 / TensorFlow generative models from YAML configs.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up log lines (also: AIGC_TF_VERBOSE=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a config into a run directory (resumes an interrupted run)")
    p.add_argument("config", nargs="?", help="YAML config, e.g. configs/dcgan_digits.yaml")
    p.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE",
                   help="override config keys, e.g. --set train.epochs=5 data.batch_size=32 (repeatable)")
    p.add_argument("--run-dir", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="train a finished run further (with a larger train.epochs)")
    p.add_argument("--workers", type=positive, metavar="N",
                   help="train on N local worker processes (train.strategy=multi_worker, TF_CONFIG on 127.0.0.1)")
    p.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                   help="with --workers: how long the others may take to stop after one fails, or to save after "
                        "SIGTERM, before they are killed (default 60)")
    _verbose_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="image runs: write a PNG grid; text runs: print generated texts")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("-n", type=positive, help="number of samples (default: 64 images, 1 text)")
    p.add_argument("--seed", type=int, help="seed (default: the run's seed); same seed, same output; text sample i uses SEED+i")
    p.add_argument("--out", help="output file (images: a PNG, default RUN_DIR/samples/sample_seed<S>_n<N>.png; text: also write a .txt)")
    for add in _family_sample_arguments():
        add(p)
    _verbose_option(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="sample-quality metrics (FID, KID, precision/recall; ELBO/IWAE for VAEs)")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("-n", type=positive, help="generated samples (default: half the reference set)")
    p.add_argument("--out", help="JSON output (default: RUN_DIR/metrics.json)")
    p.add_argument("--iwae-k", type=positive, default=1000, help="importance samples for the VAE bound (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and the reference split (default 0)")
    _verbose_option(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tune", help="search a config's tune: space with keras-tuner (each trial a run directory)")
    p.add_argument("config", help="YAML config with a tune: section, e.g. configs/tune/dcgan_digits.yaml")
    p.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE",
                   help="override config keys, e.g. --set tune.max_trials=4 train.epochs=2 (repeatable)")
    p.add_argument("--run-dir", help="search directory (default: runs/<config name>_tune); rerun to resume")
    _verbose_option(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("export", help="export a trained run as a TF Serving SavedModel")
    p.add_argument("run_dir", help="run directory written by `aigc-tf train`")
    p.add_argument("--out", required=True, help="export root; writes OUT/<name>/<version>/saved_model.pb")
    p.add_argument("--version", type=positive, help="version number (default: next free); never overwritten")
    p.add_argument("--name", help="model name in the serving layout (default: the run directory's name)")
    _verbose_option(p)
    p.set_defaults(func=cmd_export)
    from aigc_tf import registry

    for family in registry.FAMILIES:  # commands of a family's own (none yet)
        registry.task_class(family).add_commands(sub)
    for target in registry.COMMANDS.values():  # commands of no family (rule-based records)
        registry.resolve(target)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.config is None:
        # `--set A=1 B=2 CONFIG`: the items after --set ran on into the config path.
        paths = [item for group in (args.set or []) for item in group if "=" not in item]
        if len(paths) != 1:
            parser.error(f"train needs one CONFIG file (items after --set are KEY=VALUE); got {paths or 'none'}")
        args.config = paths[0]
        args.set = [[item for item in group if item != paths[0]] for group in args.set]
    from aigc_tf.distribute import EXIT_PREEMPTED, EXIT_WORKER_LOST, Preempted, WorkerLost
    from aigc_tf.training import TrainingDiverged

    try:
        # Each command validates what it was given (config, run directory) before
        # TensorFlow starts, so a user error answers at once.
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"aigc-tf: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except Preempted as exc:
        print(f"aigc-tf: {exc}", file=sys.stderr)
        return EXIT_PREEMPTED
    except WorkerLost as exc:
        print(f"aigc-tf: {exc}", file=sys.stderr)
        return EXIT_WORKER_LOST
    except UserError as exc:
        print(f"aigc-tf: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("aigc-tf: interrupted; rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130


def run() -> None:
    """The ``aigc-tf`` command: :func:`main`, then exit with its status.

    After a lost peer or a preemption the process leaves at once (``os._exit``,
    output flushed): TensorFlow's teardown of a multi-worker context can wait on
    a task that has already gone (its coordination service's shutdown), which
    held a survivor for over 30 s after it had reported the loss, and can hold a
    preempted chief that saved after the other workers had left. Everything the
    run keeps (checkpoints, history) was written before; nothing else is pending.
    """
    code = main()
    from aigc_tf.distribute import EXIT_PREEMPTED, EXIT_WORKER_LOST

    if code in (EXIT_WORKER_LOST, EXIT_PREEMPTED):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
