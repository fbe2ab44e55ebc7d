"""aigc_tf: Keras 3 / TensorFlow reference implementations of generative models.

Importing the package is cheap; TensorFlow loads when a model, dataset or
training function is first used (``from aigc_tf.models.gan import GAN``).
"""

__version__ = "0.1.0"
