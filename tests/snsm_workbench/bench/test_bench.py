import json
import math

import pytest
import torch

from snsm_workbench.bench import peers
from snsm_workbench.bench.contenders import Contender, ContenderFactory, resolve_plain_lr
from snsm.optim.routing import param_groups
from snsm_workbench.bench.run_one import RunResult
from snsm_workbench.bench.suites import SUITES, get_suite, select
from snsm_workbench.bench.summary import summarize
from snsm_workbench.cli import main
from snsm_workbench.train.config import TrainConfig

from bench_helpers import take_steps, write_corpus


def _run(label, curve, state=100, step_time=0.1, opt_times=(0.01,) * 6, seed=0):
    records = [{"step": s, "val_loss": v} for s, v in curve]
    records += [{"step": s, "loss": 1.0, "step_time": step_time} for s in range(1, 7)]
    return RunResult(label, 1e-3, seed, records, state, list(opt_times))


def test_summary_steps_to_adamw_final_and_ratios():
    runs = {"adamw": [_run("adamw", [(0, 9.0), (10, 6.0), (20, 5.0), (30, 4.0)], state=200,
                           seed=s) for s in (0, 1)],
            "adamw_snsm": [_run("adamw_snsm", [(0, 9.0), (10, 4.5), (20, 3.9), (30, 3.5)],
                                step_time=0.13, opt_times=(0.02,) * 6),
                           _run("adamw_snsm", [(0, 9.0), (10, 3.5), (20, 3.7), (30, 3.3)],
                                step_time=0.13, opt_times=(0.02,) * 6, seed=1)],
            "lion": [_run("lion", [(0, 9.0), (10, 8.0), (20, 7.0), (30, math.nan)])]}
    rows, curves = summarize(runs, {"adamw": 3e-3, "adamw_snsm": 3e-2, "lion": 3e-4})
    by = {r["optimizer"]: r for r in rows}
    assert by["adamw"]["steps_to_adamw_final"] == 30 and by["adamw"]["steps_ratio_vs_adamw"] == 1
    # the mean curve of adamw_snsm (9, 4.0, 3.8, 3.4) first reaches 4.0 at step 10
    assert by["adamw_snsm"]["steps_to_adamw_final"] == 10
    assert by["adamw_snsm"]["steps_ratio_vs_adamw"] == pytest.approx(0.333)
    assert by["adamw_snsm"]["final_val_loss"] == pytest.approx(3.4)
    assert by["adamw_snsm"]["final_val_loss_std"] == pytest.approx(0.1414, abs=1e-4)
    assert by["adamw_snsm"]["final_val_ppl"] == pytest.approx(math.exp(3.4), abs=0.01)
    assert by["adamw_snsm"]["state_pct_of_adamw"] == 50.0
    assert by["adamw_snsm"]["step_time_ratio_vs_adamw"] == pytest.approx(1.3)
    assert by["adamw_snsm"]["opt_step_ratio_vs_adamw"] == pytest.approx(2.0)
    assert by["lion"]["final_val_loss"] is None and by["lion"]["steps_to_adamw_final"] is None
    assert curves["adamw_snsm"]["val_loss"] == pytest.approx([9.0, 4.0, 3.8, 3.4])
    with pytest.raises(ValueError, match="baseline 'adamw'"):
        summarize({"lion": runs["lion"]}, {"lion": 3e-4})


def test_routes_and_the_plain_group_at_adamw_lr(tiny_lm):
    embedding = tiny_lm.model.embed_tokens.weight
    linear, every = param_groups(tiny_lm, route="linear"), param_groups(tiny_lm, route="all-matrices")
    assert id(embedding) in {id(p) for p in linear[1]["params"]}
    assert id(embedding) in {id(p) for p in every[0]["params"]}
    assert all(p.dim() == 1 for p in every[1]["params"])
    with pytest.raises(ValueError, match="route must be one of"):
        param_groups(tiny_lm, route="embeddings")
    ablation = Contender("x", "adamw_snsm", False, 3e-2, (), {"rank": 4}, plain_lr="adamw")
    plain_lr = resolve_plain_lr(ablation, 2e-3)
    factory = ContenderFactory(ablation, 3e-2, plain_lr)
    optimizer = factory(tiny_lm, TrainConfig())
    lrs = {g.get("use_snsm", True): g["lr"] for g in optimizer.param_groups}
    assert lrs == {True: 3e-2, False: 2e-3}
    take_steps(tiny_lm, optimizer, 3)
    assert len(factory.timer.times) == 3 and all(t > 0 for t in factory.timer.times)
    with pytest.raises(ValueError, match="needs an adamw contender"):
        resolve_plain_lr(ablation, None)


def test_suites_hold_what_the_issue_asks():
    quick = get_suite("quick")
    labels = {c.label for c in quick.contenders}
    assert {"adamw", "adamw_sn", "adamw_snsm", "adamw_snsm_plain_at_adamw_lr",
            "adamw_snsm_all_matrices"} <= labels and set(peers.peer_names()) <= labels
    assert quick.tune and quick.seeds == 3
    grids = {c.label: c.grid for c in quick.contenders}
    # AdamW's grid: >= 5 points within a factor of 10, at least as fine as ours
    assert len(grids["adamw"]) >= 5 and max(grids["adamw"]) / min(grids["adamw"]) <= 10
    assert len(grids["adamw"]) >= len(grids["adamw_snsm"])
    assert {c.label for c in SUITES["demo"].contenders} == {"adamw", "adamw_snsm",
                                                        "adamw_snsm_lean", "muon"}
    assert {c.label for c in select(quick, ["lion"]).contenders} == {"adamw", "lion"}
    with pytest.raises(ValueError, match="no contender"):
        select(quick, ["adamw_xl"])


