"""A run folder's life: chosen and checked, created and locked, written, released.

Contents: ``config.json`` (the run record, :mod:`snsm_workbench.train.record`),
``metrics.jsonl`` (:class:`~snsm_workbench.train.metrics.MetricsLog`), ``checkpoint.pt``
(:mod:`snsm_workbench.train.checkpoint`; with ``parallel="ddp"|"fsdp"`` the model and optimizer
go to ``dcp-stepN/``, :mod:`snsm_workbench.train.dist_checkpoint`) and ``curves.png``. Rank 0
writes them all.

* :func:`plan_run`: the run's config, folder and saved record, checked, nothing created;
* :meth:`RunFolder.claim`: the folder created and locked (``.lock``: a second process on it is
  refused at once), the temporary files a killed write left there removed;
* :meth:`RunFolder.release`: the lock released (also when a :class:`RunFolder` is dropped).
"""

from __future__ import annotations

import logging
import time
import weakref
from pathlib import Path
from typing import Any

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train import dist_checkpoint
from snsm_workbench.train.config import TrainConfig, check_paths
from snsm_workbench.train.metrics import METRICS_NAME, MetricsLog
from snsm_workbench.train.parallel import Parallel
from snsm_workbench.train.record import (CONFIG_NAME, is_run_record, read_run_record,
                                         write_run_record)
from snsm_workbench.train.resume import (check_record_unedited, record_resume, resume_changes,
                                         resume_config)
from snsm_workbench.util.errors import ConflictError
from snsm_workbench.util.locks import LOCK_NAME, FolderLock

logger = logging.getLogger(__name__)

CURVES_NAME = "curves.png"


