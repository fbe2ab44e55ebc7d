"""A step under MirroredStrategy (2 logical CPUs) equals a step on one device."""

import json

import pytest

from tests.helpers import ROOT, mirrored_step_stats, run_python

NAMES = ["mlp_gan", "dcgan", "dcgan+ema", "cgan", "mlp_vae", "conv_vae", "cvae"]
# SGD compares every model's gradients; Adam adds the optimizer state on top of the same steps, so one model of
# each step (the GAN's two optimizers with labels, the moving average, the conditional VAE) covers its code paths.
ADAM_NAMES = ["cgan", "dcgan+ema", "cvae"]


@pytest.fixture(scope="module")
def image_steps():
    """``{optimizer: {model: stats}}``: both optimizers in one process (TensorFlow starts once)."""
    result = run_python(str(ROOT / "tests" / "scripts" / "mirrored_step.py"), "--float64", "sgd=" + ",".join(NAMES),
                        "adam=" + ",".join(ADAM_NAMES), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, tolerance",
    [
        # In float64, so the check is of the algorithm (losses divided by the
        # replica count, synchronised batch norm, per-replica noise), not of the
        # float32 rounding of this machine's kernels: one DCGAN step in float32
        # differed by 2.4e-5 (SGD) on an AVX2 machine and by 1.2e-7 on an earlier
        # one, while in float64 every model agrees to 2.2e-16 (SGD) and 2.4e-14
        # (the shipped Adam, whose lr * g / (|g| + eps) magnifies tiny differences).
        ("sgd", 1e-12),
        ("adam", 1e-11),
    ],
)
def test_mirrored_step_matches_single_device(image_steps, optimizer, tolerance):
    stats = image_steps[optimizer]
    assert sorted(stats) == sorted(NAMES if optimizer == "sgd" else ADAM_NAMES)
    for name in stats:
        s = stats[name]
        assert s["same_start"], name
        assert s["max_update"] > 1e-4, f"{name}: the step did not train ({s})"
        assert s["max_diff"] < tolerance, f"{name}: mirrored differs from single device ({s})"


@pytest.mark.slow
def test_mirrored_text_step_matches_single_device():
    """LSTM LM, GPT, seq2seq and text VAE, SGD, rows of very different lengths per replica.

    Observed max difference 3e-8. A loss divided by each replica's own token
    count would miss by the ratio of the replicas' token counts. The LSTM LM
    and the text VAE also clip the gradient norm (to 0.05, always active):
    clipping each replica's share, as an optimizer's own clipnorm does, would
    not match one device.
    """
    result = run_python(str(ROOT / "tests" / "scripts" / "mirrored_text_step.py"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(stats) == ["gpt", "lstm_lm", "seq2seq", "text_vae"]
    for name, s in stats.items():
        assert s["same_start"], name
        assert s["max_update"] > (1e-3 if s["clip_norm"] is None else 1e-4), f"{name}: the step did not train ({s})"
        assert s["max_diff"] < 1e-6, f"{name}: mirrored differs from single device ({s})"
        assert abs(s["loss_1"] - s["loss_2"]) < 1e-5 * abs(s["loss_1"]), f"{name}: logged loss differs ({s})"


@pytest.mark.slow
def test_mirrored_audio_step_matches_single_device():
    """WaveGAN, SpecGAN and both VAEs (the conditional paths; the MLP VAE) with SGD: equal to float32
    rounding (observed 7e-9 to 1.5e-5 on updates of up to 110: the likelihood's log-scale takes big SGD
    steps); with each model's own defaults (WGAN-GP, phase shuffle, Adam) a mirrored step trains and
    stays finite. ``+all``: the conditional GANs with the auxiliary classifier, the generator's average and
    the label modulation (``model.label_film``) on."""
    stats = mirrored_step_stats("mirrored_audio_step.py", ["cwavegan", "cspecgan", "cwavegan+all", "cspecgan+all",
                                                          "wave_vae", "cwave_vae"], 900)
    assert all("default_finite" in s for s in stats.values())
