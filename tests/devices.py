"""The devices the tests run on, and how closely two update paths must agree on each.

CPU always; CUDA when ``torch.cuda.is_available()`` (a machine without a GPU generates no
CUDA cases, so ``make test`` stays CPU-only and green there).

The foreach path and the single-tensor reference run the same rule functions. On the CPU
they agree bit for bit. On CUDA the ``torch._foreach_*`` kernels (multi-tensor apply) may
contract a multiply and an add into one fused multiply-add where the single-tensor kernel
rounds twice, so there they agree to ``torch.testing.assert_close``'s defaults for the dtype
(float32: rtol 1.3e-6, atol 1e-5; bfloat16: rtol 1.6e-2, atol 1e-5). The same tolerance
applies to our AdamW / AdaGrad against torch's on CUDA.
"""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def assert_paths_agree(actual: torch.Tensor, expected: torch.Tensor, msg=None) -> None:
    """Bit for bit on the CPU; ``assert_close``'s dtype defaults on CUDA (see above)."""
    if actual.device.type == "cpu":
        assert torch.equal(actual, expected), msg
    else:
        torch.testing.assert_close(actual, expected, msg=msg)