def plan_run(config: TrainConfig, read_data: bool = True
             ) -> tuple[TrainConfig, Path, dict | None]:
    """The run's config, folder and, when resumed, its saved record; all checked, none created
    (the data paths only when the run reads its data: ``read_data``).

    A resumed run takes its saved config with the changes ``config`` asks for
    (:func:`~snsm_workbench.train.resume.resume_changes`,
    :func:`~snsm_workbench.train.resume.resume_config`).
    """
    if config.resume:
        run_dir = Path(config.resume)
        resolved = resume_config(run_dir, resume_changes(config))
        record = read_run_record(run_dir)
        if not (run_dir / ckpt.CHECKPOINT_NAME).is_file():
            raise ckpt.CheckpointError(
                f"cannot resume {run_dir}: it holds no {ckpt.CHECKPOINT_NAME} (the run stopped "
                f"before its first save); start it over with --out {run_dir}")
        check_paths(resolved, data=read_data)
        return resolved, run_dir, record
    check_paths(config, data=read_data)
    run_dir = Path(config.out or f"runs/{config.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_no_run(run_dir)
    return config, run_dir, None


def _check_no_run(run_dir: Path) -> None:
    """ConflictError when ``run_dir`` holds a run (resume it instead), or files of its own
    (it is not empty and not a run folder of ours: nothing there is overwritten)."""
    if (run_dir / ckpt.CHECKPOINT_NAME).exists():
        raise ConflictError(f"{run_dir} already holds a run; resume it with --resume {run_dir} "
                            f"or choose another --out")
    if not run_dir.is_dir() or is_run_record(run_dir / CONFIG_NAME):
        return  # new, or a run of ours stopped before its first save: started over
    foreign = sorted(p.name for p in run_dir.iterdir() if not _ours(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise ConflictError(f"--out {run_dir} is not empty and not an snsm run folder (it "
                            f"holds {shown}); choose a new or empty folder, nothing was written")


def _ours(name: str) -> bool:
    """Whether a file of this name in a new run's folder is the harness's: its lock, or a
    temporary file or DCP folder of a run killed before its first save."""
    return (name == LOCK_NAME or ckpt.is_leftover(name)
            or name.startswith(dist_checkpoint.PREFIX))


class RunFolder:
    """The folder of one run on every rank; rank 0 creates, locks and writes it.

    ``record`` is the saved run record of a resumed run (None for a new run).
    """

    def __init__(self, path: Path, parallel: Parallel, record: dict | None):
        self.parallel = parallel
        self.path = parallel.broadcast(path)  # rank 0's choice (a time-stamped name)
        self.record = record
        self.lock: FolderLock | None = None
        self.created = False  # by this run (rank 0): removed again if the run never begins

    @property
    def resumed(self) -> bool:
        return self.record is not None

    def claim(self) -> None:
        """Create and lock the folder (rank 0; the others learn the outcome), then remove
        the temporary files and incomplete DCP folders a killed write left there."""
        error = None
        if self.parallel.is_main:
            try:
                self.created = not self.path.exists()
                self.path.mkdir(parents=True, exist_ok=True)
                self.lock = FolderLock(self.path, "run folder").acquire()
                weakref.finalize(self, self.lock.release)  # a folder never released
                if not self.resumed:
                    _check_no_run(self.path)  # again, under the lock: a racing run
                ckpt.remove_leftovers(self.path)
                dist_checkpoint.remove_unnamed(self.path)
            except Exception as exc:
                error = exc
        error = self.parallel.broadcast(error)
        if error is not None:
            raise error
        self.path.mkdir(parents=True, exist_ok=True)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def abandon(self) -> None:
        """Release the folder of a run that failed before it began (bad data, a sequence
        longer than the data allows), and remove it if this run created it and it holds
        nothing but its lock: no empty run folder is left behind."""
        try:
            held = self.lock is not None and self.lock.held  # never another process's lock
            if held and self.created and all(p.name == LOCK_NAME for p in self.path.iterdir()):
                (self.path / LOCK_NAME).unlink(missing_ok=True)
                self.release()
                self.path.rmdir()
        except OSError as exc:
            logger.debug("could not remove %s: %s", self.path, exc)
        self.release()

    def check_data(self, fingerprint: str | None, source: str) -> None:
        """On resume: ConflictError when the data's content differs from the saved run's."""
        if self.record is None:
            return
        saved = (self.record.get("data") or {}).get("fingerprint")
        if saved is None or fingerprint is None:
            logger.warning("%s: the data's fingerprint is unknown (a run of an older snsm); "
                           "its content cannot be checked", self.path)
        elif fingerprint != saved:
            raise ConflictError(
                f"cannot resume {self.path}: the content of its data ({source}) changed "
                f"since the run started (fingerprint {fingerprint[:12]}, saved {saved[:12]}); "
                f"restore the data, or train on it in a new run with --out")

    def write_record(self, record: dict[str, Any]) -> None:
        """Write ``record`` as the run record (the caller is rank 0)."""
        write_run_record(self.path, record)

    def record_resume(self, config: TrainConfig, step: int) -> None:
        """Write the settings this resume changed into the record (rank 0)."""
        if self.parallel.is_main and record_resume(self.record, config, step):
            write_run_record(self.path, self.record)

    def metrics_log(self, resumed_step: int | None) -> MetricsLog:
        """``metrics.jsonl`` (rank 0; the others keep their records in memory), trimmed to
        ``resumed_step`` on resume."""
        return MetricsLog(self.path / METRICS_NAME if self.parallel.is_main else None,
                          resumed_step)

    def save_checkpoint(self, payload: dict, model, optimizer) -> None:
        """The checkpoint: ``payload`` with the model's and the optimizer's state."""
        if self.parallel.enabled:  # model and optimizer through torch.distributed.checkpoint
            dist_checkpoint.save(self.path, payload, model, optimizer, self.parallel)
        else:
            ckpt.save_checkpoint(self.path, {**payload, "model": model.state_dict(),
                                             "optimizer": optimizer.state_dict()})

    def load_checkpoint(self, config: dict, model, optimizer) -> dict:
        """The saved checkpoint's payload, its model and optimizer state loaded into ``model``
        and ``optimizer``; CheckpointError when its identity differs from ``config``'s."""
        payload = ckpt.load_checkpoint(self.path)
        check_record_unedited(self.path, config, payload.get("config", {}))
        if self.parallel.enabled:
            dist_checkpoint.load(self.path, payload, model, optimizer, self.parallel)
        else:
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
        return payload

    def plot(self, name: str, records: list[dict]) -> None:
        """``curves.png`` of the run's records (rank 0)."""
        from snsm_workbench.train.plots import plot_curves

        if self.parallel.is_main:
            plot_curves({name: records}, self.path / CURVES_NAME)
