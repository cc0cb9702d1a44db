"""Parameter skeletons of the paper's LLaMA models (torch only, for memory and speed work).

The modules mirror ``transformers.LlamaForCausalLM``'s parameter shapes and
module types (``nn.Linear`` projections, ``nn.Embedding``, RMSNorm weights, an
untied lm_head), so routing treats them as it treats the real model. Build
them on the ``meta`` device to estimate memory without allocating it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int = 32000


# The GaLore / paper configurations (hidden, ffn, layers, heads), vocab 32000.
LLAMA_SHAPES = {
    "llama-60m": LlamaShape(512, 1376, 8, 8),
    "llama-130m": LlamaShape(768, 2048, 12, 12),
    "llama-350m": LlamaShape(1024, 2736, 24, 16),
    "llama-1b": LlamaShape(2048, 5461, 24, 32),
    "llama-7b": LlamaShape(4096, 11008, 32, 32),
}


class _RMSNormWeight(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))


class _Layer(nn.Module):
    def __init__(self, s: LlamaShape):
        super().__init__()
        h, f = s.hidden, s.intermediate
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(h, h, bias=False) for _ in range(4))
        self.gate_proj = nn.Linear(h, f, bias=False)
        self.up_proj = nn.Linear(h, f, bias=False)
        self.down_proj = nn.Linear(f, h, bias=False)
        self.input_layernorm = _RMSNormWeight(h)
        self.post_attention_layernorm = _RMSNormWeight(h)


class LlamaSkeleton(nn.Module):
    """The parameters of a LLaMA causal LM, without a forward pass."""

    def __init__(self, s: LlamaShape):
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab, s.hidden)
        self.layers = nn.ModuleList(_Layer(s) for _ in range(s.layers))
        self.norm = _RMSNormWeight(s.hidden)
        self.lm_head = nn.Linear(s.hidden, s.vocab, bias=False)


def llama_skeleton(name: str, device: str | torch.device = "meta",
                   dtype: torch.dtype = torch.float32) -> LlamaSkeleton:
    """The skeleton of LLaMA ``name`` (one of ``LLAMA_SHAPES``) on ``device``."""
    if name not in LLAMA_SHAPES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(LLAMA_SHAPES)}")
    with torch.device(device):
        return LlamaSkeleton(LLAMA_SHAPES[name]).to(dtype)
