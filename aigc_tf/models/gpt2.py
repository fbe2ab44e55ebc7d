"""GPT-2 from KerasHub (``GPT2Backbone`` + its byte-level BPE ``GPT2Tokenizer``) as one of our
text models: ``model.fit`` with our train step, our samplers and key/value cache, our
string-in/string-out signature, LoRA for fine-tuning on a CPU."""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf
from keras import ops

from aigc_tf.errors import UserError
from aigc_tf.models import gpt2_presets
from aigc_tf.models.sequence_base import SequenceModel

# Our ids are GPT-2's + 2, so that 0 (padding) and 1 (unknown) mean what they mean in every
# text model here (masked loss, banned ids, 0-padded prompts and outputs); GPT-2 itself has
# no padding or unknown token ("!" is its id 0).
OFFSET = 2
# The logits of ids 0 and 1: never predicted, never sampled (finite, so no inf - inf in a softmax).
_RESERVED_LOGIT = -1e9
# Sizes of a randomly initialised GPT-2 (preset: null), as GPT-2 small.
SMALL = {"num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072, "context_length": 1024}
# Eager calls of a KerasHub tokenizer run Hugging Face `tokenizers` with another pre-split regex
# than its TensorFlow path; ours always run the TensorFlow path (the one the export serves).
_GRAPH_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@keras.saving.register_keras_serializable(package="aigc_tf")
class GPT2(SequenceModel):
    """GPT-2 (Radford et al. 2019) from KerasHub, trained and decoded like our GPT.

    The network is ``keras_hub.models.GPT2Backbone`` (weights from a preset, or
    random), the tokenizer its byte-level BPE ``GPT2Tokenizer``. Decoding uses
    our samplers with the backbone's key/value cache: the prompts' common
    length is read in one batched call (:meth:`prefill`), then one token per
    step; a row stops at ``<|endoftext|>``. Token ids are GPT-2's plus 2 (0 is
    padding, 1 unknown, as in every text model here).

    LoRA (``lora_rank > 0``): KerasHub's ``enable_lora`` adds rank-``r``
    adapters to the query and value projections of every block: their kernel
    ``W`` is ``(E, H, D)`` and becomes ``W + A @ B`` with ``A (E, H, r)`` and
    ``B (r, D)`` (Keras factors the last axis), B starting at zero; only the adapters train
    (the projections' biases are frozen too). A ``.keras`` file keeps the
    frozen kernels and the adapters apart, so a resumed run trains on.

    Args:
        preset: KerasHub preset name, ``kaggle://``/``hf://`` handle, or local
            folder (a KerasHub preset or a Hugging Face GPT-2 checkpoint);
            null: a randomly initialised GPT-2 of the sizes below.
        lora_rank: LoRA adapters of this rank on the attention's query and
            value projections (0: fine-tune every weight).
        dropout: dropout in training (null: the preset's, 0.1).
        num_layers: blocks of a random GPT-2 (null: 12; must be null with a preset).
        num_heads: attention heads of a random GPT-2 (null: 12).
        hidden_dim: channels of a random GPT-2 (null: 768).
        intermediate_dim: MLP width of a random GPT-2 (null: 3072).
        context_length: positions of a random GPT-2 (null: 1024).
        backbone: the backbone's serialized config (``get_config``; set when
            a saved model is loaded, never in a config file).
        tokenizer: a ``GPT2Tokenizer`` or its serialized config (from the
            data: the preset's, or one trained on the text for preset null).
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> gpt2 = GPT2(preset="path/to/gpt2_base_en", lora_rank=4)
        >>> gpt2.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> gpt2.fit(windows, epochs=1)       # (inputs, targets): GPT-2 ids + 2
        >>> text_base.text_generation_function(gpt2)[0](["The"], [50], [0.8], [0], [1.0], [0])
    """

    family = "gpt2"
    supports_prefill = True

    def __init__(
        self,
        preset: str | None = None,
        lora_rank: int = 0,
        dropout: float | None = None,
        num_layers: int | None = None,
        num_heads: int | None = None,
        hidden_dim: int | None = None,
        intermediate_dim: int | None = None,
        context_length: int | None = None,
        backbone: dict | None = None,
        tokenizer: dict | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        keras_hub = gpt2_presets.require_keras_hub()
        sizes = {"num_layers": num_layers, "num_heads": num_heads, "hidden_dim": hidden_dim,
                 "intermediate_dim": intermediate_dim, "context_length": context_length}
        if preset is not None and backbone is None:
            given = [k for k, v in sizes.items() if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)} come from the preset {preset!r}; remove them")
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be 0 (off) or positive, got {lora_rank}")
        if tokenizer is None:
            if preset is None:
                raise ValueError("a GPT-2 without a preset needs a tokenizer (gpt2_presets.train_tokenizer)")
            tokenizer = gpt2_presets.load_tokenizer(preset)
        elif isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)  # vocabulary: from the file's assets
        if backbone is not None:
            backbone = keras.saving.deserialize_keras_object(backbone)  # weights: from the file
        elif preset is not None:
            backbone = gpt2_presets.load_backbone(preset, **({} if dropout is None else {"dropout": dropout}))
        else:
            size = {k: SMALL[k] if v is None else v for k, v in sizes.items()}
            backbone = keras_hub.models.GPT2Backbone(
                vocabulary_size=tokenizer.vocabulary_size(), num_layers=size["num_layers"],
                num_heads=size["num_heads"], hidden_dim=size["hidden_dim"],
                intermediate_dim=size["intermediate_dim"], dropout=0.1 if dropout is None else dropout,
                max_sequence_length=size["context_length"],
            )
        super().__init__(vocab_size=backbone.vocabulary_size + OFFSET, seed=seed, **kwargs)
        self.preset = preset
        self.lora_rank = lora_rank
        self.dropout = dropout
        self._sizes = sizes
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.context_length = int(backbone.max_sequence_length)
        self.lora_state = None
        if lora_rank:
            self.backbone.enable_lora(lora_rank)
            layers = _lora_layers(self.backbone)
            for layer in layers:
                if layer.bias is not None:
                    layer.bias.trainable = False  # adapters only
            self.lora_state = LoRAState(_LayerList(layers), name="lora_state")
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "preset": self.preset,
            "lora_rank": self.lora_rank,
            "dropout": self.dropout,
            **self._sizes,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
        }

    @property
    def end_token_id(self) -> int:
        """``<|endoftext|>`` in our ids."""
        return int(self.tokenizer.end_token_id) + OFFSET

    # ------------------------------------------------------------ network
    def _hub_ids(self, tokens):
        # Our ids -> GPT-2's; padding reads as <|endoftext|> (it only ever follows the real tokens).
        tokens = ops.cast(tokens, "int32")
        return ops.where(tokens >= OFFSET, tokens - OFFSET, self.end_token_id - OFFSET)

    def _our_logits(self, logits):
        # (..., V_gpt2) -> (..., V_gpt2 + 2): ids 0 and 1 in front, never predicted.
        logits = ops.cast(logits, "float32")
        reserved = ops.full((*ops.shape(logits)[:-1], OFFSET), _RESERVED_LOGIT, dtype="float32")
        return ops.concatenate([reserved, logits], axis=-1)

    def call(self, tokens, training=False):
        hub = self._hub_ids(tokens)
        hidden = self.backbone({"token_ids": hub, "padding_mask": ops.ones_like(hub)}, training=training)
        return self._our_logits(self.backbone.token_embedding(hidden, reverse=True))  # (B, T, V)

    def _cached_forward(self, tokens, caches, index):
        """Our ids (B, S) at positions ``index .. index + S - 1`` -> ``(logits (B, S, V), caches)``;
        ``caches``: one ``(B, 2, W, H, D)`` key/value tensor per block (as KerasHub's
        ``GPT2CausalLM.call_with_cache``, without stacking the blocks' caches every step)."""
        b = self.backbone
        x = b.token_embedding(self._hub_ids(tokens))
        x = b.embeddings_add((x, b.position_embedding(x, start_index=index)))
        new = []
        for layer, cache in zip(b.transformer_layers, caches, strict=True):
            x, cache = layer(x, self_attention_cache=cache, self_attention_cache_update_index=index)
            new.append(cache)
        logits = b.token_embedding(b.layer_norm(x), reverse=True)
        return self._our_logits(logits), tuple(new)

    # ------------------------------------------------------------ decoding
    def context_room(self, prompt_tokens):
        return self.context_length - prompt_tokens

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        fits = tf.debugging.assert_less_equal(
            lengths + max_new_tokens, self.context_length,
            message=f"prompt tokens + max_new_tokens exceed the context of {self.context_length} tokens",
        )
        nonempty = tf.debugging.assert_positive(lengths, message="empty prompt: a language model needs a prompt token")
        with tf.control_dependencies([fits, nonempty]):
            ids = tf.identity(ids)
        if not use_cache:
            step, state = self.uncached_decoder(self, ids, max_new_tokens)
            return step, state, ids, lengths
        b = self.backbone
        # Room for the padded prompts and the longest request, not the whole context.
        width = tf.shape(ids)[1] + tf.reduce_max(max_new_tokens)
        shape = tf.stack([tf.shape(ids)[0], 2, width, b.num_heads, b.hidden_dim // b.num_heads])
        caches = tuple(tf.zeros(shape, self.compute_dtype) for _ in range(b.num_layers))

        def step(tokens, state):
            caches, t = state
            logits, caches = self._cached_forward(tokens[:, None], caches, t)
            return logits[:, 0], (caches, t + 1)

        return step, (caches, tf.constant(0)), ids, lengths

    def prefill(self, state, tokens):
        # All S prompt positions through every block at once (causal), caches written in place.
        caches, t = state
        _, caches = self._cached_forward(tokens, caches, t)
        return caches, t + tf.shape(tokens)[1]

    # ------------------------------------------------------------ strings
    def tokenize(self, texts):
        """Strings (B,) -> ``(ids int32 (B, P) right-padded with 0, lengths (B,))``: GPT-2's BPE ids + 2."""
        ids = bpe_ids(self.tokenizer, texts)
        # One trailing pad column, so a batch of empty prompts is (B, 1), never (B, 0).
        ids = tf.pad(ids, [[0, 0], [0, 1]])
        return ids, tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=-1)

    def detokenize(self, ids):
        """Ids (B, N) -> strings (B,); padding is dropped. (Bytes of a character cut by the
        end of generation are not valid UTF-8: decode with ``errors="replace"``.)"""
        ids = tf.cast(ids, tf.int32)
        hub = tf.ragged.boolean_mask(ids - OFFSET, ids >= OFFSET)
        return _on_graph_path(self.tokenizer, "detokenize", self.tokenizer.detokenize, hub,
                              tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=hub.row_splits.dtype))

    def join(self, prompt: str, continuation: str) -> str:
        """Prompt and generated text as one string (BPE tokens carry their own spaces)."""
        return prompt + continuation

    def stop_ids(self, stop: str):
        raise UserError("a GPT-2 run stops at <|endoftext|> by itself; a stop string is for the char and word "
                        "models (GPT-2's BPE spells one string with different tokens in different contexts)")

    def generate_text(self, prompts, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True,
                      stop_ids=None):
        """Strings in, ``{"texts", "token_ids"}`` out, as :meth:`TextModel.generate_text`; a row ends at
        ``<|endoftext|>`` (not part of the text; its ``token_ids`` are 0 from there)."""
        ids, lengths = self.tokenize(prompts)
        max_new_tokens = self.new_token_budget_graph(lengths, max_new_tokens)
        out = self.generate_ids(ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache)
        return {"texts": self.detokenize(out), "token_ids": out}


