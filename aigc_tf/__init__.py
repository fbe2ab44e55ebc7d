"""aigc_tf: Keras 3 / TensorFlow reference implementations of generative models.

Importing the package is cheap (no TensorFlow); TensorFlow loads when a model,
dataset or training function is first used. After ``import aigc_tf``,
``keras.models.load_model("runs/x/model.keras")`` finds this package's model
classes (see :mod:`aigc_tf.keras_registration`); :func:`load_model` does the
same with the library's error messages and safe mode.
"""

import os as _os

from aigc_tf import keras_registration as _keras_registration

__version__ = "0.1.0"

# TensorFlow's oneDNN CPU kernels, on unless the user chose: the `tensorflow`
# wheel enables them only on CPUs with AVX-512/AMX, where the `tensorflow-cpu`
# wheel of release 0.1.0 always did. Without them, a conv step's result depends
# on the per-replica batch size (one DCGAN step on 1 vs 2 replicas differed by
# 6e-5 instead of 1.2e-7). Read when TensorFlow is imported, so it applies when
# aigc_tf is imported first (the CLI, the notebooks, the tests).
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_keras_registration.install()


def load_model(path):
    """Load a ``.keras`` file written by aigc_tf (safe mode; one clear error if it is bad)."""
    from aigc_tf.training import load_model as _load

    return _load(path)
