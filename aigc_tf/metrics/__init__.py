"""Sample-quality metrics.

Importing this package is cheap: :mod:`aigc_tf.metrics.distances` needs only
numpy and scipy, so the metrics work on features saved by any framework.
"""

from aigc_tf.metrics.distances import (
    __all__,  # noqa: E402  (one list of public names)
    classifier_score,
    feature_moments,
    frechet_distance,
    frechet_distance_from_moments,
    kernel_distance,
    nearest_distances,
    precision_recall,
)
