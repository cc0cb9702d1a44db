"""Suite settings are data (snsm_workbench/suites/*.json), loaded and checked with clear errors."""

import json
import shutil

import pytest

from snsm_workbench.bench.stage_plan import PLAN, load_plan
from snsm_workbench.bench.suite_files import SUITES_DIR, SuiteFileError, suite_names
from snsm_workbench.bench.suites import SUITES, load_suite


def test_every_suite_has_a_file_and_loads():
    assert set(suite_names()) == {"demo", "quick", "full", "finetune", "gpu", "standard"}
    assert set(SUITES) == set(suite_names()) - {"standard"}
    assert PLAN.stages[0] == "headline" and PLAN.settings.full_steps == 1000
    assert {level.base for level in PLAN.lean} <= {e.contender.label for e in PLAN.headline}
    assert PLAN.stages[-1] == "muon" and PLAN.settings.muon_labels[0] == "snsm_muon"
    assert SUITES["quick"].lr_from == {"adamw_snsm_plain_at_adamw_lr": "adamw_snsm",
                                       "adamw_snsm_all_matrices": "adamw_snsm"}


def _edited(tmp_path, name, edit):
    """A copy of the suites folder with ``name``.json changed by ``edit(data)``."""
    folder = tmp_path / "suites"
    shutil.copytree(SUITES_DIR, folder)
    path = folder / f"{name}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("steps"), r"quick.json: missing key\(s\) \['steps'\]"),
    (lambda d: d.update(stepz=3), r"quick.json: unknown key\(s\) \['stepz'\]"),
    (lambda d: d.update(tune="yes"), r"quick.json.tune: expected bool, got 'yes'"),
    (lambda d: d["contenders"][1].update(lr="x"), r"quick.json: contenders\[1\].lr: expected number"),
    (lambda d: d["contenders"][2].update(grid=[0.1, "a"]),
     r"quick.json: contenders\[2\].grid: expected numbers, got \['a'\]"),
    (lambda d: d["peers"].update(names=["nope"]), r"quick.json: peers.names: unknown peer"),
    (lambda d: d.update(lr_from={"adamw_snsm_all_matrices": "ghost"}), r"quick.json: .*lr_from"),
])
def test_a_bad_short_suite_file_names_the_file_and_key(tmp_path, edit, message):
    folder = _edited(tmp_path, "quick", edit)
    with pytest.raises(SuiteFileError, match=message):
        load_suite("quick", folder)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["settings"].update(seeds=2.5), r"standard.json: settings.seeds: expected int"),
    (lambda d: d["tuning"].pop("plain_step"), r"standard.json: tuning: missing key"),
    (lambda d: d["lean"][0].update(base="ghost"), r"standard.json: .*lean base"),
    (lambda d: d["search"][0].update(knob=3), r"standard.json: search\[0\].knob: expected str"),
    (lambda d: d["smoke"].update(peers=["nope"]), r"standard.json: smoke.peers: unknown peer"),
    (lambda d: d["muon"][3].update(base="muon_snsm_r32"),
     r"standard.json: muon: 'snsm_muon_8bit' .* not an earlier item"),
    (lambda d: d["smoke"].update(muon_labels=["muon_sm_r32_8bit"]),
     r"standard.json: muon_labels: .*levels without their base \['muon_sm_r32_8bit'\]"),
    (lambda d: d["settings"].update(muon_labels=["ghost"]),
     r"standard.json: muon_labels: unknown item\(s\) \['ghost'\]"),
])
def test_a_bad_standard_file_names_the_file_and_key(tmp_path, edit, message):
    folder = _edited(tmp_path, "standard", edit)
    with pytest.raises(SuiteFileError, match=message):
        load_plan(folder)


def test_the_muon_stage_is_ordered_resumable_and_apart_from_the_peer():
    """Issue 23: ours first (labelled apart from torch.optim.Muon, the peer ``muon``, so no
    cached run of one is read for the other), every entry on the hidden route in the peer's
    lr units, every lean level after its base."""
    from snsm_workbench.bench.stage_plan import Entry, LeanLevel, item_label

    labels = [item_label(i) for i in PLAN.muon]
    assert labels[:3] == ["snsm_muon", "muon_sn", "muon_sm_r32"] and "muon" not in labels
    running = list(PLAN.settings.muon_labels)  # a subset, in the items' (priority) order
    assert running == [label for label in labels if label in running]
    assert {"snsm_muon", "muon_sn", "muon_sm_r32", "muon_sm_r64", "muon_snsm_r32"} <= set(running)
    entries = [i for i in PLAN.muon if isinstance(i, Entry)]
    assert {e.contender.optimizer for e in entries} == {"muon", "muon_sn", "muon_sm",
                                                        "muon_snsm"}
    assert all(e.contender.route == "hidden" and e.two_group and len(e.grid) >= 5 and
               e.contender.optimizer_args["shape_scale"] == "match_rms_adamw" for e in entries)
    assert sorted(e.contender.optimizer_args.get("rank") for e in entries
                  if e.contender.optimizer == "muon_sm") == [32, 64]
    for item in PLAN.muon:
        if isinstance(item, LeanLevel):
            assert labels.index(item.base) < labels.index(item.label)
            assert item.tune_plain == ("aux" in item.optimizer_args
                                       and item.optimizer_args["aux"] == "sn_8bit")


def test_a_missing_or_broken_file_is_one_clear_error(tmp_path):
    with pytest.raises(SuiteFileError, match="no suite file .*nightly.json"):
        load_suite("nightly", SUITES_DIR)
    (tmp_path / "quick.json").write_text("{")
    with pytest.raises(SuiteFileError, match="quick.json: not valid JSON"):
        load_suite("quick", tmp_path)
