"""``import aigc_tf`` is enough for ``keras.models.load_model`` (fresh processes)."""

import pytest

from tests.helpers import run_python, tiny_config


@pytest.fixture(scope="module")
def saved_gan(tmp_path_factory):
    from aigc_tf import training

    run = tmp_path_factory.mktemp("reg") / "run"
    training.train(tiny_config("dcgan"), run)
    return run / "model.keras"


@pytest.mark.parametrize("order", ["import aigc_tf, keras", "import keras, aigc_tf"])
def test_keras_load_model_after_import_aigc_tf(saved_gan, order):
    result = run_python(
        f"import sys; {order}\n"
        "assert 'aigc_tf.models.gan' not in sys.modules\n"
        f"m = keras.models.load_model({str(saved_gan)!r})\n"
        "print(type(m).__module__, type(m).__name__, tuple(m.generate(2, seed=0).shape))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[0] == "aigc_tf.models.gan GAN (2, 28, 28, 1)"


def test_import_aigc_tf_stays_cheap():
    result = run_python("import sys, aigc_tf; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_aigc_tf_load_model(saved_gan, tmp_path):
    import aigc_tf
    from aigc_tf.errors import RunDirError

    assert type(aigc_tf.load_model(saved_gan)).__name__ == "GAN"
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RunDirError, match="could not be loaded"):
        aigc_tf.load_model(bad)


def test_the_stand_in_table_lists_every_registered_object():
    """REGISTERED must name exactly what the package registers with Keras."""
    import importlib
    import pkgutil

    from keras.src.saving import object_registration

    import aigc_tf
    from aigc_tf import keras_registration

    for info in pkgutil.walk_packages(aigc_tf.__path__, "aigc_tf."):
        importlib.import_module(info.name)
    registered = {
        name for name, obj in object_registration.GLOBAL_CUSTOM_OBJECTS.items()
        if name.startswith("aigc_tf>") and not isinstance(obj, keras_registration._LazyClass)
        and getattr(obj, "__module__", "") != keras_registration.__name__
    }
    assert registered == set(keras_registration.REGISTERED)
    for name in keras_registration.REGISTERED:
        assert keras_registration.resolve(name) is object_registration.GLOBAL_CUSTOM_OBJECTS[name]
