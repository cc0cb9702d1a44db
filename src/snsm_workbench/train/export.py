"""A ``snsm train`` run folder as a Hugging Face model folder: ``export_run(RUN, OUT)``.

The folder ``save_pretrained`` writes, so ``LlamaForCausalLM.from_pretrained(OUT)`` (and
``AutoModelForCausalLM``, ``AutoTokenizer``) load it with no snsm installed:

* the weights of the run's last checkpoint (``checkpoint.pt``, or the ``dcp-stepN/`` folder a
  parallel run's checkpoint names), in the run's weight dtype, as safetensors, with the
  model's ``config.json`` (the preset's ``LlamaConfig``; ``use_cache`` on, for generation);
* the tokenizer, when the run's token cache entry (``RUN/config.json``'s ``data.cache``) is
  still there and holds the run's data: a ``PreTrainedTokenizerFast`` from its
  ``tokenizer.json``, with ``<|endoftext|>`` as the BOS, EOS and unknown token (the model's
  ``bos_token_id`` and ``eos_token_id`` are set to it). Without it the model is exported alone,
  with a warning (``--data`` runs whose cache was cleared: re-run one step to rebuild it).

``OUT`` must not exist or be an empty folder. The files are written to a temporary folder
beside ``OUT``, renamed to ``OUT`` when complete: a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.models import build_model
from snsm_workbench.train.record import read_run_record, read_run_config
from snsm_workbench.train.run_config import resolve
from snsm_workbench.train.tokens import EOT, MANIFEST

logger = logging.getLogger(__name__)

EMBEDDING = "model.embed_tokens.weight"


def check_export_folder(out: Path) -> None:
    """ValueError unless ``out`` is absent or an empty folder (so nothing is overwritten)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot export to {out}: it is a file; give a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"cannot export to {out}: the folder is not empty; give a new or "
                         f"empty folder")


def load_run_model(run_dir: Path) -> tuple[torch.nn.Module, int]:
    """The run's ``LlamaForCausalLM`` with its last checkpoint's weights, and that step."""
    config = read_run_config(run_dir)
    payload = ckpt.load_checkpoint(run_dir)
    state = payload.get("model")
    if state is None and "dcp" in payload:
        return _load_dcp_model(run_dir, payload, config), payload["step"]
    if state is None:
        raise ckpt.CheckpointError(f"checkpoint in {run_dir} holds no model weights")
    model = _empty_model(config, state[EMBEDDING].shape[0], state[EMBEDDING].dtype)
    model.load_state_dict(state)
    return model, payload["step"]


def _empty_model(config, vocab_size: int, dtype: torch.dtype) -> torch.nn.Module:
    model = build_model(config.preset, vocab_size, resolve(config).seq_len, seed=config.seed)
    return model.to(dtype)


def _load_dcp_model(run_dir: Path, payload: dict, config) -> torch.nn.Module:
    """A parallel run's model from the DCP folder its checkpoint names (the shards of every
    rank joined in this one process)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                         set_model_state_dict)

    folder = run_dir / payload["dcp"]
    metadata = dcp.FileSystemReader(str(folder)).read_metadata().state_dict_metadata
    embedding = metadata[f"model.{EMBEDDING}"]
    model = _empty_model(config, embedding.size[0], embedding.properties.dtype)
    state = get_model_state_dict(model)
    with warnings.catch_warnings():  # loading into one process is what is meant here
        warnings.filterwarnings("ignore", message=".*assuming the intent is to load in a single")
        dcp.load({"model": state}, checkpoint_id=str(folder))
    set_model_state_dict(model, state)
    return model


def run_tokenizer(run_dir: Path, record: dict[str, Any]):
    """The run's tokenizer as a ``PreTrainedTokenizerFast``, or None (with a warning naming
    why) when its token cache entry is gone or holds other data."""
    from transformers import PreTrainedTokenizerFast

    data = record.get("data") or {}
    entry = Path(data["cache"]) if data.get("cache") else None
    if entry is None or not (entry / "tokenizer.json").is_file():
        logger.warning("%s: the run's token cache (%s) is gone: exporting the model without "
                       "a tokenizer", run_dir, entry)
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("fingerprint") != data.get("fingerprint"):
        logger.warning("%s: the token cache %s holds other data than the run's: exporting the "
                       "model without a tokenizer", run_dir, entry)
        return None
    return PreTrainedTokenizerFast(tokenizer_file=str(entry / "tokenizer.json"), bos_token=EOT,
                                   eos_token=EOT, unk_token=EOT)


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Write run ``run_dir`` as a Hugging Face model folder ``out`` (the module docstring);
    returns what was written: ``{"out", "step", "tokenizer"}``."""
    run_dir, out = Path(run_dir), Path(out)
    check_export_folder(out)
    try:
        record = read_run_record(run_dir)
        model, step = load_run_model(run_dir)
    except ckpt.CheckpointError as exc:  # its messages speak of resuming
        raise ckpt.CheckpointError(str(exc).replace("cannot resume", "cannot export", 1)) from None
    tokenizer = run_tokenizer(run_dir, record)
    if tokenizer is not None:
        eot = tokenizer.convert_tokens_to_ids(EOT)
        for config in (model.config, model.generation_config):
            config.bos_token_id = config.eos_token_id = eot
    model.config.use_cache = model.generation_config.use_cache = True
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        os.replace(staging, out)  # onto an absent or empty folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported %s (step %d%s) to %s", run_dir, step,
                ", with its tokenizer" if tokenizer is not None else ", no tokenizer", out)
    return {"out": str(out), "step": step, "tokenizer": tokenizer is not None}
