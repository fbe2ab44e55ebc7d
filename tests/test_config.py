"""Config loading, --set overrides and the errors users see."""

import pytest
import yaml

from aigc_tf.config import apply_overrides, from_dict, load_config, parse_override
from aigc_tf.errors import ConfigError
from tests.helpers import CONFIGS, TRAINING_CONFIGS


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    cfg = load_config(path)
    assert cfg.model["name"]
    assert cfg.train.epochs >= 1


def test_set_reaches_every_section():
    cfg = load_config(
        CONFIGS / "dcgan_digits.yaml",
        [
            "train.epochs=3",
            "train.strategy=mirrored",
            "data.name=mnist",
            "data.batch_size=32",
            "model.name=mlp_gan",
            "model.latent_dim=8",
            "seed=7",
            "train.learning_rate=1e-3",
        ],
    )
    assert cfg.train.epochs == 3 and cfg.train.strategy == "mirrored"
    assert cfg.data.name == "mnist" and cfg.data.batch_size == 32
    assert cfg.model["name"] == "mlp_gan" and cfg.model["latent_dim"] == 8
    assert cfg.seed == 7
    assert cfg.train.learning_rate == pytest.approx(1e-3)


def test_parse_override_uses_yaml_scalars():
    assert parse_override("a.b=5") == (["a", "b"], 5)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=hello") == (["a"], "hello")


def test_override_does_not_mutate_input():
    raw = {"train": {"epochs": 1}}
    apply_overrides(raw, ["train.epochs=9"])
    assert raw["train"]["epochs"] == 1


def test_int_widens_to_float_but_not_the_reverse():
    cfg = from_dict({"model": {"name": "dcgan"}, "train": {"learning_rate": 1}})
    assert isinstance(cfg.train.learning_rate, float)
    with pytest.raises(ConfigError, match="train.epochs must be an integer"):
        from_dict({"model": {"name": "dcgan"}, "train": {"epochs": 2.5}})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"model": {"name": "dcgan"}, "train": {"epoch": 3}}, r"unknown key 'train.epoch' .*did you mean 'epochs'"),
        ({"model": {"name": "dcgan"}, "trian": {}}, r"unknown top-level key 'trian'.*did you mean 'train'"),
        ({"model": {"name": "dcgan", "latnet_dim": 3}}, r"unknown key 'model.latnet_dim'.*latent_dim"),
        ({"model": {"name": "dcgam"}}, r"unknown model.name 'dcgam'.*did you mean 'dcgan'"),
        ({"model": {"name": "dcgan"}, "train": {"epochs": "ten"}}, r"train.epochs must be an integer, got 'ten'"),
        ({"model": {"name": "dcgan"}, "train": {"strategy": "tpu"}}, r"train.strategy must be one of default, mirrored"),
        ({"model": {"name": "dcgan"}, "data": {"batch_size": 0}}, r"data.batch_size must be at least 1"),
        ({"model": {"name": "dcgan", "loss": 3}}, r"model.loss must be a string"),
        ({"model": {"name": "dcgan"}, "data": {"download": "yes"}}, r"data.download must be true or false"),
        ({"model": "dcgan"}, r"'model' must be a mapping with a 'name'"),
        ({"model": {"name": "tvae"}, "data": {"point_mass": 1.5}}, r"x.yaml: data.point_mass must be in \[0, 1\)"),
        ({"model": {"name": "ctgan"}, "data": {"test_fraction": 1}}, r"data.test_fraction must be in \(0, 1\)"),
        ({"model": {"name": "tvae"}, "data": {"max_modes": 0}}, r"data.max_modes must be at least 1"),
        ([1, 2], r"must be a YAML mapping"),
    ],
)
def test_invalid_configs_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(raw, "x.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: dcgan\n train: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_config(bad)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_config(empty)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CONFIGS / "vae_digits.yaml", ["model.beta=0.5"])
    cfg.dump(tmp_path / "c.yaml")
    again = from_dict(yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again == cfg


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(CONFIGS / "dcgan_digits.yaml", ["train.epochs"])


def test_data_keys_are_checked_against_the_models_modality():
    from aigc_tf.config import from_dict
    from aigc_tf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown key 'data.seq_len' for image models.*valid keys are: batch_size, cache, channels"):
        from_dict({"model": {"name": "dcgan"}, "data": {"name": "digits", "seq_len": 64}}, "t")
    with pytest.raises(ConfigError, match=r"unknown key 'data.seq_lenn' for text models \(did you mean 'seq_len'"):
        from_dict({"model": {"name": "gpt"}, "data": {"name": "embedded", "seq_lenn": 32}}, "t")
    text = from_dict({"model": {"name": "gpt", "context_length": 128}, "data": {}}, "t")
    assert text.data.name == "embedded" and text.data.seq_len == 128 and not hasattr(text.data, "channels")


def test_release_0_1_0_flat_data_sections_still_load():
    """Old run directories record every key of the old flat section at its default."""
    from aigc_tf.config import LEGACY_DATA_DEFAULTS, from_dict
    from aigc_tf.errors import ConfigError

    flat = {"name": "digits", "batch_size": 16, **LEGACY_DATA_DEFAULTS}
    cfg = from_dict({"model": {"name": "dcgan"}, "data": flat}, "old")
    assert cfg.data.batch_size == 16 and not hasattr(cfg.data, "seq_len")
    text = from_dict({"model": {"name": "lstm_lm"}, "data": {**flat, "name": "embedded", "seq_len": 64}}, "old")
    assert text.data.seq_len == 64 and not hasattr(text.data, "cache")
    with pytest.raises(ConfigError, match="unknown key 'data.channels' for text models"):
        from_dict({"model": {"name": "lstm_lm"}, "data": {"name": "embedded", "channels": 3}}, "old")


def test_a_rule_schema_given_to_train_says_which_command_takes_it():
    with pytest.raises(ConfigError, match="users_rules.yaml is a rule schema .* aigc-tf generate .*users_rules.yaml"):
        load_config(CONFIGS / "users_rules.yaml")


@pytest.mark.parametrize("path", sorted((CONFIGS / "tune").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_search_config_is_valid_and_sets_real_keys(path):
    """Each search's base config validates, and every searched key is a value of that config (a point of
    the space applied with --set validates too)."""
    from aigc_tf import registry
    from aigc_tf.config import load_tune_config

    cfg, tune = load_tune_config(path)
    assert cfg.model["name"] and tune.max_trials >= 1 and tune.space
    raw = yaml.safe_load(path.read_text())
    for key, spec in tune.space.items():
        section, _, name = key.partition(".")
        known = registry.model_arguments(cfg.model["name"]) if section == "model" else raw[section]
        assert name in known, f"{path.name}: {key} is neither set in the base config nor a model argument"
        value = next(iter(spec.values()))
        first = value[0] if isinstance(value, list) else value
        load_config(path, [f"{key}={first}"])
