"""Tokenizer, token cache, and deterministic batches."""

import json
import logging
import time

import numpy as np
import pytest
import torch

from snsm_workbench.train import tokens
from snsm_workbench.train.corpora import Corpus, shakespeare
from snsm_workbench.train.tokens import EOT, eval_batches, get_batch, prepare_tokens, train_tokenizer

WORDS = ("thou art the king of night and day whose crown is made of stars and rain "
         "my lord the queen hath sent for thee to speak of love and war").split()


def _doc(d, words=400):
    return " ".join(WORDS[(i * 7 + d * 3) % len(WORDS)] for i in range(words)) + "\n"


@pytest.fixture
def corpus():
    return Corpus("tiny", [_doc(d) for d in range(4)], [_doc(9, 300)], {"chars": 0})


def test_train_tokenizer_round_trips_bytes(corpus):
    tok = train_tokenizer(corpus.train, vocab_size=300)
    assert tok.get_vocab_size() <= 300 and tok.token_to_id(EOT) is not None
    text = "Thou art — naïve 東京 \t\n  ✓\r\n"
    assert tok.decode(tok.encode(text).ids) == text
    assert len(tok.encode(corpus.train[0]).ids) < len(corpus.train[0]) / 2  # merges learned


def test_train_tokenizer_rejects_bad_input():
    with pytest.raises(ValueError, match="vocab_size must be >= 257.*got 100"):
        train_tokenizer(["text"], vocab_size=100)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer([" ", ""], vocab_size=300)


def test_prepare_tokens_writes_a_memmapped_entry(tmp_path, corpus):
    data = prepare_tokens(corpus, tmp_path, vocab_size=300)
    key = tokens.cache_key(corpus, 300)
    assert data.cache_dir == tmp_path / f"tiny-{key[:16]}"
    assert sorted(p.name for p in data.cache_dir.iterdir()) == [
        "manifest.json", "tokenizer.json", "train.bin", "val.bin"]
    assert isinstance(data.train, np.memmap) and data.train.dtype == np.uint16
    assert data.vocab_size <= 300 and data.eot_id == data.tokenizer().token_to_id(EOT)
    assert np.count_nonzero(data.train == data.eot_id) == len(corpus.train) - 1
    assert np.count_nonzero(data.val == data.eot_id) == 0
    tok = data.tokenizer()
    start = tok.decode(data.train[:40].tolist())
    assert len(start) > 40 and corpus.train[0].startswith(start)
    first_eot = int(np.flatnonzero(data.train == data.eot_id)[0])
    assert tok.decode(data.train[:first_eot].tolist()) == corpus.train[0]
    assert tok.decode(data.val.tolist()) == corpus.val[0]
    assert data.stats["train_tokens"] == len(data.train)
    assert data.stats["val_tokens"] == len(data.val)
    manifest = json.loads((data.cache_dir / "manifest.json").read_text())
    assert manifest["key"] == key and manifest["fingerprint"] == corpus.fingerprint()


def test_cache_is_reused_without_retraining(tmp_path, corpus, monkeypatch, caplog):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    mtime = (first.cache_dir / "train.bin").stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("the tokenizer was retrained")

    monkeypatch.setattr(tokens, "train_tokenizer", boom)
    with caplog.at_level(logging.INFO, logger="snsm_workbench.train.tokens"):
        second = prepare_tokens(corpus, tmp_path, vocab_size=300)
    assert "reusing token cache" in caplog.text
    assert second.cache_dir == first.cache_dir
    assert (second.cache_dir / "train.bin").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(second.train, first.train)
    np.testing.assert_array_equal(second.val, first.val)


def test_changed_inputs_build_a_new_entry(tmp_path, corpus):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    changed = Corpus("tiny", corpus.train[:-1] + [corpus.train[-1] + "and more"], corpus.val)
    assert prepare_tokens(changed, tmp_path, vocab_size=300).cache_dir != first.cache_dir
    assert prepare_tokens(corpus, tmp_path, vocab_size=290).cache_dir != first.cache_dir
    assert len(list(tmp_path.iterdir())) == 3


def test_incomplete_entry_is_rebuilt(tmp_path, corpus):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    expected = np.array(first.train)
    (first.cache_dir / "manifest.json").unlink()  # as if killed before the manifest
    (first.cache_dir / "train.bin").write_bytes(b"\x00\x01")
    again = prepare_tokens(corpus, tmp_path, vocab_size=300)
    np.testing.assert_array_equal(again.train, expected)


def test_truncated_bin_file_is_rebuilt(tmp_path, corpus):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    expected = np.array(first.val)
    (first.cache_dir / "val.bin").write_bytes(b"\x00\x01")
    np.testing.assert_array_equal(prepare_tokens(corpus, tmp_path, vocab_size=300).val, expected)


@pytest.mark.parametrize("name", ["train.bin", "val.bin", "tokenizer.json"])
def test_a_damaged_file_of_the_right_size_is_caught_by_its_checksum(tmp_path, corpus, caplog,
                                                                     name):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    expected = np.array(first.train)
    path = first.cache_dir / name
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one byte flipped: the size is unchanged
    path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING):
        again = prepare_tokens(corpus, tmp_path, vocab_size=300)
    np.testing.assert_array_equal(again.train, expected)
    assert path.read_bytes() != bytes(damaged)  # rebuilt
    assert f"{name} does not match its checksum in manifest.json; rebuilding" in caplog.text


