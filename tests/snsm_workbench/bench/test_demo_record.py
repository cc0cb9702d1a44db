"""The demo's digest of the standard record: package data equal to the one built from the
committed record, built from the keys the demo uses alone, rewritten by ``snsm docs``."""

import copy
import json
import shutil

from snsm_workbench.bench import demo_record
from snsm_workbench.cli import main
from snsm_workbench.util.paths import repository_root

ROOT = repository_root("the tests of the demo's digest")
RESULTS = ROOT / demo_record.STANDARD_RECORD / "results.json"


def test_the_committed_digest_is_built_from_the_committed_record():
    built = demo_record.build_digest(json.loads(RESULTS.read_text()))
    assert demo_record.load_record() == built
    assert (ROOT / demo_record.DIGEST).read_text() == demo_record.digest_text(built)
    assert demo_record.stale_digest(ROOT, write=False) == []
    assert built["record"] == "benchmarks/records/2026-11-29-standard"


def test_the_digest_holds_what_the_demo_reads_and_agrees_with_the_record():
    results = json.loads(RESULTS.read_text())
    digest = demo_record.load_record()
    assert demo_record.record_lrs(digest) == demo_record.record_lrs(results)
    for label in demo_record.RECORD_RUNS:
        assert demo_record.record_curve(digest, label) == demo_record.record_curve(results, label)
    assert demo_record.spread_sentence(digest, 200) == demo_record.spread_sentence(results, 200)
    assert demo_record.muon_sentence(digest) == demo_record.muon_sentence(results)
    assert demo_record.record_sentence(digest) == \
        demo_record.record_sentence(results, demo_record.STANDARD_RECORD)


def test_the_digest_depends_on_the_keys_the_demo_uses_alone():
    results = json.loads(RESULTS.read_text())
    digest = demo_record.build_digest(results)
    grown = copy.deepcopy(results)  # a later muon stage, new state labels, other peers' runs
    grown["muon"] = {"snsm_muon": {"lr": 0.01, "runs": []}}
    grown["stages"].append("muon")
    grown["state"]["snsm_muon"] = 123
    grown["peers"]["galore"]["runs"] = []
    grown["headline"]["adamw"]["grid"] = {}
    grown["headline"]["adamw"]["runs"][0]["wall_s"] = -1.0
    grown["settings"]["eval_every"] = 7
    assert demo_record.build_digest(grown) == digest
    grown["peers"]["muon"]["lr"] = 0.5  # a key the demo reads
    assert demo_record.build_digest(grown)["peers"]["muon"]["lr"] == 0.5


def test_another_records_digest_is_built_from_its_results(tmp_path):
    folder = tmp_path / "record"
    folder.mkdir()
    shutil.copy(RESULTS, folder / "results.json")
    digest = demo_record.load_record(folder)
    assert digest["record"] == folder.as_posix()
    assert f"({folder / 'report.md'}: 1000 steps" in demo_record.record_sentence(digest)
    assert {k: v for k, v in digest.items() if k != "record"} == \
        {k: v for k, v in demo_record.load_record().items() if k != "record"}


def test_snsm_docs_check_reports_a_stale_digest_then_docs_rewrites_it(tmp_path, capsys):
    record = tmp_path / demo_record.STANDARD_RECORD
    record.mkdir(parents=True)
    shutil.copy(RESULTS, record / "results.json")
    digest = tmp_path / demo_record.DIGEST
    digest.parent.mkdir(parents=True)
    digest.write_text("{}\n")
    assert main(["docs", "--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"stale: {digest}"]
    assert digest.read_text() == "{}\n"  # --check rewrites nothing
    assert main(["docs", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"rewrote: {digest}"]
    assert digest.read_text() == (ROOT / demo_record.DIGEST).read_text()
    assert main(["docs", "--check", "--root", str(tmp_path)]) == 0
