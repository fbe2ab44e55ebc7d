"""Model families behind the family seam: one task per family (see :mod:`aigc_tf.tasks.base`)."""

from __future__ import annotations


def task_for_model(model):
    """The task of a model instance's family (found from its class, or a base class, in the registry)."""
    from aigc_tf import registry

    families = {spec.cls: spec.family for spec in registry.MODELS.values()}
    for cls in type(model).__mro__:
        family = families.get(f"{cls.__module__}:{cls.__name__}")
        if family is not None:
            return registry.task_class(family)()
    raise TypeError(f"{type(model).__name__} is not a model of a registered family (aigc_tf.registry.MODELS)")
