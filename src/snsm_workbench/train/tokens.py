"""Byte-level BPE tokenizer, memory-mapped token cache, and deterministic batches.

Cache entry: ``cache_dir / entry_name(corpus.name, key)`` (the corpus name cut to
``MAX_NAME_CHARS`` characters, then 16 hex digits of the key: well under the 255 bytes a
file name may have) holding ``tokenizer.json``, ``train.bin``, ``val.bin`` (raw
uint16/uint32 token ids, documents joined by the end-of-text id) and ``manifest.json``,
written last: an entry with a manifest is complete. The manifest holds the CRC-32 of each
file (``checksums``), checked on every load (about 1 s per GB): an entry whose files were
damaged or replaced, even by files of the right size, is rebuilt. ``TokenData.stats["fingerprint"]`` is the
corpus's content fingerprint, which a resumed run checks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snsm_workbench.train.corpora import Corpus

logger = logging.getLogger(__name__)

EOT = "<|endoftext|>"
FORMAT_VERSION = 1  # bump when the cache layout or tokenizer recipe changes
MANIFEST = "manifest.json"
MIN_VOCAB_SIZE = 257  # the 256 bytes and EOT
MAX_NAME_CHARS = 64  # of the corpus name in a cache entry's folder name
CHECKED_FILES = ("tokenizer.json", "train.bin", "val.bin")  # their CRC-32 is in the manifest


def train_tokenizer(texts: list[str], vocab_size: int = 8192):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts``, with the EOT token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be >= {MIN_VOCAB_SIZE} (256 bytes + {EOT}), "
                         f"got {vocab_size}")
    if not any(t.strip() for t in texts):
        raise ValueError(f"cannot train a tokenizer on no text ({len(texts)} documents)")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


@dataclass
class TokenData:
    """The token ids of a corpus (memory-mapped) and where they came from."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    eot_id: int
    tokenizer_path: Path
    cache_dir: Path
    stats: dict

    def tokenizer(self):
        """The ``tokenizers.Tokenizer`` of this data."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.tokenizer_path))


def _dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size < 2**16 else np.uint32)


def cache_key(corpus: Corpus, vocab_size: int) -> str:
    """sha256 hex of what determines the cached tokens."""
    text = f"{corpus.fingerprint()}|{vocab_size}|{FORMAT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()


def entry_name(corpus_name: str, key: str) -> str:
    """The cache entry's folder name: the corpus name (cut to ``MAX_NAME_CHARS``) and the key."""
    return f"{corpus_name[:MAX_NAME_CHARS]}-{key[:16]}"


