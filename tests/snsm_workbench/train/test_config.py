import argparse
import dataclasses
import json
import math
import re

import pytest
import torch

import snsm
from snsm_workbench.cli.train_flags import (add_train_arguments, config_from_args, parse_opt,
                                            parse_opt_value)
from snsm_workbench.train.config import (TrainConfig, config_from_dict, harness_lr,
                                         load_config_file, validate)
from snsm_workbench.train.run_config import RunConfig, resolve


def parse(argv):
    return add_train_arguments(argparse.ArgumentParser(prog="snsm train")).parse_args(argv)


def test_defaults_are_valid_and_round_trip_through_json():
    config = validate(TrainConfig())
    assert (config.preset, config.optimizer, config.steps, config.parallel) == (
        "tiny", "adamw_snsm", 200, "none")
    assert resolve(config).lr == snsm.get_spec("adamw_snsm").harness_lr == 3e-2
    data = json.loads(json.dumps(config.to_dict()))
    assert config_from_dict(data) == config
    assert TrainConfig().optimizer_args is not TrainConfig().optimizer_args


def test_cache_dir_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("SNSM_CACHE", "/data/snsm-cache")
    assert TrainConfig().cache_dir == "/data/snsm-cache"
    monkeypatch.delenv("SNSM_CACHE")
    assert TrainConfig().cache_dir == "~/.cache/snsm"


def test_harness_lr_is_the_registry_harness_lr():
    for name in snsm.list_optimizers():
        assert harness_lr(name) == snsm.get_spec(name).harness_lr > 0
    assert harness_lr("adamw") == 3e-3 and harness_lr("adagrad_snsm") == 1.0
    assert resolve(TrainConfig(optimizer="adamw", lr=1e-4)).lr == 1e-4
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        harness_lr("lion")


def test_run_config_resolves_the_derived_values_once_and_is_frozen():
    config = TrainConfig(optimizer="adamw", preset="tiny", weights="bf16")
    run = resolve(config)
    assert (run.lr, run.plain_lr, run.seq_len) == (3e-3, 3e-3, 128)
    assert run.weight_dtype is torch.bfloat16 and run.weight_decay == 0.0
    assert run.value("lr") == 3e-3 and run.value("steps") == 200
    assert run.settings == config and run.settings is not config  # a private copy
    assert run.settings.lr is None and run.settings.seq_len is None  # recorded as given
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.lr = 1.0
    given = resolve(TrainConfig(lr=0.5, plain_lr=0.0, seq_len=64, weight_decay=0.1))
    assert (given.lr, given.plain_lr, given.seq_len, given.weight_decay) == (0.5, 0.0, 64, 0.1)
    assert given.weight_dtype is torch.float32 and isinstance(given, RunConfig)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_file_then_flags_precedence(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    if suffix == ".toml":
        path.write_text('optimizer = "adamw_sn"\nlr = 0.01\nsteps = 30\nbatch_size = 8\n'
                        'quiet = true\n[optimizer_args]\nsubset_size = 64\n')
    else:
        path.write_text(json.dumps({"optimizer": "adamw_sn", "lr": 0.01, "steps": 30,
                                    "batch_size": 8, "quiet": True,
                                    "optimizer_args": {"subset_size": 64}}))
    config = config_from_args(parse(["--config", str(path), "--steps", "40",
                                     "--opt", "eps=1e-8"]))
    assert config.steps == 40  # flag over file
    assert (config.optimizer, config.lr, config.batch_size) == ("adamw_sn", 0.01, 8)  # file
    assert config.quiet is True  # a flag not given does not override the file
    assert config.optimizer_args == {"subset_size": 64, "eps": 1e-8}  # --opt merged
    assert (config.seq_len, config.warmup_ratio) == (None, 0.1)  # defaults
    assert config_from_args(parse(["--config", str(path), "--no-quiet"])).quiet is False
    assert config_from_args(parse(["--config", str(path), "--opt", "subset_size=8"])
                            ).optimizer_args == {"subset_size": 8}


def test_every_field_has_a_flag_whose_default_is_none():
    args = vars(parse([]))
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "optimizer_args"]
    assert set(fields) | {"config", "opt"} == set(args)
    assert all(value is None for value in args.values())
    assert config_from_args(parse([])) == TrainConfig()


