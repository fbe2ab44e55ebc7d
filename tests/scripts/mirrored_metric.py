"""Streaming FrechetDistance updated under MirroredStrategy on 2 logical CPUs.

Prints JSON {"streamed": ..., "reference": ...}: the metric's result after
per-replica updates, and the numpy/scipy FID of the same features.
"""

import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from aigc_tf.metrics.distances import feature_moments, frechet_distance  # noqa: E402
from aigc_tf.metrics.streaming import FrechetDistance  # noqa: E402

rng = np.random.default_rng(0)
real = rng.normal(size=(500, 6))
fake = rng.normal(loc=0.3, scale=1.2, size=(400, 6)).astype(np.float32)
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
with strategy.scope():
    metric = FrechetDistance(*feature_moments(real))
dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(fake).batch(64))


@tf.function
def update(batch):
    strategy.run(metric.update_state, args=(batch,))


for batch in dataset:
    update(batch)
print(json.dumps({"streamed": float(metric.result()), "reference": frechet_distance(fake, real),
                  "replicas": strategy.num_replicas_in_sync}))
