"""``aigc-tf evaluate``: sample-quality numbers for a trained run.

Reference images: the test split (tfds/npz/idx datasets), or all 1,797
images for ``digits`` (its 360-image hold-out is too small for 64-d feature
statistics). The reference is split in two halves R1, R2 with a fixed
permutation; a generator's N samples are compared with R1 and the
real-vs-real baseline is R2 vs R1, both at N = |R1|, so every ratio to the
baseline compares like with like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigc_tf.errors import UserError


def classifier_spec(cfg, epochs: int = 0):
    from aigc_tf.metrics.classifier import ClassifierSpec

    d = cfg.data
    return ClassifierSpec(
        dataset=d.name,
        path=d.path,
        image_size=d.image_size,
        channels=d.channels,
        max_examples=d.max_examples,
        data_dir=d.data_dir,
        epochs=epochs,
    )


def data_arrays(cfg, split: str):
    """``(images in [0, 1], labels)`` of a split of the run's dataset, as numpy."""
    from aigc_tf.data.images import load_image_arrays

    d = cfg.data
    return load_image_arrays(d.name, split=split, path=d.path, value_range="unit", image_size=d.image_size,
                             channels=d.channels, max_examples=d.max_examples, data_dir=d.data_dir,
                             download=d.download)


def binarised_test_set(cfg, limit: int | None = None, seed: int = 0):
    """The likelihood evaluation set: test images, statically binarised with ``seed``."""
    from aigc_tf.metrics.likelihood import binarize

    x, y = data_arrays(cfg, "test")
    return binarize(x[:limit], seed), y[:limit]


def reference_halves(cfg, seed: int = 0):
    """``(R1, R2, labels1, split name)``: two disjoint halves of the reference images in [0, 1]."""
    if cfg.data.name == "digits":
        x1, y1 = data_arrays(cfg, "train")
        x2, y2 = data_arrays(cfg, "test")
        images, labels, split = np.concatenate([x1, x2]), np.concatenate([y1, y2]), "train+test"
    else:
        images, labels = data_arrays(cfg, "test")
        split = "test"
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    a, b = order[:half], order[half : 2 * half]
    return images[a], images[b], labels[a], split


def generate_unit(model, n: int, seed: int, batch_size: int = 500) -> np.ndarray:
    """``n`` samples in [0, 1], drawn in batches from one seeded latent draw."""
    import tensorflow as tf

    from aigc_tf.viz import to_unit

    z = model.sample_latent(n, seed=seed)
    out = []
    for start in range(0, n, batch_size):
        zb = z[start : start + batch_size]
        labels = None
        if model.conditional:
            labels = tf.range(start, start + int(zb.shape[0]), dtype=tf.int32) % model.num_classes
        out.append(to_unit(model.generate(z=zb, labels=labels).numpy(), model.value_range))
    return np.concatenate(out)


def image_metrics(features_fake, probs_fake, features_real, features_real2, probs_real) -> dict:
    """FID, KID, classifier score and precision/recall, with the real-vs-real baseline."""
    from aigc_tf.metrics import distances as m

    fid = m.frechet_distance(features_fake, features_real)
    fid_rr = m.frechet_distance(features_real2, features_real)
    kid, kid_se = m.kernel_distance(features_fake, features_real)
    kid_rr, kid_rr_se = m.kernel_distance(features_real2, features_real)
    score, score_sd = m.classifier_score(probs_fake)
    score_real, _ = m.classifier_score(probs_real)
    precision, recall = m.precision_recall(features_real, features_fake)
    precision_rr, recall_rr = m.precision_recall(features_real, features_real2)
    return {
        "fid": fid,
        "fid_real_vs_real": fid_rr,
        "fid_ratio_to_real": fid / fid_rr if fid_rr > 0 else float("inf"),
        "kid": kid,
        "kid_stderr": kid_se,
        "kid_real_vs_real": kid_rr,
        "classifier_score": score,
        "classifier_score_std": score_sd,
        "classifier_score_real": score_real,
        "precision": precision,
        "recall": recall,
        "precision_real_vs_real": precision_rr,
        "recall_real_vs_real": recall_rr,
    }