def test_flags_of_every_type():
    config = config_from_args(parse([
        "--preset", "small", "--optimizer", "adamw", "--lr", "1e-3", "--plain-lr", "0",
        "--steps", "7", "--batch-size", "2", "--grad-accum", "3", "--seq-len", "64",
        "--warmup-ratio", "0", "--min-lr-ratio", "1", "--grad-clip", "0", "--weight-decay",
        "0.1", "--bf16", "--eval-every", "2", "--eval-batches", "1", "--save-every", "5",
        "--seed", "9", "--hf-dataset", "wikitext", "--hf-config", "wikitext-2-raw-v1",
        "--vocab-size", "512", "--cache-dir", "c", "--out", "o", "--quiet",
        "--max-bad-steps", "1", "--parallel", "ddp"]))
    assert config == TrainConfig(
        preset="small", optimizer="adamw", lr=1e-3, plain_lr=0.0, steps=7, batch_size=2,
        grad_accum=3, seq_len=64, warmup_ratio=0.0, min_lr_ratio=1.0, grad_clip=0.0,
        weight_decay=0.1, bf16=True, eval_every=2, eval_batches=1, save_every=5, seed=9,
        hf_dataset="wikitext", hf_config="wikitext-2-raw-v1", vocab_size=512, cache_dir="c",
        out="o", quiet=True, max_bad_steps=1, parallel="ddp")
    assert parse(["--resume", "r"]).resume == "r"  # --resume reads the run: tests below


@pytest.mark.parametrize("command", ["train", "demo"])
def test_every_flag_has_help_text_without_markup(command):
    """--help is read in a terminal: every flag explained, no RST backticks."""
    import argparse as ap

    from snsm_workbench.cli import build_parser

    sub = next(a for a in build_parser([command])._actions
               if isinstance(a, ap._SubParsersAction)).choices[command]
    flags = [a for a in sub._actions if a.help != ap.SUPPRESS and a.option_strings
             and not isinstance(a, ap._HelpAction)]
    assert len(flags) > 5
    for action in flags:
        assert action.help and action.help.strip(), action.option_strings
    assert "`" not in sub.format_help()


@pytest.mark.parametrize("argv", [["--optimizer", "lion"], ["--steps", "ten"],
                                  ["--opt", "rank"], ["--parallel", "tp"]])
def test_argparse_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert argv[0] in capsys.readouterr().err


def test_unknown_key_lists_the_valid_keys(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'learning_rate'; "
                                         r"valid keys: preset, optimizer, lr, .*parallel"):
        config_from_dict({"learning_rate": 0.1})
    path = tmp_path / "bad.json"
    path.write_text('{"stpes": 10}')
    with pytest.raises(ValueError, match=r"bad.json: unknown config key\(s\) 'stpes'"):
        config_from_args(parse(["--config", str(path)]))


@pytest.mark.parametrize("key, value, expected", [
    ("steps", 1.5, "an integer"), ("steps", True, "an integer"), ("steps", "10", "an integer"),
    ("seq_len", "128", "an integer or None"), ("lr", "fast", "a number or None"),
    ("lr", False, "a number or None"), ("warmup_ratio", None, "a number"),
    ("bf16", 1, "true or false"), ("preset", 3, "a string"),
    ("optimizer_args", [1], "a table of str keys"), ("optimizer_args", {1: 2}, "a table"),
])
def test_wrong_types_name_key_value_and_type(key, value, expected):
    shown = re.escape(repr(value))
    with pytest.raises(ValueError, match=rf"^{key} must be {expected}.*, got {shown}"):
        config_from_dict({key: value})
    with pytest.raises(ValueError, match=rf"^{key} must be {expected}"):
        validate(dataclasses.replace(TrainConfig(), **{key: value}))


def test_ints_are_accepted_for_float_fields():
    config = config_from_dict({"lr": 1, "grad_clip": 0, "warmup_ratio": 0})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert isinstance(config.grad_clip, float) and isinstance(config.warmup_ratio, float)


def test_config_from_dict_starts_from_a_base():
    base = TrainConfig(steps=7, optimizer_args={"rank": 4})
    config = config_from_dict({"lr": 0.5}, base=base)
    assert (config.steps, config.lr, config.optimizer_args) == (7, 0.5, {"rank": 4})
    config.optimizer_args["rank"] = 8
    assert base.optimizer_args == {"rank": 4}


