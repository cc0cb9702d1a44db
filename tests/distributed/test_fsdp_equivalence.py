"""2-rank FSDP2 and DDP runs of every registry optimizer equal one process on the global batch.

One torchrun launch runs all configurations (``dist_worker.CONFIGS``): 10 steps of a
tiny model with uneven shards (a rank holding no row of a matrix included), each rank
on half of the batch, against 10 steps in one process on the whole batch.

Tolerances (relative, ||p_dist - p_single|| / ||p_single||, largest over parameters):
1e-5 for every configuration whose rules are computed alone on each rank or from a seed
(Subset-Norm, AdamW, uniform / gaussian / srht projectors); measured at most 1.2e-7, the
rounding of the gradient's reduction. ``svd``, ``rsvd`` and ``topk`` build their basis
from the all-gathered gradient, which equals the single process's only to that rounding;
a near-degenerate spectrum would amplify it, hence 1e-4 (measured at most 8.4e-8 here).

Orthogonalized updates (the Muon family, Newton-Schulz in float32): the gathered numerator
equals the single process's to the gradient's reduction rounding, which the iteration
amplifies by up to its slope (about 3.4 per step near 0): 1e-4 for the parameters and states.

Pure-bf16 weights (stochastic rounding): the gradients are bf16, so the two halves' sum
differs from the whole batch's by bf16 rounding (2^-8 relative), and the runs by about that:
5e-3 for the parameters (measured 3.0e-3), 2e-2 for the states (1.3e-2). FSDP2 and DDP reduce
the same two halves, and a shard rounds with its rows' bits of the whole parameter, so FSDP2
equals DDP bit for bit (each shard drawing its bits from element 0 gave 9.6e-3 from one process
and 3.2x DDP's difference).

8-bit states (``state_precision="8bit"``): quantization is elementwise and deterministic, so
the runs stay equal to that rounding unless a value lands within it of a code boundary;
then one state element moves by one code step, at most 1/127 of its block's absmax (1/127
of the tensor's norm: state tolerance 1e-2), and the update of one coordinate by about
that fraction of lr = 1e-2 for the remaining steps (parameter tolerance 1e-3).
"""

from __future__ import annotations

import pytest

from dist_worker import BF16, CONFIGS, HSDP

DATA_DEPENDENT = ("svd", "rsvd", "topk")
TOLERANCE = 1e-5
DATA_DEPENDENT_TOLERANCE = 1e-4
STATE_TOLERANCE = 1e-5
EIGHT_BIT_TOLERANCE = 1e-3
EIGHT_BIT_STATE_TOLERANCE = 1e-2
ORTHOGONAL_TOLERANCE = 1e-4
BF16_TOLERANCE = 5e-3
BF16_STATE_TOLERANCE = 2e-2


@pytest.fixture
def results(equivalence_results) -> list[dict]:
    return equivalence_results


def _eight_bit(label: str) -> bool:
    return CONFIGS[label][1].get("state_precision") == "8bit"


def _orthogonal(label: str) -> bool:
    return CONFIGS[label][0].startswith("muon")


def _tolerance(label: str) -> float:
    if label in BF16:
        return BF16_TOLERANCE
    if _orthogonal(label):
        return ORTHOGONAL_TOLERANCE
    if _eight_bit(label):
        return EIGHT_BIT_TOLERANCE
    projector = CONFIGS[label][1].get("projector")
    return DATA_DEPENDENT_TOLERANCE if projector in DATA_DEPENDENT else TOLERANCE


@pytest.mark.parametrize("label", list(CONFIGS))
@pytest.mark.parametrize("mode", ["fsdp", "ddp"])
def test_distributed_run_equals_one_process(results, label, mode):
    for rank, result in enumerate(results):
        assert result[label][mode] < _tolerance(label), (rank, result[label])


@pytest.mark.parametrize("label", list(CONFIGS))
def test_fsdp_optimizer_state_gathers_to_the_single_process_state(results, label):
    """Sharded keys gathered and replicated keys as they are equal the one-process state
    (for svd/rsvd, bases and momenta are left out: singular vectors have free signs)."""
    for result in results:
        tolerance = EIGHT_BIT_STATE_TOLERANCE if _eight_bit(label) else (
            ORTHOGONAL_TOLERANCE if _orthogonal(label) else
            BF16_STATE_TOLERANCE if label in BF16 else STATE_TOLERANCE)
        assert result[label]["fsdp_state"] < tolerance, result[label]


@pytest.mark.parametrize("label", list(CONFIGS))
def test_fsdp_state_is_sharded_as_estimated(results, label):
    """Each rank holds exactly the bytes ``estimate_state_bytes(world_size=2)`` predicts for
    it, and rank 1 (fewer rows) less than rank 0: the state is sharded, not replicated."""
    rank0, rank1 = (result[label] for result in results)
    for row in (rank0, rank1):
        assert row["state_bytes"] == row["estimated_bytes"], row
    assert rank1["state_bytes"] < rank0["state_bytes"]


@pytest.mark.parametrize("label", HSDP)
def test_hsdp_mesh_run_equals_one_process(results, label):
    """A 2-D (replicate, shard) mesh: collectives run on the shard dim's group."""
    for result in results:
        assert result[label]["hsdp"] < _tolerance(label), result[label]
        assert result[label]["hsdp_state"] < STATE_TOLERANCE, result[label]


@pytest.mark.parametrize("label", list(CONFIGS))
def test_ddp_steps_inside_the_backward_pass_equal_the_regular_ddp_step(results, label):
    """Updates in DDP's communication hook, on each bucket's averaged gradients: bitwise."""
    for result in results:
        assert result[label]["ddp_in_backward_max_abs"] == 0.0, result[label]


@pytest.mark.parametrize("label", BF16)
def test_fsdp2_rounds_pure_bf16_weights_as_ddp_does(results, label):
    """Stochastic rounding on shards: each rank's rows take the whole parameter's bits."""
    for result in results:
        assert result[label]["fsdp_vs_ddp_max_abs"] == 0.0, result[label]
