"""``aigc-tf evaluate``: quality numbers for a trained run, computed by its family's task.

Images (:mod:`aigc_tf.tasks.image`): FID, KID, classifier score and
precision/recall against a real-vs-real baseline, plus ELBO/IWAE for VAEs.
Text (:mod:`aigc_tf.tasks.text`): validation perplexity against two
Kneser-Ney baselines (one discount, and modified with a tuned order), distinct-n,
and the text VAE's ELBO.
"""

from __future__ import annotations

from pathlib import Path

from aigc_tf.run_dir import FINAL_MODEL, final_model_path, load_run_config


def evaluate_run(run_dir, n_samples: int | None = None, iwae_k: int = 1000, seed: int = 0, verbose: int = 0) -> dict:
    """Every metric of the run's family for the run's final model."""
    from aigc_tf import registry
    from aigc_tf.training import load_model

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    path = final_model_path(run_dir)
    model = load_model(path)
    task = registry.task_for(cfg.model["name"])
    result = task.evaluate(run_dir, cfg, model, n_samples, seed, iwae_k=iwae_k, verbose=verbose)
    # Which file was scored: the last checkpoint when the run has not finished (or is still training).
    result["scored_model"] = path.relative_to(run_dir).as_posix()
    return result


def unfinished_warning(result: dict) -> str | None:
    """A line for ``aigc-tf evaluate`` when it scored a checkpoint rather than the finished model."""
    if result.get("scored_model", FINAL_MODEL) == FINAL_MODEL:
        return None
    return (f"note: the run has no {FINAL_MODEL} (unfinished, or still training), so these numbers are its last "
            f"checkpoint's ({result['scored_model']}); evaluate again when `aigc-tf train` has finished")


def format_table(result: dict) -> str:
    rows = [(k, v) for k, v in result.items() if not isinstance(v, (dict, list))]
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