@pytest.mark.parametrize("changes, match", [
    ({"preset": "huge"}, r"preset must be one of 'tiny'.*got 'huge'"),
    ({"optimizer": "lion"}, r"optimizer must be one of 'adamw'.*got 'lion'"),
    ({"parallel": "tp"}, r"parallel must be one of 'none', 'ddp', 'fsdp'; got 'tp'"),
    ({"lr": 0.0}, r"lr must be a finite number > 0 or None, got 0.0"),
    ({"lr": math.inf}, r"lr must be .*got inf"),
    ({"plain_lr": -1.0}, r"plain_lr must be a finite number >= 0, got -1.0"),
    ({"steps": 0}, r"steps must be an integer >= 1, got 0"),
    ({"batch_size": -2}, r"batch_size must be an integer >= 1, got -2"),
    ({"grad_accum": 0}, r"grad_accum must be an integer >= 1, got 0"),
    ({"seq_len": 0}, r"seq_len must be an integer >= 1, got 0"),
    ({"warmup_ratio": 1.5}, r"warmup_ratio must be a number in \[0, 1\], got 1.5"),
    ({"min_lr_ratio": -0.1}, r"min_lr_ratio must be a number in \[0, 1\], got -0.1"),
    ({"min_lr_ratio": math.nan}, r"min_lr_ratio must be a number in \[0, 1\], got nan"),
    ({"grad_clip": -1.0}, r"grad_clip must be a finite number >= 0, got -1.0"),
    ({"weight_decay": math.nan}, r"weight_decay must be a finite number >= 0, got nan"),
    ({"eval_every": 0}, r"eval_every must be an integer >= 1, got 0"),
    ({"eval_batches": 0}, r"eval_batches must be an integer >= 1, got 0"),
    ({"save_every": 0}, r"save_every must be an integer >= 1, got 0"),
    ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\), got -1"),
    ({"seed": 2**32}, r"seed must be an integer in \[0, 2\*\*32\), got 4294967296"),
    ({"vocab_size": 100}, r"vocab_size must be an integer >= 257, got 100"),
    ({"vocab_size": 256}, r"vocab_size must be an integer >= 257, got 256"),
    ({"max_bad_steps": 0}, r"max_bad_steps must be an integer >= 1, got 0"),
    ({"data": " "}, r"data must be a non-empty string or None, got ' '"),
    ({"cache_dir": ""}, r"cache_dir must be a non-empty string or None, got ''"),
    ({"out": ""}, r"out must be a non-empty string"),
    ({"resume": ""}, r"resume must be a non-empty string"),
    ({"hf_dataset": ""}, r"hf_dataset must be a non-empty string"),
    ({"data": "corpus", "hf_dataset": "wikitext"},
     r"data and hf_dataset are exclusive: data='corpus', hf_dataset='wikitext'"),
    ({"hf_config": "en"}, r"hf_config='en' needs hf_dataset"),
    ({"optimizer_args": {"rnak": 8}},
     r"optimizer_args\['rnak'\]: optimizer 'adamw_snsm' takes no such argument; "
     r"valid keys: betas, .*rank"),
    ({"optimizer": "adamw", "optimizer_args": {"rank": 8}},
     r"optimizer_args\['rank'\]: optimizer 'adamw' takes no such argument"),
    ({"optimizer_args": {"lr": 0.1}}, r"optimizer_args\['lr'\] is not allowed: .*--lr"),
    ({"optimizer_args": {"weight_decay": 0.1}}, r"--weight-decay"),
    ({"optimizer_args": {"rank": object}}, r"optimizer_args\['rank'\] must be a number"),
    ({"optimizer_args": {"rank": 0}}, r"optimizer_args\['rank'\]: rank must be an integer >= 1, "
                                      r"got 0"),
    ({"optimizer_args": {"betas": [0.9, 1.5]}}, r"optimizer_args\['betas'\]: betas\[1\] must be "
                                                r"in \[0, 1\), got 1.5"),
    ({"optimizer_args": {"projector": "qr"}}, r"optimizer_args\['projector'\]: projector must "
                                              r"be one of .*got 'qr'"),
    ({"optimizer_args": {"update_gap": -3}}, r"update_gap must be an integer >= 1, got -3"),
])
def test_every_validation_error_names_field_and_value(changes, match):
    with pytest.raises(ValueError, match=match):
        validate(TrainConfig(**changes))
    with pytest.raises(ValueError, match=match):
        config_from_dict(changes)


def test_validate_wants_a_train_config():
    with pytest.raises(ValueError, match="expected a TrainConfig, got dict"):
        validate({})


