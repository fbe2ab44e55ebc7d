"""Make ``keras.models.load_model`` find this package's classes after a plain ``import aigc_tf``.

Keras finds a custom class in a ``.keras`` file by its registered name
(``"aigc_tf>GAN"``) in its table of registered objects, and for safety never
imports a non-Keras module named in the file. Our classes enter that table
when their modules are imported, which pulls in TensorFlow; ``import aigc_tf``
must stay cheap. So ``import aigc_tf`` puts a small stand-in for each
registered name into Keras' table as soon as Keras' registration module
exists (now, or through an import hook when Keras is imported later). A
stand-in imports the real module on first use and hands over to the real
class, whose own registration then replaces the stand-in.

``REGISTERED`` must list every object the package registers; a test imports
every module and compares.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

# Keras registered name -> "module:attribute".
REGISTERED = {
    "aigc_tf>GAN": "aigc_tf.models.gan:GAN",
    "aigc_tf>VAE": "aigc_tf.models.vae:VAE",
    "aigc_tf>GPT": "aigc_tf.models.gpt:GPT",
    "aigc_tf>GPT2": "aigc_tf.models.gpt2:GPT2",
    "aigc_tf>LSTMLanguageModel": "aigc_tf.models.lstm_lm:LSTMLanguageModel",
    "aigc_tf>Seq2Seq": "aigc_tf.models.seq2seq:Seq2Seq",
    "aigc_tf>TextVAE": "aigc_tf.models.text_vae:TextVAE",
    "aigc_tf>TVAE": "aigc_tf.tabular.models:TVAE",
    "aigc_tf>CTGAN": "aigc_tf.tabular.models:CTGAN",
    "aigc_tf>WaveGAN": "aigc_tf.audio.models:WaveGAN",
    "aigc_tf>SpecGAN": "aigc_tf.audio.models:SpecGAN",
    "aigc_tf>WaveVAE": "aigc_tf.audio.models:WaveVAE",
    "aigc_tf>PhaseShuffle": "aigc_tf.audio.networks:PhaseShuffle",
    "aigc_tf>LabelFiLM": "aigc_tf.audio.networks:LabelFiLM",
    "aigc_tf>ChoraleNADE": "aigc_tf.music.chorale_nade:ChoraleNADE",
    "aigc_tf>MusicTransformer": "aigc_tf.music.music_transformer:MusicTransformer",
    "aigc_tf>MelodyLSTM": "aigc_tf.music.melody_lstm:MelodyLSTM",
    "aigc_tf>NoteLSTM": "aigc_tf.music.note_lstm:NoteLSTM",
    "aigc_tf>MuseGAN": "aigc_tf.music.musegan:MuseGAN",
    "aigc_tf>RelativeCausalSelfAttention": "aigc_tf.music.relative_attention:RelativeCausalSelfAttention",
    "aigc_tf>RelativeTransformerBlock": "aigc_tf.music.relative_attention:RelativeTransformerBlock",
    "aigc_tf>Perplexity": "aigc_tf.models.sequence_base:Perplexity",
    "aigc_tf>CausalSelfAttention": "aigc_tf.layers.transformer:CausalSelfAttention",
    "aigc_tf>TransformerBlock": "aigc_tf.layers.transformer:TransformerBlock",
    "aigc_tf>word_standardize": "aigc_tf.data.text:word_standardize",
}
FUNCTIONS = {"aigc_tf>word_standardize"}
_TARGET = "keras.src.saving.object_registration"


def resolve(registered_name: str):
    """The real object behind ``registered_name`` (imports its module)."""
    module, attr = REGISTERED[registered_name].split(":")
    return getattr(importlib.import_module(module), attr)


class _LazyClass:
    """Stands in for a registered class until Keras deserialises one."""

    def __init__(self, registered_name: str):
        self.registered_name = registered_name

    def get_config(self):  # Keras' registry expects classes to have one
        raise TypeError(f"{self.registered_name} is a stand-in; use the real class")

    def from_config(self, config, *args, **kwargs):
        return resolve(self.registered_name).from_config(config, *args, **kwargs)

    def __repr__(self):
        return f"<lazy {self.registered_name}>"


def _lazy_function(registered_name: str):
    def call(*args, **kwargs):
        return resolve(registered_name)(*args, **kwargs)

    call.__name__ = registered_name.split(">")[1]
    return call


def _add_stand_ins(registry_module) -> None:
    table = registry_module.GLOBAL_CUSTOM_OBJECTS
    for name in REGISTERED:
        if name not in table:  # never shadow a class that is already registered
            table[name] = _lazy_function(name) if name in FUNCTIONS else _LazyClass(name)


class _Finder(importlib.abc.MetaPathFinder):
    """Adds the stand-ins right after Keras executes its registration module."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            _add_stand_ins(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Idempotent; called by ``import aigc_tf``."""
    if _TARGET in sys.modules:
        _add_stand_ins(sys.modules[_TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