@pytest.fixture(autouse=True)
def _restore_threads():
    """The CLI's --threads sets torch's process-wide thread count: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _small_args(tmp_path, corpus):
    # one thread: the CI machine's two cores are shared, and spinning OpenMP threads stall
    return ["--steps", "10", "--threads", "1", "--data", str(corpus), "--seq-len", "32", "--batch-size", "4",
            "--vocab-size", "300", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "record"), "--work", str(tmp_path / "work")]


def test_bench_demo_end_to_end(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    assert main(["bench", "--suite", "demo", *_small_args(tmp_path, corpus)]) == 0
    record = tmp_path / "record"
    results = json.loads((record / "results.json").read_text())
    rows = {r["optimizer"]: r for r in results["rows"]}
    assert set(rows) == {"adamw", "adamw_snsm", "adamw_snsm_lean", "muon"}
    assert rows["adamw"]["steps_ratio_vs_adamw"] == 1.0
    for r in rows.values():
        assert r["seeds"] == 1 and math.isfinite(r["final_val_loss"]) and r["state_bytes"] > 0
        assert r["timing"] == "interleaved" and r["median_opt_step_ms"] > 0
    assert rows["adamw_snsm"]["state_bytes"] < rows["adamw"]["state_bytes"]
    for name in ("report.md", "val_loss.png", "pareto.png", "config.json", "environment.json"):
        assert (record / name).is_file(), name
    env = json.loads((record / "environment.json").read_text())
    assert env["versions"]["torch"] == torch.__version__.split("+")[0] or env["versions"]["torch"]
    assert "| adamw_snsm |" in capsys.readouterr().out
    # a second bench on the same folders reuses the finished runs
    assert main(["bench", "--suite", "demo", *_small_args(tmp_path, corpus)]) == 0
    again = json.loads((record / "results.json").read_text())
    kept = ("final_val_loss", "steps_to_adamw_final", "state_bytes", "run_median_step_s")
    assert [{k: r[k] for k in kept} for r in again["rows"]] == \
        [{k: r[k] for k in kept} for r in results["rows"]]


def test_unavailable_peer_is_skipped_with_a_line_in_the_report(tmp_path, monkeypatch):
    def missing(model, lr, weight_decay, hp):
        raise peers.PeerUnavailable("lion_pytorch is not installed (pip install lion-pytorch)")

    monkeypatch.setitem(peers.PEERS, "lion", peers.PEERS["lion"].__class__(
        **{**peers.PEERS["lion"].__dict__, "build": missing}))
    corpus = write_corpus(tmp_path / "corpus")
    args = _small_args(tmp_path, corpus)
    args[args.index("--steps") + 1] = "4"
    # --workers 0: in this process, where the monkeypatched peer is
    assert main(["bench", "--suite", "quick", "--optimizers", "lion,adamw_snsm_all_matrices",
                 "--no-tune", "--workers", "0", *args]) == 0
    results = json.loads((tmp_path / "record" / "results.json").read_text())
    assert [s["optimizer"] for s in results["skipped"]] == ["lion"]
    assert {r["optimizer"] for r in results["rows"]} == {"adamw", "adamw_snsm_all_matrices"}
    report = (tmp_path / "record" / "report.md").read_text()
    assert "- lion: lion_pytorch is not installed" in report


def test_trainer_hooks_take_data_initial_weights_and_an_optimizer_factory(tmp_path):
    from snsm_workbench.train.corpora import local_files
    from snsm_workbench.train.loop import Trainer
    from snsm_workbench.train.models import build_model
    from snsm_workbench.train.tokens import prepare_tokens

    data = prepare_tokens(local_files(write_corpus(tmp_path / "corpus")), tmp_path / "cache", 300)
    start = build_model("tiny", data.vocab_size, 32, seed=7).state_dict()
    factory = ContenderFactory(Contender("lion", "lion", True, 1e-4, ()), 1e-4, None)
    config = TrainConfig(preset="tiny", steps=2, batch_size=2, seq_len=32, eval_every=2,
                         eval_batches=1, save_every=2, out=str(tmp_path / "run"), quiet=True,
                         data="/nonexistent/never/read")
    trainer = Trainer(config, optimizer_factory=factory, data=data, initial_state=start)
    assert trainer.optimizer is factory.optimizer
    assert all(torch.equal(p, start[n]) for n, p in trainer.model.state_dict().items())
    trainer.run()
    assert len(factory.timer.times) == 2
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["optimizer_factory"] == "lion"


def test_finetune_continues_every_contender_from_one_pretrained_model(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    args = _small_args(tmp_path, corpus)
    args[args.index("--steps") + 1] = "3"
    assert main(["bench", "--suite", "finetune", "--optimizers", "adamw_sn", "--pretrain-steps",
                 "4", "--timing-rounds", "2", *args]) == 0
    results = json.loads((tmp_path / "record" / "results.json").read_text())
    assert results["config"]["data_name"].startswith("kjv")
    assert (tmp_path / "work" / "pretrain" / "checkpoint.pt").is_file()
    first = {label: curve["val_loss"][0] for label, curve in results["curves"].items()}
    assert set(first) == {"adamw", "adamw_sn"} and first["adamw"] == first["adamw_sn"]
