"""Exporting a ``snsm train`` run as a Hugging Face model folder (``save_pretrained``)."""

import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")

from snsm_workbench.train import checkpoint as ckpt  # noqa: E402
from snsm_workbench.train.config import TrainConfig  # noqa: E402
from snsm_workbench.train.corpora import write_smoke_corpus  # noqa: E402
from snsm_workbench.train.export import export_run  # noqa: E402
from snsm_workbench.train.loop import train  # noqa: E402
from snsm_workbench.train.models import build_model  # noqa: E402
from snsm_workbench.train.tokens import EOT  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step tiny run (seq 32, vocab 300) on the small corpus."""
    root = tmp_path_factory.mktemp("export")
    config = TrainConfig(preset="tiny", optimizer="adamw_snsm", steps=2, batch_size=2,
                         seq_len=32, vocab_size=300, eval_every=2, eval_batches=1,
                         data=str(write_smoke_corpus(root / "corpus")),
                         cache_dir=str(root / "cache"), out=str(root / "run"), quiet=True,
                         optimizer_args={"rank": 8, "update_gap": 5})
    return train(config)


def checkpoint_model(run_dir):
    """The run's model as the harness builds it, with its checkpoint's weights."""
    state = ckpt.load_checkpoint(run_dir)["model"]
    model = build_model("tiny", state["model.embed_tokens.weight"].shape[0], 32)
    model.load_state_dict(state)
    return model


def tokens(vocab):
    return torch.randint(0, vocab, (2, 16), generator=torch.Generator().manual_seed(0))


def test_the_export_loads_with_from_pretrained_and_gives_the_checkpoints_logits(run_dir,
                                                                              tmp_path):
    out = tmp_path / "hf"
    out.mkdir()  # an empty folder may be the target
    assert export_run(run_dir, out) == {"out": str(out), "step": 2, "tokenizer": True}
    exported = transformers.LlamaForCausalLM.from_pretrained(out)
    original = checkpoint_model(run_dir)
    assert not any(p.is_meta for p in exported.parameters())
    inputs = tokens(original.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(exported(inputs).logits, original(inputs).logits)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    text = "To be, or not to be"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.eos_token == EOT == tokenizer.convert_ids_to_tokens(
        exported.config.eos_token_id)
    assert len(tokenizer) == exported.config.vocab_size


def test_the_export_refuses_a_folder_that_is_not_empty_or_a_file(run_dir, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"cannot export to .*full: the folder is not empty"):
        export_run(run_dir, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cannot export to .*file: it is a file"):
        export_run(run_dir, tmp_path / "file")
    with pytest.raises(ValueError, match=r"cannot export .*nowhere: no such folder"):
        export_run(tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_run_whose_token_cache_is_gone_exports_the_model_alone(run_dir, tmp_path, caplog):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    record = (copy / "config.json").read_text()
    (copy / "config.json").write_text(record.replace('"cache": "', '"cache": "/gone'))
    assert export_run(copy, tmp_path / "hf")["tokenizer"] is False
    assert "without a tokenizer" in caplog.text
    assert not (tmp_path / "hf" / "tokenizer.json").exists()
    assert transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf").config.vocab_size > 0


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled")
def test_a_parallel_runs_dcp_checkpoint_exports_its_model(run_dir, tmp_path):
    """A checkpoint.pt naming a DCP folder (written here in one process), as a parallel
    run leaves it."""
    import torch.distributed.checkpoint as dcp

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    payload = ckpt.load_checkpoint(copy)
    del payload["format"]
    model_state = payload.pop("model")
    dcp.save({"model": model_state}, checkpoint_id=str(copy / "dcp-step00000002"))
    ckpt.save_checkpoint(copy, {**payload, "dcp": "dcp-step00000002", "world_size": 2})
    export_run(copy, tmp_path / "hf")
    exported = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf")
    inputs = tokens(exported.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(exported(inputs).logits, checkpoint_model(run_dir)(inputs).logits)
