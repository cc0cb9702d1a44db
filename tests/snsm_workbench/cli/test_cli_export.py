"""``snsm export RUN OUT`` after ``snsm train --steps 2``."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from snsm_workbench.cli import build_parser, main  # noqa: E402
from snsm_workbench.train import checkpoint as ckpt  # noqa: E402
from snsm_workbench.train.corpora import write_smoke_corpus  # noqa: E402


def test_snsm_export_writes_a_folder_from_pretrained_loads(tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "hf"
    assert main(["train", "--preset", "tiny", "--steps", "2", "--batch-size", "2",
                 "--seq-len", "32", "--vocab-size", "300", "--eval-every", "2",
                 "--eval-batches", "1", "--data", str(write_smoke_corpus(tmp_path / "corpus")),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), str(out)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"exported step 2 of {run} to {out}: model, config and tokenizer")
    model = transformers.LlamaForCausalLM.from_pretrained(out)
    state = ckpt.load_checkpoint(run)["model"]
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    assert transformers.AutoTokenizer.from_pretrained(out).eos_token == "<|endoftext|>"

    assert main(["export", str(run), str(out)]) == 2  # refuses to overwrite
    assert "the folder is not empty" in capsys.readouterr().err


def test_every_export_flag_has_help():
    parser = build_parser(["export"])._subparsers._group_actions[0].choices["export"]
    assert [action.dest for action in parser._actions if not action.help] == []
    assert "``" not in parser.format_help()
