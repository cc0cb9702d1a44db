"""``snsm demo``: three harness runs summarized by the bench's summary and table."""

import json
import math

from bench_helpers import write_corpus
from snsm_workbench.bench.demo import run_demo
from snsm_workbench.train.config import TrainConfig


def test_demo_trains_three_optimizers_and_reuses_finished_runs(tmp_path):
    base = TrainConfig(preset="tiny", steps=6, batch_size=4, seq_len=32, vocab_size=300,
                       eval_every=3, eval_batches=2, save_every=3, quiet=True,
                       data=str(write_corpus(tmp_path / "corpus")),
                       cache_dir=str(tmp_path / "cache"), optimizer_args={"rank": 8})
    rows = run_demo(tmp_path / "demo", base)
    by = {row["optimizer"]: row for row in rows}
    assert list(by) == ["adamw", "adamw_sn", "adamw_snsm"]
    assert by["adamw"]["steps_ratio_vs_adamw"] == 1.0 and by["adamw"]["lr"] == 3e-3
    assert by["adamw_snsm"]["state_bytes"] < by["adamw_sn"]["state_bytes"] < \
        by["adamw"]["state_bytes"]
    for row in rows:
        assert math.isfinite(row["final_val_loss"]) and row["median_opt_step_ms"] > 0
    for name in ("table.md", "demo.png", "results.json"):
        assert (tmp_path / "demo" / name).is_file()
    assert "| adamw_snsm | 0.03 |" in (tmp_path / "demo" / "table.md").read_text()
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())["rows"]
    again = run_demo(tmp_path / "demo", base)  # finished runs are reused, not retrained
    assert [r["final_val_loss"] for r in again] == [r["final_val_loss"] for r in saved]
