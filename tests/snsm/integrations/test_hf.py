"""transformers.Trainer with an snsm optimizer: routing, checkpoint, exact resume, gradient
accumulation."""

import re

import pytest
import torch

pytest.importorskip("accelerate")
transformers = pytest.importorskip("transformers")

from snsm.integrations.hf import optimizer_cls_and_kwargs  # noqa: E402

STEPS, SAVE_AT, BATCH = 6, 3, 4


class RandomTokens(torch.utils.data.Dataset):
    """Causal-LM examples of random tokens, drawn once from a private generator."""

    def __init__(self, count, seq_len=16, vocab=64, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, vocab, (count, seq_len), generator=generator)

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, i):
        return {"input_ids": self.tokens[i], "labels": self.tokens[i]}


def tiny_llama(initial_state=None):
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    model = transformers.LlamaForCausalLM(config)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    return model


def make_trainer(model, out_dir, projector, accumulation=1):
    args = transformers.TrainingArguments(
        output_dir=str(out_dir), max_steps=STEPS, per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=accumulation,
        save_strategy="steps", save_steps=SAVE_AT, logging_steps=1, report_to="none",
        use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True)
    hf_optimizer = optimizer_cls_and_kwargs(
        model, "adamw_snsm", lr=2e-2, weight_decay=0.01, rank=4, projector=projector,
        update_gap=2, on_refresh="project", plain={"lr": 2e-3, "weight_decay": 0.0})
    data = RandomTokens(count=STEPS * BATCH * accumulation)
    return transformers.Trainer(model=model, args=args, train_dataset=data,
                                optimizer_cls_and_kwargs=hf_optimizer)


def inner(optimizer):
    """The snsm optimizer under accelerate's wrapper."""
    return getattr(optimizer, "optimizer", optimizer)


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for pid in a:
        assert a[pid].keys() == b[pid].keys()
        for key in a[pid]:
            assert a[pid][key].dtype == b[pid][key].dtype, key
            assert torch.equal(a[pid][key], b[pid][key]), (pid, key)


@pytest.mark.parametrize("projector, accumulation", [("uniform", 1), ("svd", 1), ("svd", 2)])
def test_trainer_resume_equals_uninterrupted_run(tmp_path, projector, accumulation):
    model = tiny_llama()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    full = make_trainer(model, tmp_path / "full", projector, accumulation)
    full.train()
    # every example seen once: STEPS updates of BATCH * accumulation examples each
    assert full.state.global_step == STEPS and full.state.epoch == pytest.approx(1.0)
    optimizer = inner(full.optimizer)
    linear = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    snsm_group, plain_group = optimizer.param_groups
    assert snsm_group["use_snsm"] and not plain_group["use_snsm"]
    assert {id(p) for p in snsm_group["params"]} == linear  # lm_head untied: routed too
    assert plain_group["weight_decay"] == 0.0 and snsm_group["weight_decay"] == 0.01
    assert int(optimizer.state[snsm_group["params"][0]]["step"]) == STEPS

    checkpoint = tmp_path / "full" / f"checkpoint-{SAVE_AT}"
    assert (checkpoint / "optimizer.pt").is_file()
    resumed_model = tiny_llama(initial)
    resumed = make_trainer(resumed_model, tmp_path / "resumed", projector, accumulation)
    resumed.train(resume_from_checkpoint=str(checkpoint))

    assert resumed.state.global_step == STEPS
    for (name, p), q in zip(model.named_parameters(), resumed_model.parameters()):
        assert torch.equal(p, q), name
    assert not torch.equal(model.lm_head.weight, initial["lm_head.weight"])
    assert_states_equal(optimizer.state_dict()["state"],
                        inner(resumed.optimizer).state_dict()["state"])


def test_invalid_hyperparameters_raise_at_the_helper():
    model = tiny_llama()
    with pytest.raises(ValueError, match="projector"):
        optimizer_cls_and_kwargs(model, "adamw_snsm", projector="nope")
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizer_cls_and_kwargs(model, "adam_nope")
    with pytest.raises(TypeError):
        optimizer_cls_and_kwargs(model, "adamw", rank=4)
    with pytest.raises(TypeError, match=r"takes an nn\.Module.*got a generator"):
        optimizer_cls_and_kwargs(model.parameters(), "adamw_snsm")


def groups_of(hf_optimizer):
    """The param groups the Trainer's optimizer gets from the helper's tuple."""
    cls, kwargs = hf_optimizer
    kwargs = dict(kwargs)
    return cls(kwargs.pop("params"), **kwargs).param_groups


def test_training_arguments_give_lr_and_decay_and_the_plain_group_gets_no_decay(tmp_path):
    model = tiny_llama()
    args = transformers.TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3,
                                          weight_decay=0.05, report_to="none", use_cpu=True)
    matrices, rest = groups_of(optimizer_cls_and_kwargs(model, "adamw_snsm", args=args, rank=4))
    assert (matrices["lr"], matrices["weight_decay"]) == (1e-3, 0.05)
    assert (rest["lr"], rest["weight_decay"]) == (1e-3, 0.0)  # embeddings, norms: no decay
    assert {id(p) for p in rest["params"]} == {
        id(p) for n, p in model.named_parameters() if "norm" in n or "embed" in n}
    given = optimizer_cls_and_kwargs(model, "adamw_snsm", args=args, lr=2e-2, rank=4,
                                     plain={"weight_decay": 0.01})
    matrices, rest = groups_of(given)
    assert (matrices["lr"], rest["lr"], rest["weight_decay"]) == (2e-2, 2e-2, 0.01)


def test_without_training_arguments_a_warning_names_the_defaults_used(caplog):
    model = tiny_llama()
    with caplog.at_level("WARNING", logger="snsm.integrations.hf"):
        optimizer_cls_and_kwargs(model, "adamw_snsm", rank=4)
    assert re.search(r"does not read TrainingArguments' learning_rate or weight_decay; AdamSNSM "
                     r"uses lr=0\.01, weight_decay=0\.0 \(its defaults\)", caplog.text)
    caplog.clear()
    with caplog.at_level("WARNING", logger="snsm.integrations.hf"):
        optimizer_cls_and_kwargs(model, "adamw_snsm", lr=2e-2, weight_decay=0.0, rank=4)
    assert caplog.text == ""
