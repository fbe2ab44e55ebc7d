"""aigc_tf: Keras 3 / TensorFlow reference implementations of generative models.

Importing the package is cheap (no TensorFlow); TensorFlow loads when a model,
dataset or training function is first used. After ``import aigc_tf``,
``keras.models.load_model("runs/x/model.keras")`` finds this package's model
classes (see :mod:`aigc_tf.keras_registration`); :func:`load_model` does the
same with the library's error messages and safe mode.
"""

from aigc_tf import keras_registration as _keras_registration

__version__ = "0.1.0"

_keras_registration.install()


def load_model(path):
    """Load a ``.keras`` file written by aigc_tf (safe mode; one clear error if it is bad)."""
    from aigc_tf.training import load_model as _load

    return _load(path)