def test_an_entry_without_checksums_is_rebuilt_with_them(tmp_path, corpus):
    first = prepare_tokens(corpus, tmp_path, vocab_size=300)
    manifest_path = first.cache_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["checksums"]  # as an older snsm wrote it
    manifest_path.write_text(json.dumps(manifest))
    prepare_tokens(corpus, tmp_path, vocab_size=300)
    assert set(json.loads(manifest_path.read_text())["checksums"]) == {
        "train.bin", "val.bin", "tokenizer.json"}


def test_large_vocabularies_use_uint32():
    assert tokens._dtype(65535) == np.uint16 and tokens._dtype(65536) == np.uint32


def test_get_batch_is_a_pure_function_of_seed_index_rank():
    data = np.arange(1000, dtype=np.uint16)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    x, y = get_batch(data, 3, batch_size=4, seq_len=16, seed=7)
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y[:, -1], x[:, -1] + 1)
    again = get_batch(data, 3, batch_size=4, seq_len=16, seed=7)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    assert not torch.equal(get_batch(data, 4, 4, 16, seed=7)[0], x)
    assert not torch.equal(get_batch(data, 3, 4, 16, seed=8)[0], x)
    assert not torch.equal(get_batch(data, 3, 4, 16, seed=7, rank=1, world_size=2)[0], x)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_get_batch_covers_the_whole_array():
    data = np.arange(40, dtype=np.uint16)
    starts = {int(get_batch(data, i, 8, 8, seed=0)[0][b, 0]) for i in range(50) for b in range(8)}
    assert starts == set(range(40 - 8))  # every start 0..len-seq_len-1, none past the end


def test_get_batch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"at least seq_len \+ 1 = 17 tokens, got shape \(16,\)"):
        get_batch(np.arange(16), 0, 2, 16, seed=0)
    with pytest.raises(ValueError, match="rank must be in"):
        get_batch(np.arange(100), 0, 2, 16, seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        get_batch(np.arange(100), 0, 0, 16, seed=0)


def test_eval_batches_are_fixed_and_non_overlapping():
    data = np.arange(10_000, dtype=np.uint16)
    torch_state = torch.get_rng_state()
    batches = eval_batches(data, n_batches=3, batch_size=4, seq_len=31)
    assert len(batches) == 3 and all(x.shape == (4, 31) for x, _ in batches)
    again = eval_batches(data, 3, 4, 31)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    starts = sorted(int(s) for x, _ in batches for s in x[:, 0])
    assert starts[0] == 0 and starts[-1] == 10_000 - 32  # spread over the whole split
    assert all(b - a >= 32 for a, b in zip(starts, starts[1:]))  # windows of 32 do not overlap
    for x, y in batches:
        assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y[:, -1], x[:, -1] + 1)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_eval_batches_shrink_on_a_short_split():
    assert len(eval_batches(np.arange(300), n_batches=8, batch_size=4, seq_len=31)) == 2
    (x, y), = eval_batches(np.arange(100), n_batches=8, batch_size=4, seq_len=31)
    assert x.shape == (3, 31)
    with pytest.raises(ValueError, match="at least seq_len"):
        eval_batches(np.arange(20), 1, 1, 31)


def test_real_shakespeare_tokens(tmp_path):
    corpus = shakespeare()
    start = time.perf_counter()
    data = prepare_tokens(corpus, tmp_path, vocab_size=8192)
    built = time.perf_counter() - start
    start = time.perf_counter()
    again = prepare_tokens(corpus, tmp_path, vocab_size=8192)
    assert time.perf_counter() - start < min(1.0, built / 5)
    assert again.cache_dir == data.cache_dir and data.vocab_size == 8192
    assert 1_000_000 < len(data.train) < 2_000_000 and 100_000 < len(data.val) < 300_000
    assert np.count_nonzero(data.val == data.eot_id) == len(corpus.val) - 1
    eot = int(np.flatnonzero(data.val == data.eot_id)[0])
    assert data.tokenizer().decode(data.val[:eot].tolist()) == corpus.val[0]


def test_a_long_data_name_gives_a_bounded_cache_folder(tmp_path, corpus):
    """A 240-character file name made the entry's folder name exceed 255 bytes (ENAMETOOLONG)."""
    from snsm_workbench.train.corpora import local_files

    path = tmp_path / ("w" * 240 + ".txt")
    path.write_text("".join(corpus.train))
    long = local_files(path)
    assert len(long.name) > 240
    data = prepare_tokens(long, tmp_path / "cache", vocab_size=300)
    name = data.cache_dir.name
    assert len(name) <= tokens.MAX_NAME_CHARS + 17 and name.startswith("local-www")
    assert name.endswith(tokens.cache_key(long, 300)[:16])
    assert prepare_tokens(long, tmp_path / "cache", vocab_size=300).cache_dir == data.cache_dir
    assert data.stats["fingerprint"] == long.fingerprint()