def _encode(tokenizer, docs: list[str], eot_id: int, dtype: np.dtype) -> np.ndarray:
    """The ids of ``docs`` concatenated, with ``eot_id`` between documents."""
    parts = []
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # fast: no offsets
    for i, encoding in enumerate(encode(docs, add_special_tokens=False)):
        if i:
            parts.append(np.array([eot_id], dtype=dtype))
        parts.append(np.asarray(encoding.ids, dtype=dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _replace_atomically(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then move the temp file onto ``path``."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _checksum(path: Path) -> str:
    """The CRC-32 of the file at ``path`` (hex), read in 4 MiB chunks."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(4 << 20):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _damaged(entry: Path, checksums) -> str | None:
    """The name of the first file of ``entry`` whose CRC-32 is not the one in the manifest
    (``checksums``: file name -> hex), or None when all match."""
    if not isinstance(checksums, dict) or set(checksums) != set(CHECKED_FILES):
        return MANIFEST  # an entry of an older snsm: nothing to check it against
    return next((name for name in CHECKED_FILES
                 if _checksum(entry / name) != checksums[name]), None)


def _memmap(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    """``path`` as a read-only memory map of ``length`` ids (an empty array if 0)."""
    if length == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def _load_entry(entry: Path) -> TokenData | None:
    """The TokenData of a complete cache entry, or None when it is missing or damaged."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        if manifest["format"] != FORMAT_VERSION:
            return None
        dtype = np.dtype(manifest["dtype"])
        arrays = {}
        for split in ("train", "val"):
            path, n = entry / f"{split}.bin", manifest[f"{split}_tokens"]
            if path.stat().st_size != n * dtype.itemsize:
                logger.warning("token cache %s: %s has the wrong size; rebuilding", entry,
                               path.name)
                return None
            arrays[split] = _memmap(path, dtype, n)
        damaged = _damaged(entry, manifest.get("checksums"))
        if damaged is not None:
            logger.warning("token cache %s: %s does not match its checksum in %s; rebuilding",
                           entry, damaged, MANIFEST)
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return TokenData(arrays["train"], arrays["val"], manifest["vocab_size"], manifest["eot_id"],
                     entry / "tokenizer.json", entry, manifest["stats"])


def _build_entry(corpus: Corpus, entry: Path, vocab_size: int, key: str) -> None:
    """Train the tokenizer, encode both splits and write the entry (manifest last)."""
    start = time.perf_counter()
    entry.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus.train, vocab_size)
    eot_id = tokenizer.token_to_id(EOT)
    actual = tokenizer.get_vocab_size()
    dtype = _dtype(actual)
    trained = time.perf_counter()
    ids = {split: _encode(tokenizer, getattr(corpus, split), eot_id, dtype)
           for split in ("train", "val")}
    _replace_atomically(entry / "tokenizer.json", lambda p: tokenizer.save(str(p)))
    for split, array in ids.items():
        _replace_atomically(entry / f"{split}.bin", array.tofile)
    stats = {**corpus.stats, "vocab_size": actual, "train_tokens": len(ids["train"]),
             "val_tokens": len(ids["val"]),
             "chars_per_token": round(corpus.stats.get("chars", 0) /
                                      max(1, len(ids["train"]) + len(ids["val"])), 3)}
    manifest = {"format": FORMAT_VERSION, "key": key, "corpus": corpus.name,
                "fingerprint": corpus.fingerprint(), "requested_vocab_size": vocab_size,
                "vocab_size": actual, "eot_id": eot_id, "dtype": dtype.name,
                "train_tokens": len(ids["train"]), "val_tokens": len(ids["val"]), "stats": stats,
                "checksums": {name: _checksum(entry / name) for name in CHECKED_FILES}}
    _replace_atomically(entry / MANIFEST,
                        lambda p: p.write_text(json.dumps(manifest, indent=2, default=str)))
    logger.info("built token cache %s: tokenizer %.1fs, encoding %.1fs, %d train / %d val tokens",
                entry, trained - start, time.perf_counter() - trained, len(ids["train"]),
                len(ids["val"]))


def prepare_tokens(corpus: Corpus, cache_dir: str | Path, vocab_size: int = 8192) -> TokenData:
    """The tokens of ``corpus`` from the cache, building the entry first when it is absent."""
    key = cache_key(corpus, vocab_size)
    entry = Path(cache_dir).expanduser() / entry_name(corpus.name, key)
    data = _load_entry(entry)
    if data is not None:
        logger.info("reusing token cache %s", entry)
    else:
        _build_entry(corpus, entry, vocab_size, key)
        data = _load_entry(entry)
        if data is None:
            raise RuntimeError(f"token cache {entry} is unreadable right after writing it")
    data.stats = {**data.stats, "cache": str(entry), "fingerprint": corpus.fingerprint()}
    return data


def _check_tokens(tokens: np.ndarray, seq_len: int, what: str) -> None:
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if tokens.ndim != 1 or len(tokens) < seq_len + 1:
        raise ValueError(f"{what}: need a 1-D token array of at least seq_len + 1 = "
                         f"{seq_len + 1} tokens, got shape {tokens.shape} (the data is too "
                         f"short for this sequence length: use a smaller --seq-len or more "
                         f"text)")


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int):
    """(inputs, targets) LongTensors of the windows of ``seq_len + 1`` ids at ``starts``."""
    rows = np.asarray(tokens[starts[:, None] + np.arange(seq_len + 1)], dtype=np.int64)
    chunk = torch.from_numpy(rows)
    return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()


def get_batch(tokens: np.ndarray, index: int, batch_size: int, seq_len: int, seed: int,
              rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``index``: inputs (B, T) and targets (inputs shifted by one) at random windows.

    The window starts are a pure function of (seed, index, rank), so a resumed run
    gets the same batches and each rank its own draws; the global RNGs are untouched.
    """
    _check_tokens(tokens, seq_len, "get_batch")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if min(seed, index) < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    rng = np.random.default_rng([seed, index, rank])
    starts = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    return _windows(tokens, starts, seq_len)


def eval_batches(tokens: np.ndarray, n_batches: int, batch_size: int,
                 seq_len: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed list of held-out batches: evenly spaced, non-overlapping windows (no RNG).

    Fewer (or one smaller) batches when ``tokens`` is too short for all of them.
    """
    _check_tokens(tokens, seq_len, "eval_batches")
    if n_batches < 1 or batch_size < 1:
        raise ValueError(f"n_batches and batch_size must be >= 1, got {n_batches}, {batch_size}")
    window = seq_len + 1
    available = len(tokens) // window
    count = min(n_batches, available // batch_size) * batch_size or available
    if count < n_batches * batch_size:
        logger.warning("validation split has %d tokens: %d windows of %d instead of %d",
                       len(tokens), count, window, n_batches * batch_size)
    span = len(tokens) - window
    starts = (np.arange(count, dtype=np.int64) * span) // max(1, count - 1)
    size = min(batch_size, count)
    return [_windows(tokens, starts[i:i + size], seq_len) for i in range(0, count, size)]