def test_load_config_file_errors_name_the_path(tmp_path):
    cases = {"a.yaml": ("steps: 3", r"a.yaml: unsupported extension '.yaml'; expected"),
             "b.toml": ("steps = ", r"malformed config file .*b.toml"),
             "c.json": ("{steps: 3}", r"malformed config file .*c.json"),
             "d.json": ("[1, 2]", r"config file .*d.json must hold a table of settings, got list"),
             "e.json": (b"\xff\xfe", r"malformed config file .*e.json")}
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError, match=match):
            load_config_file(path)
    with pytest.raises(ValueError, match=r"cannot read config file .*missing.toml"):
        load_config_file(tmp_path / "missing.toml")
    (tmp_path / "f.toml").mkdir()
    with pytest.raises(ValueError, match=r"cannot read config file .*f.toml"):
        load_config_file(tmp_path / "f.toml")


def test_wrong_type_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = "many"\n')
    with pytest.raises(ValueError, match=r"run.toml: steps must be an integer, got 'many'"):
        config_from_args(parse(["--config", str(path)]))


@pytest.mark.parametrize("text, value", [
    ("8", 8), ("-3", -3), ("1e-3", 1e-3), ("0.5", 0.5), ("true", True), ("False", False),
    ("svd", "svd"), ("0.9,0.95", [0.9, 0.95]), ("a,b", "a,b"), ("heuristic", "heuristic"),
])
def test_opt_values(text, value):
    assert parse_opt_value(text) == value
    assert type(parse_opt_value(text)) is type(value)


def test_opt_pairs():
    assert parse_opt("rank=8") == ("rank", 8)
    assert parse_opt(" projector = rsvd ") == ("projector", "rsvd")
    assert parse_opt("betas=0.9,0.95") == ("betas", [0.9, 0.95])
    for bad in ("rank", "=8", ""):
        with pytest.raises(ValueError, match=rf"--opt expects KEY=VALUE, got {bad!r}"):
            parse_opt(bad)
    args = parse(["--opt", "rank=8", "--opt", "projector=rsvd", "--opt", "update_gap=50",
                  "--opt", "betas=0.9,0.95"])
    assert config_from_args(args).optimizer_args == {
        "rank": 8, "projector": "rsvd", "update_gap": 50, "betas": [0.9, 0.95]}
    # a namespace built by hand may carry the raw strings
    args = argparse.Namespace(opt=["rank=16"], steps=3)
    assert config_from_args(args).optimizer_args == {"rank": 16}
    with pytest.raises(ValueError, match=r"optimizer_args\['lr'\] is not allowed"):
        config_from_args(parse(["--opt", "lr=0.1"]))


# --- resume: the saved settings, changes refused or applied -------------------------------

from snsm_workbench.train.checkpoint import CheckpointError  # noqa: E402
from snsm_workbench.train.config import check_paths  # noqa: E402
from snsm_workbench.train.record import read_run_config  # noqa: E402
from snsm_workbench.train.resume import resume_changes, resume_config  # noqa: E402
from snsm_workbench.util.errors import ConflictError  # noqa: E402