def evaluate_run(run_dir, n_samples: int | None = None, iwae_k: int = 1000, seed: int = 0, verbose: int = 0) -> dict:
    """Every metric for the run's final model (see the module docstring)."""
    from aigc_tf import registry, training
    from aigc_tf.metrics.classifier import get_classifier

    run_dir = Path(run_dir)
    cfg = training.load_run_config(run_dir)
    model = training.load_model(training.final_model_path(run_dir))
    if registry.is_text(cfg.model["name"]):
        return evaluate_text_run(run_dir, cfg, model, n_samples, seed)
    clf = get_classifier(classifier_spec(cfg), verbose=verbose)
    r1, r2, y1, split = reference_halves(cfg, seed)
    n_real = len(r1)
    n = n_samples or n_real
    if n < 2:
        raise UserError(f"-n {n} is too small; FID needs at least 2 samples")
    f1, p1 = clf.features_and_probs(r1)
    f2, _ = clf.features_and_probs(r2)
    fake = generate_unit(model, n, seed)
    ff, pf = clf.features_and_probs(fake)
    result = {
        "run_dir": str(run_dir),
        "model": cfg.model["name"],
        "dataset": cfg.data.name,
        "reference_split": split,
        "num_samples": n,
        "num_real": n_real,
        "seed": seed,
        "classifier_accuracy": clf.accuracy,
        "classifier_test_split": "test" if cfg.data.name != "digits" else "digits hold-out (360)",
        "feature_dim": int(ff.shape[1]),
    }
    result.update(image_metrics(ff, pf, f1, f2, p1))
    # Context for the scale: uniform noise images at the same sample count.
    noise = np.random.default_rng(seed).random((n_real, *r1.shape[1:])).astype(np.float32)
    from aigc_tf.metrics.distances import frechet_distance

    result["fid_noise"] = frechet_distance(clf.features(noise), f1)
    if registry.family(cfg.model["name"]) == "vae":
        from aigc_tf.metrics.likelihood import evaluate_likelihood

        x, y = binarised_test_set(cfg, seed=seed)
        result["likelihood_split"] = "test"
        result.update(evaluate_likelihood(model, x, y if model.conditional else None, k=iwae_k, seed=seed))
    return result


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
    from aigc_tf.models.text_base import masked_token_loss

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


# Kneser-Ney order of the n-gram baseline, per tokenizer level.
BASELINE_ORDER = {"char": 5, "word": 3}


def continuation_perplexity(kn, pairs) -> float:
    """An n-gram model's perplexity of every seq2seq continuation given its
    prefix: the tokens (targets != 0) the seq2seq validation loss averages over."""
    total, count = 0.0, 0
    for inputs, targets in pairs:
        for prefix, cont in zip(inputs["prefix"].numpy(), targets.numpy(), strict=True):
            prefix, cont = prefix[prefix != 0], cont[cont != 0]
            ll, n = kn.log_likelihood(np.concatenate([prefix, cont]), start=len(prefix))
            total, count = total + ll, count + n
    return float(np.exp(-total / max(count, 1)))


def evaluate_text_run(run_dir: Path, cfg, model, n_samples: int | None = None, seed: int = 0) -> dict:
    """Validation perplexity (or ELBO), distinct-1/2 of samples and, for
    language models and seq2seq, the Kneser-Ney baseline on the same
    validation tokens."""
    from aigc_tf import registry, training
    from aigc_tf.metrics.text import active_units, distinct_n

    family = registry.family(cfg.model["name"])
    data = training.load_data(cfg, vocabulary=model.vocabulary)
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
    prompt = cfg.train.sample_prompt if family != "text_vae" else ""
    # Evaluation's own protocol (like its temperature of 1): the default length,
    # 200 tokens or what the context leaves after the prompt.
    max_new = model.new_token_budget(int(model.tokenize([prompt])[1].numpy()[0]))
    texts = training.sample_texts(model, prompt, n, max_new, 1.0, seed)
    result.update({"samples": n, "sample_prompt": prompt, "sample_temperature": 1.0, "sample_tokens": max_new})
    result["distinct_1"] = distinct_n(texts, 1)
    result["distinct_2"] = distinct_n(texts, 2)
    if family in ("lm", "seq2seq"):
        from aigc_tf.metrics.ngram import KneserNey

        order = BASELINE_ORDER[cfg.data.tokenizer]
        kn = KneserNey(order, model.vocab_size).fit(data.train_ids)
        result["ngram_order"] = order
        if family == "lm":
            ours = result["val_perplexity_sliding"] = lm_perplexity(model, data.test_ids, cfg.data.seq_len)
            result["ngram_val_perplexity"] = kn.perplexity(data.test_ids)
        else:
            # The same tokens the seq2seq loss scores: each continuation, given its prefix.
            ours = result["val_perplexity"]
            result["ngram_val_perplexity"] = continuation_perplexity(kn, data.test)
        result["beats_ngram"] = bool(ours < result["ngram_val_perplexity"])
    if family == "text_vae":
        result["val_elbo"] = -result["val_loss"]
        tokens = np.concatenate([x.numpy() for x, _ in data.test])[:2000]
        means, _ = model.encode(tokens)
        result["active_units"] = active_units(means.numpy())
        result["latent_dim"] = model.latent_dim
    result["example"] = texts[0]
    return result


def format_table(result: dict) -> str:
    rows = [(k, v) for k, v in result.items() if not isinstance(v, (dict, list))]
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
