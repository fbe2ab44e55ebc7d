"""Where a conditional audio GAN's class accuracy is lost: the judge on real clips, on real clips through
the model's own representation, on generated clips, and the discriminator's class head on generated clips.

    python benchmarks/audio_gan_diagnostics.py runs/cspecgan_spoken_digits [-n 400] [--out FILE.json]

The judge is the project's log-mel classifier (the one ``aigc-tf evaluate`` uses). Rows:

* real: the first ``n`` test clips (held-out voices), as they are;
* representation round trip (SpecGAN only): the same clips turned into the model's normalised
  spectrogram (clipped at 3 sd) and back to audio with its Griffin-Lim, the ceiling of the
  representation and the inversion;
* generated: ``n`` samples asked for classes ``i % K`` from one seeded draw, as ``evaluate`` makes them;
* discriminator head (models trained with ``model.aux_weight > 0``): the auxiliary classifier on the
  same generated samples.

Prints the table and the generated clips' confusion matrix (rows: asked, columns: classified).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import aigc_tf  # noqa: F401  (before TensorFlow: sets TF_ENABLE_ONEDNN_OPTS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("-n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the table as JSON")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from aigc_tf.audio.data import load_clips
    from aigc_tf.audio.quality import get_audio_classifier
    from aigc_tf.audio.task import generate_clips
    from aigc_tf.run_dir import final_model_path, load_run_config
    from aigc_tf.training import load_model

    run = Path(args.run_dir)
    cfg = load_run_config(run)
    model = load_model(final_model_path(run))
    clf = get_audio_classifier(cfg.data, verbose=0)
    clips, _, _ = load_clips(cfg.data, "test")
    real, real_labels = clips.audio[: args.n], np.asarray(clips.labels[: args.n])

    def judge(audio, labels):
        return float(np.mean(clf.features_and_probs(audio)[1].argmax(axis=1) == labels))

    rows = {"real test clips": judge(real, real_labels)}
    if hasattr(model, "spectrogram_to_audio"):
        spec = model._prepare_real(tf.constant(real))
        back = np.concatenate([model.spectrogram_to_audio(spec[i : i + 200]).numpy() for i in range(0, len(real), 200)])
        rows["real, through the representation and Griffin-Lim"] = judge(back, real_labels)
    fake, asked = generate_clips(model, args.n, args.seed)
    predicted = clf.features_and_probs(fake)[1].argmax(axis=1)
    rows["generated"] = float(np.mean(predicted == asked))
    if getattr(model, "aux_weight", 0):
        spec = model._prepare_real(tf.constant(fake))
        _, class_logits = model.discriminator([spec, tf.constant(asked)])
        rows["discriminator head on generated"] = float(np.mean(np.argmax(class_logits, axis=1) == asked))

    width = max(map(len, rows))
    print(f"{'clips':<{width}}  class accuracy")
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:.4f}")
    k = model.num_classes
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (asked, predicted), 1)
    print("generated, rows asked, columns classified:")
    print(confusion)
    if args.out:
        Path(args.out).write_text(json.dumps({"run_dir": str(run), "n": args.n, "seed": args.seed,
                                              "class_accuracy": rows, "confusion": confusion.tolist()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