def _on_graph_path(tokenizer, name, fn, arg, spec):
    """``fn(arg)`` on the tokenizer's TensorFlow path, even when called eagerly (traced once
    per tokenizer for ``spec``: tracing KerasHub's BPE takes seconds)."""
    if not tf.executing_eagerly():
        return fn(arg)
    fns = _GRAPH_FNS.setdefault(tokenizer, {})
    if name not in fns:
        fns[name] = tf.function(fn, input_signature=[spec], autograph=False)
    return fns[name](arg)


def bpe_ids(tokenizer, texts):
    """Strings (B,) -> our ids (GPT-2's + 2), int32 (B, P) right-padded with 0, through a
    ``GPT2Tokenizer``'s TensorFlow path (in-graph or eagerly)."""
    texts = tf.convert_to_tensor(texts, tf.string)
    if texts.shape.rank == 0:
        texts = texts[None]
    ids = _on_graph_path(tokenizer, "tokenize", tokenizer, texts, tf.TensorSpec([None], tf.string))
    ids = tf.cast(ids, tf.int32) + OFFSET
    return ids.to_tensor(0) if isinstance(ids, tf.RaggedTensor) else ids


class BPEEncoder:
    """A ``GPT2Tokenizer`` as the text pipelines (:func:`aigc_tf.data.text.load_text_data`)
    use a ``TextVectorization``: strings -> our ids padded with 0, ``get_vocabulary()``
    with ``""`` and ``"[UNK]"`` first; documents are joined by ``<|endoftext|>``."""

    level = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.document_separator = int(tokenizer.end_token_id) + OFFSET

    def __call__(self, texts):
        return bpe_ids(self.tokenizer, texts)

    def get_vocabulary(self) -> list[str]:
        by_id = sorted(self.tokenizer.vocabulary.items(), key=lambda kv: kv[1])
        return ["", "[UNK]", *(token for token, _ in by_id)]