@pytest.fixture
def saved_run(tmp_path):
    """A run folder holding only the record resume reads (config.json)."""
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(optimizer="adamw_snsm", steps=12, eval_every=4, save_every=4,
                         quiet=True, seq_len=32, vocab_size=300, out=str(run),
                         optimizer_args={"rank": 8, "update_gap": 5})
    (run / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    return run


def test_resume_takes_the_saved_settings(saved_run):
    config = config_from_args(parse(["--resume", str(saved_run)]))
    assert (config.steps, config.optimizer_args, config.seq_len) == (12, {"rank": 8,
                                                                         "update_gap": 5}, 32)
    assert config.resume == config.out == str(saved_run) and config.quiet is True


def test_resume_applies_the_changeable_flags_even_at_their_defaults(saved_run):
    """--steps 200 and --no-quiet equal the defaults: given explicitly, they still apply."""
    config = config_from_args(parse(["--resume", str(saved_run), "--steps", "200",
                                     "--eval-every", "50", "--save-every", "7", "--no-quiet"]))
    assert (config.steps, config.eval_every, config.save_every, config.quiet) == (200, 50, 7,
                                                                                  False)
    assert config.optimizer_args == {"rank": 8, "update_gap": 5}


@pytest.mark.parametrize("argv, named", [
    (["--lr", "0.1"], r"--lr 0.1 \(saved: 0.03\)"),
    (["--optimizer", "adamw"], r"--optimizer adamw \(saved: adamw_snsm\)"),
    (["--preset", "tiny", "--batch-size", "8"], r"--batch-size 8 \(saved: 16\)"),
    (["--opt", "rank=16"], r"--opt rank=16 \(saved: rank=8\)"),
    (["--opt", "projector=rsvd"], r"--opt projector=rsvd \(saved: no projector\)"),
    (["--steps", "6"], r"--steps 6 \(saved: 12; a resumed run can only be made longer\)"),
    (["--out", "elsewhere"], r"--out elsewhere \(the resumed folder is "),
    (["--cache-dir", "other"], r"--cache-dir other \(saved: "),
])
def test_resume_refuses_any_other_change_in_one_line(saved_run, argv, named):
    with pytest.raises(ConflictError, match=rf"^cannot resume .*run with {named}.*only --steps "
                                            rf"\(larger\), --eval-every, --save-every and "
                                            rf"--quiet can change") as info:
        config_from_args(parse(["--resume", str(saved_run), *argv]))
    assert "\n" not in str(info.value)


def test_resume_accepts_flags_equal_to_the_saved_values(saved_run):
    config = config_from_args(parse(["--resume", str(saved_run), "--lr", "0.03", "--seq-len",
                                     "32", "--opt", "rank=8", "--optimizer", "adamw_snsm",
                                     "--out", str(saved_run)]))
    assert config == read_run_config(saved_run).__class__(**{
        **read_run_config(saved_run).to_dict(), "resume": str(saved_run), "out": str(saved_run)})


def test_resume_from_a_library_config(saved_run):
    """A config without out: the settings away from their defaults are the changes."""
    bare = TrainConfig(resume=str(saved_run))
    assert resume_changes(bare) == {}
    assert resume_config(saved_run, resume_changes(bare)).steps == 12
    assert resume_config(saved_run, resume_changes(TrainConfig(resume=str(saved_run),
                                                               steps=30))).steps == 30
    with pytest.raises(ConflictError, match=r"--lr 0.5 \(saved: 0.03\)"):
        resume_config(saved_run, resume_changes(TrainConfig(resume=str(saved_run), lr=0.5)))
    complete = dataclasses.replace(read_run_config(saved_run), resume=str(saved_run), steps=200)
    assert resume_config(saved_run, resume_changes(complete)).steps == 200  # out set: all count


@pytest.mark.parametrize("content, match", [
    ("{oops", r"config.json is corrupt \(not JSON: "),
    ("[1, 2]", r"config.json is corrupt \(no 'config' table\)"),
    ('{"config": {"steps": "many"}}', r"config.json is corrupt \(steps must be an integer"),
    (b"\xff\xfe", r"config.json is corrupt \(not JSON: "),
])
def test_corrupt_run_record_is_one_line_naming_the_file(saved_run, content, match):
    path = saved_run / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CheckpointError, match=rf"^cannot resume .*run: .*run/{match}") as info:
        config_from_args(parse(["--resume", str(saved_run)]))
    assert "\n" not in str(info.value)


def test_resume_of_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot resume .*nowhere: no such folder"):
        config_from_args(parse(["--resume", str(tmp_path / "nowhere")]))
    with pytest.raises(CheckpointError, match=r"no config.json there \(not a run folder\)"):
        config_from_args(parse(["--resume", str(tmp_path)]))


def test_paths_are_checked_before_anything_is_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FileNotFoundError, match=r"data path .*missing does not exist"):
        check_paths(TrainConfig(data=str(tmp_path / "missing"), cache_dir=str(tmp_path / "c")))
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(ValueError, match=r"expected a .txt or .jsonl file or a folder"):
        check_paths(TrainConfig(data=str(tmp_path / "data.csv"), cache_dir=str(tmp_path / "c")))
    with pytest.raises(ValueError, match=r"out .*file/run' cannot be created: .*file' is a file"):
        check_paths(TrainConfig(out=str(blocker / "run"), cache_dir=str(tmp_path / "c")))
    with pytest.raises(ValueError, match=r"cache_dir .*file' is not a folder"):
        check_paths(TrainConfig(out=str(tmp_path / "run"), cache_dir=str(blocker)))
    check_paths(TrainConfig(out=str(tmp_path / "a" / "b"), cache_dir=str(tmp_path / "c")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "file"]
