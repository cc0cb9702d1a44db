"""DCP checkpoints (parallel runs) in one process: a full disk is one line, and the folder
of a save killed midway is removed when the next run on the folder starts."""

from __future__ import annotations

import errno
import warnings

import pytest
import torch
from torch import nn

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train import dist_checkpoint
from snsm_workbench.train.parallel import Parallel
from snsm_workbench.train.run_folder import RunFolder

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")


def _save(run_dir, step, model, optimizer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist_checkpoint.save(run_dir, {"step": step}, model, optimizer, Parallel())


@pytest.fixture
def trained():
    model = nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_a_full_disk_during_a_dcp_save_is_one_line_and_keeps_the_last_checkpoint(
        tmp_path, trained, monkeypatch):
    from torch.distributed.checkpoint import filesystem

    _save(tmp_path, 5, *trained)

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filesystem.FileSystemWriter, "write_data", full_disk)
    with pytest.raises(OSError) as caught:
        _save(tmp_path, 10, *trained)
    folder = tmp_path / dist_checkpoint.folder_name(10)
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == (f"[Errno 28] cannot write the checkpoint {folder}: No space "
                                 f"left on device")
    assert not folder.exists()  # the incomplete folder is removed
    payload = ckpt.load_checkpoint(tmp_path)
    assert payload["step"] == 5 and (tmp_path / payload["dcp"]).is_dir()


def _claim(run_dir):
    folder = RunFolder(run_dir, Parallel(), record={"config": {}})
    folder.claim()
    folder.release()


def test_an_incomplete_dcp_folder_is_removed_on_the_next_start(tmp_path, trained):
    _save(tmp_path, 5, *trained)
    killed = tmp_path / dist_checkpoint.folder_name(10)  # a save killed before checkpoint.pt
    killed.mkdir()
    (killed / "__0_0.distcp").write_bytes(b"half")
    _claim(tmp_path)
    assert not killed.exists()
    assert (tmp_path / dist_checkpoint.folder_name(5)).is_dir()


def test_without_a_checkpoint_every_dcp_folder_is_incomplete(tmp_path):
    killed = tmp_path / dist_checkpoint.folder_name(5)
    killed.mkdir(parents=True)
    _claim(tmp_path)
    assert not killed.exists()


def test_beside_a_damaged_checkpoint_nothing_is_removed(tmp_path):
    kept = tmp_path / dist_checkpoint.folder_name(5)
    kept.mkdir(parents=True)
    (tmp_path / ckpt.CHECKPOINT_NAME).write_bytes(b"damaged")
    assert dist_checkpoint.remove_unnamed(tmp_path) == []
    assert kept.is_dir()
