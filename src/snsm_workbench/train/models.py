"""Model presets (:data:`snsm_workbench.measure.models.PRESETS`) -> ``transformers.LlamaForCausalLM``,
built from a config (nothing downloads).

Every model has an untied ``lm_head``, RMSNorm eps 1e-6, no dropout, no KV cache and SDPA attention (on CPU,
bit-for-bit deterministic and equal to eager attention to float rounding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from snsm_workbench.measure.models import PRESETS
from snsm.checks import check_choice, check_int

if TYPE_CHECKING:  # pragma: no cover
    from transformers import LlamaConfig, LlamaForCausalLM

ATTN_IMPLEMENTATION = "sdpa"


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ImportError("the training harness needs transformers; install the train extra: "
                          "pip install 'snsm[train]'") from exc
    return transformers


def model_config(preset: str, vocab_size: int, seq_len: int | None = None) -> LlamaConfig:
    """The ``LlamaConfig`` of ``preset`` with ``vocab_size`` tokens and context ``seq_len``.

    ``seq_len`` None takes the preset's. ValueError for an unknown preset or a
    vocabulary size or sequence length below 1.
    """
    check_choice("preset", preset, PRESETS)
    check_int("vocab_size", vocab_size)
    if seq_len is not None:
        check_int("seq_len", seq_len)
    shape = PRESETS[preset]
    transformers = _import_transformers()
    return transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=shape.hidden, intermediate_size=shape.ffn,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads, max_position_embeddings=seq_len or shape.seq_len,
        rms_norm_eps=1e-6, tie_word_embeddings=False, attention_dropout=0.0,
        attention_bias=False, mlp_bias=False, use_cache=False,
        attn_implementation=ATTN_IMPLEMENTATION)


def build_model(preset: str, vocab_size: int, seq_len: int | None = None,
                seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialized float32 LLaMA of ``preset`` on the CPU.

    The weights are a function of ``seed`` alone: the model is built under a
    forked CPU RNG, so the caller's global RNG state is left as it was.
    """
    config = model_config(preset, vocab_size, seq_len)
    check_int("seed", seed, minimum=0)
    transformers = _import_transformers()
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    return model


def count_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model`` (a tensor shared by two modules counts once)."""
    return sum(p.numel() for p in model.parameters())
