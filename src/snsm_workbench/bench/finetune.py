"""The fine-tuning setting: a Shakespeare-pretrained tiny model continued on the KJV Bible.

The model is pre-trained once with AdamW on Shakespeare (its checkpoint is kept in
the work folder and reused); the Bible is then tokenized with the *Shakespeare*
tokenizer, so the pretrained embedding and lm_head keep their meaning, and every
contender continues from the same weights on the same Bible batches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.config import TrainConfig, harness_lr
from snsm_workbench.train.corpora import Corpus, kjv_bible
from snsm_workbench.train.loop import CONFIG_NAME, train
from snsm_workbench.train.tokens import TokenData, _encode

logger = logging.getLogger(__name__)


def pretrain(base: TrainConfig, data: TokenData, steps: int, run_dir: Path) -> dict:
    """The model state after ``steps`` AdamW steps on ``data`` (trained once, then reused)."""
    run_dir = Path(run_dir)
    done = run_dir / CONFIG_NAME
    if (run_dir / ckpt.CHECKPOINT_NAME).is_file() and done.is_file():
        payload = ckpt.load_checkpoint(run_dir)
        if payload["step"] == steps:
            logger.info("finetune: reusing the pretrained model in %s", run_dir)
            return payload["model"]
    config = dataclasses.replace(base, optimizer="adamw", lr=harness_lr("adamw"),
                                 optimizer_args={}, plain_lr=None, steps=steps, seed=0,
                                 eval_every=steps, save_every=steps, out=str(run_dir),
                                 quiet=True, resume=None)
    if run_dir.exists():
        import shutil
        shutil.rmtree(run_dir)
    logger.info("finetune: pre-training %d AdamW steps -> %s", steps, run_dir)
    train(config, data=data)
    return ckpt.load_checkpoint(run_dir)["model"]


def encode_with(source: TokenData, corpus: Corpus, folder: Path) -> TokenData:
    """``corpus`` tokenized with ``source``'s tokenizer (cached under ``folder``)."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    dtype = source.train.dtype
    key = {"tokenizer": str(source.tokenizer_path), "corpus": corpus.fingerprint()}
    if not (manifest.is_file() and json.loads(manifest.read_text()).get("key") == key):
        folder.mkdir(parents=True, exist_ok=True)
        tokenizer = source.tokenizer()
        for split in ("train", "val"):
            np.save(folder / f"{split}.npy", _encode(tokenizer, getattr(corpus, split),
                                                    source.eot_id, dtype))
        manifest.write_text(json.dumps({"key": key, "stats": corpus.stats}))
    arrays = {split: np.load(folder / f"{split}.npy", mmap_mode="r") for split in ("train", "val")}
    stats = {**corpus.stats, "tokenizer_of": source.stats.get("cache", ""),
             "train_tokens": len(arrays["train"]), "val_tokens": len(arrays["val"])}
    return TokenData(arrays["train"], arrays["val"], source.vocab_size, source.eot_id,
                     source.tokenizer_path, folder, stats)


def finetune_data(source: TokenData, work: Path) -> TokenData:
    """The KJV Bible in ``source``'s tokens."""
    return encode_with(source, kjv_bible(), Path(work) / "kjv-tokens")
