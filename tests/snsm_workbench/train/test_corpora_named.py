"""Named corpora: ``--data kjv`` / ``--data python-stdlib`` without a path."""

import pytest

from snsm_workbench.train.config import TrainConfig, check_paths
from snsm_workbench.train.corpora import NAMED_CORPORA, load_corpus


def test_python_stdlib_is_source_code_split_by_module():
    corpus = load_corpus("python-stdlib")
    assert corpus.name == "python-stdlib" and corpus.stats["python"]
    assert corpus.stats["val_documents"] == corpus.stats["documents"] // 10
    assert any("def " in doc for doc in corpus.val)


@pytest.mark.parametrize("name", sorted(NAMED_CORPORA))
def test_a_corpus_name_passes_the_path_checks(name, tmp_path):
    check_paths(TrainConfig(data=name, cache_dir=str(tmp_path), out=str(tmp_path / "run")))


def test_a_path_that_exists_wins_over_a_corpus_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kjv").mkdir()
    (tmp_path / "kjv" / "a.txt").write_text("one\ntwo\n" * 50)
    (tmp_path / "kjv" / "b.txt").write_text("three\nfour\n" * 50)
    assert load_corpus("kjv").name == "local-kjv"