def _lora_layers(backbone) -> list:
    """The ``EinsumDense`` layers ``enable_lora`` gave adapters, in a fixed order."""
    return [layer for layer in backbone._flatten_layers(include_self=False) if getattr(layer, "lora_enabled", False)]


class _LayerList:
    """Holds layers without Keras tracking them a second time (they belong to the backbone)."""

    def __init__(self, layers):
        self.layers = layers


class LoRAState(keras.layers.Layer):
    """Saves and restores the LoRA layers' frozen kernels and adapters as they are.

    Keras' ``EinsumDense`` saves ``W + A @ B`` as its kernel and zeroes ``A`` and
    ``B`` when it loads: generation is the same, but the adapters restart at
    ``A = B = 0``, where both gradients vanish, so a resumed LoRA run would never
    train again. Keras loads a model's attributes in name order, so this layer
    (``lora_state``) runs after ``backbone`` and puts ``W``, ``A`` and ``B`` back.
    """

    def __init__(self, held: _LayerList, **kwargs):
        super().__init__(**kwargs)
        self._held = held
        self.built = True

    def _variables(self):
        return [v for layer in self._held.layers for v in (layer._kernel, layer.lora_kernel_a, layer.lora_kernel_b)]

    def save_own_variables(self, store):
        for i, v in enumerate(self._variables()):
            store[str(i)] = v.numpy()

    def load_own_variables(self, store):
        variables = self._variables()
        if len(store.keys()) != len(variables):
            raise ValueError(f"the file holds {len(store.keys())} LoRA tensors, the model {len(variables)}")
        for i, v in enumerate(variables):
            v.assign(store[str(i)])
