import pytest
import torch

from devices import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device the tests run on: "cpu", and "cuda" where available (tests/devices.py)."""
    return torch.device(request.param)
