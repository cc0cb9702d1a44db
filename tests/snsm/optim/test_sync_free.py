"""No host sync inside ``step()`` (docs/gpu.md).

On the CPU no call can sync with a device, so the test patches the calls that would on
CUDA (``item``, ``bool``, ``float``, ``int``, ``tolist``, ``nonzero``, ...) to raise during
``step()``; the only tensors the host may read are the step counters, which live on the
host by design. The device-side skip of ``skip_nonfinite`` (CUDA's path) is forced on the
CPU for this. On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` makes every sync raise.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import snsm
import snsm.optim.nonfinite
from devices import needs_cuda
from problems import grad_stream, make_params, run

SM = dict(rank=2, update_gap=2)  # refreshes on steps 1, 3, 5
CASES = {
    "adamw": (snsm.AdamW, {}),
    "adamw_sn": (snsm.AdamSN, {}),
    "adamw_snsm[uniform]": (snsm.AdamSNSM, dict(SM, projector="uniform")),
    "adamw_snsm[gaussian,project]": (snsm.AdamSNSM, dict(SM, projector="gaussian",
                                                         on_refresh="project")),
    "adamw_snsm[srht]": (snsm.AdamSNSM, dict(SM, projector="srht")),
    "adamw_snsm[topk,8bit]": (snsm.AdamSNSM, dict(SM, projector="topk", state_precision="8bit")),
    "adamw_snsm[svd]": (snsm.AdamSNSM, dict(SM, projector="svd")),
    "adamw_snsm[rsvd]": (snsm.AdamSNSM, dict(SM, projector="rsvd")),
    "adagrad_snsm[svd]": (snsm.AdaGradSNSM, dict(SM, projector="svd")),
    "sgd_sm[uniform]": (snsm.SGDSM, dict(SM, projector="uniform")),
}
# Refreshes that torch itself syncs in on CUDA: torch.linalg.svd reads its convergence flag
# on the host (torch documents it); once per update_gap steps.
SVD_REFRESH = ("adamw_snsm[svd]", "adamw_snsm[rsvd]", "adagrad_snsm[svd]")
HOST_READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy",
              "nonzero", "masked_select", "unique")


@contextlib.contextmanager
def no_host_reads(allowed: set[int]):
    """Raise on every host read of a tensor's values, except of the tensors in ``allowed``
    (ids), for the duration of the block."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def guard(name):
        def read(self, *args, **kwargs):
            if id(self) not in allowed:
                raise AssertionError(f"Tensor.{name} inside step() (a host sync on CUDA)")
            return originals[name](self, *args, **kwargs)
        return read

    torch_nonzero = torch.nonzero
    try:
        for name in HOST_READS:
            setattr(torch.Tensor, name, guard(name))
        torch.nonzero = lambda *a, **k: (_ for _ in ()).throw(
            AssertionError("torch.nonzero inside step() (a host sync on CUDA)"))
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        torch.nonzero = torch_nonzero


def _steps(optimizer, params, grads, guard) -> None:
    """A first step unguarded (it allocates the state, step counters included), then the
    rest under ``guard`` (the step counters allowed)."""
    run(optimizer, params, grads[:1])
    counters = {id(state["step"]) for state in optimizer.state.values()}
    with guard(counters):
        run(optimizer, params, grads[1:])


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
def test_update_paths_read_nothing_on_the_host(name, foreach, monkeypatch):
    """The update itself (refreshes included): only the host step counters are read."""
    cls, kwargs = CASES[name]
    monkeypatch.setattr(cls, "_gradients_are_usable", lambda self: True)
    params = make_params()
    _steps(cls(params, foreach=foreach, **kwargs), params, grad_stream(params, 5), no_host_reads)


@pytest.mark.parametrize("name", CASES)
def test_skip_nonfinite_on_a_device_reads_nothing_on_the_host(name, monkeypatch):
    """The finite check and the gated step of ``skip_nonfinite`` off the CPU, a skipped
    step included."""
    monkeypatch.setattr(snsm.optim.nonfinite, "on_device", lambda grads: True)
    cls, kwargs = CASES[name]
    params = make_params()
    grads = grad_stream(params, 5)
    grads[2][0][0, 0] = float("nan")
    optimizer = cls(params, skip_nonfinite=True, **kwargs)
    _steps(optimizer, params, grads, no_host_reads)
    assert optimizer.skipped_steps == 1


def test_compiled_update_reads_nothing_on_the_host(monkeypatch):
    cls = snsm.AdamSNSM
    monkeypatch.setattr(cls, "_gradients_are_usable", lambda self: True)
    params = make_params(shapes=[(8, 6), (6,)])
    optimizer = cls(params, compile=True, projector="uniform", **SM)
    _steps(optimizer, params, grad_stream(params, 4), no_host_reads)


def test_the_guard_catches_a_host_read():
    x = torch.ones(2)
    with pytest.raises(AssertionError, match="item"), no_host_reads(set()):
        x.sum().item()
    with pytest.raises(AssertionError, match="__bool__"), no_host_reads(set()):
        bool(x.all())
    assert x.sum().item() == 2.0  # restored


# ----------------------------------------------------------------------------- CUDA


@contextlib.contextmanager
def sync_debug_error():
    """Every host-device sync raises inside the block."""
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@needs_cuda
@pytest.mark.parametrize("name", CASES)
def test_cuda_steps_do_not_sync(name):
    """skip_nonfinite=True on CUDA: no sync in any step (a skipped one included), but on the
    refresh steps of svd / rsvd (torch.linalg.svd syncs), taken outside the check here."""
    cls, kwargs = CASES[name]
    params = make_params("cuda")
    grads = grad_stream(params, 6)
    grads[3][0][0, 0] = float("nan")
    optimizer = cls(params, skip_nonfinite=True, **kwargs)
    run(optimizer, params, grads[:2])  # step 1: the state and a refresh
    for step, step_grads in enumerate(grads[2:], start=3):
        refresh = (step - 1) % SM["update_gap"] == 0 and name in SVD_REFRESH
        with contextlib.nullcontext() if refresh else sync_debug_error():
            run(optimizer, params, [step_grads])
    assert optimizer.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in params)


@needs_cuda
@pytest.mark.parametrize("name", ["adamw", "adamw_sn", "adamw_snsm[uniform]"])
def test_cuda_compiled_steps_without_the_check_do_not_sync_or_recompile(name, monkeypatch):
    """The compiled path on CUDA: no sync and no recompilation after step 1."""
    import torch._dynamo

    cls, kwargs = CASES[name]
    monkeypatch.setattr(cls, "_gradients_are_usable", lambda self: True)
    params = make_params("cuda")
    grads = grad_stream(params, 6)
    optimizer = cls(params, compile=True, **kwargs)
    run(optimizer, params, grads[:1])
    with torch._dynamo.config.patch(error_on_recompile=True), sync_debug_error():
        run(optimizer, params, grads[1:])
