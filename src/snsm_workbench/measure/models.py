"""The model catalogue: LLaMA shapes by name, and parameter skeletons of them (torch only).

One table serves everything: ``snsm train`` builds ``transformers`` models from
it (:mod:`snsm_workbench.train.models`), and the memory and speed measurements build
skeletons from it. ``tiny``, ``mini`` and ``small`` are CPU-sized; the ``llama-*`` entries
are the paper's (GaLore's) pre-training configurations.

The skeletons mirror ``transformers.LlamaForCausalLM``'s parameter shapes and
module types (``nn.Linear`` projections, ``nn.Embedding``, RMSNorm weights, an
untied lm_head), so routing treats them as it treats the real model. Build
them on the ``meta`` device to estimate memory without allocating it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelShape:
    """A LLaMA shape: width, depth, attention heads, MLP width, default sequence length and
    the vocabulary of its skeleton (the harness sets its own, from its tokenizer)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    seq_len: int = 256
    vocab: int = 32000


PRESETS: dict[str, ModelShape] = {
    "tiny": ModelShape(hidden=128, layers=4, heads=4, ffn=352, seq_len=128),
    "mini": ModelShape(hidden=192, layers=4, heads=4, ffn=512, seq_len=128),
    "small": ModelShape(hidden=256, layers=4, heads=4, ffn=688),
    "llama-60m": ModelShape(hidden=512, layers=8, heads=8, ffn=1376),
    "llama-130m": ModelShape(hidden=768, layers=12, heads=12, ffn=2048),
    "llama-350m": ModelShape(hidden=1024, layers=24, heads=16, ffn=2736),
    "llama-1b": ModelShape(hidden=2048, layers=24, heads=32, ffn=5461),
    "llama-7b": ModelShape(hidden=4096, layers=32, heads=32, ffn=11008),
}
# The paper's models: the choices of `snsm memory` and `snsm speed`.
LLAMA_SHAPES: dict[str, ModelShape] = {name: shape for name, shape in PRESETS.items()
                                       if name.startswith("llama-")}


class _RMSNormWeight(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))


class _Layer(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        h, f = s.hidden, s.ffn
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(h, h, bias=False) for _ in range(4))
        self.gate_proj = nn.Linear(h, f, bias=False)
        self.up_proj = nn.Linear(h, f, bias=False)
        self.down_proj = nn.Linear(f, h, bias=False)
        self.input_layernorm = _RMSNormWeight(h)
        self.post_attention_layernorm = _RMSNormWeight(h)


class LlamaSkeleton(nn.Module):
    """The parameters of a LLaMA causal LM, without a forward pass."""

    def __init__(self, s: ModelShape):
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab, s.hidden)
        self.layers = nn.ModuleList(_Layer(s) for _ in range(s.layers))
        self.norm = _RMSNormWeight(s.hidden)
        self.lm_head = nn.Linear(s.hidden, s.vocab, bias=False)


def llama_skeleton(name: str, device: str | torch.device = "meta",
                   dtype: torch.dtype = torch.float32) -> LlamaSkeleton:
    """The skeleton of model ``name`` (one of ``PRESETS``) on ``device``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(PRESETS)}")
    with torch.device(device):
        return LlamaSkeleton(PRESETS[name]).to(dtype)
