"""Tabular data: rule-based records from a YAML schema (:mod:`aigc_tf.tabular.rules`)."""
