"""The `vad` command line generated from the configs: help, --config/--print-config, global flags, usage errors."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from apps.cli import VERBS, main
from apps.cli_config import Option, cached_config_options, config_options, flag

ROOT = Path(__file__).resolve().parents[2]
CONFIG_VERBS = [name for name, spec in VERBS.items() if spec.configs]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Help caches go to the test's directory, never to ~/.cache; help is not wrapped."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")


def _help_entries(text: str) -> dict[str, str]:
    """Flag -> its help text on one line, from `vad VERB --help` output."""
    entries = {}
    for block in text.split("\n  -"):
        words = block.split()
        if words and words[0].startswith("-"):
            entries["-" + words[0]] = " ".join(words)
    return entries


def _options(name: str) -> list[Option]:
    return [item for item in config_options(VERBS[name].configs) if isinstance(item, Option)]


@pytest.mark.parametrize("name", CONFIG_VERBS)
def test_help_lists_every_config_field_with_its_comment_and_default(name, capsys):
    assert main([name, "--help"]) == 0
    entries = _help_entries(capsys.readouterr().out)
    options = _options(name)
    assert options
    for opt in options:
        entry = entries[flag(opt.key)]
        assert " ".join(opt.help.split()) in entry, opt.key
        default = "null" if opt.default is None else str(opt.default)
        assert f"default: {default}" in entry, (opt.key, entry)


def test_train_help_shows_lr_and_its_default(capsys):
    from vad.engine.train import TrainConfig

    main(["train", "--help"])
    entry = _help_entries(capsys.readouterr().out)["--train.lr"]
    assert "learning rate" in entry and f"default: {TrainConfig().lr}" in entry and "(also --lr)" in entry


@pytest.mark.parametrize("name", list(VERBS))
def test_shortcuts_stand_for_existing_fields(name):
    keys = {opt.key for opt in _options(name)}
    assert set(VERBS[name].shortcuts.values()) <= keys


def test_print_config_holds_every_model_and_training_field_and_round_trips(tmp_path, capsys):
    from vad.engine.train import TrainConfig
    from vad.models.config import ModelConfig

    args = ["train", "--features", "f", "--out", "o", "--lr", "0.001", "--train.batch-size", "4",
            "--model.lego.P", "3", "--hidden", "32"]
    assert main(args + ["--print-config"]) == 0
    printed = capsys.readouterr().out
    run = yaml.safe_load(printed)
    model = ModelConfig()
    assert run["model"] == dataclasses.replace(model, hidden=32, lego=dataclasses.replace(model.lego, P=3)).to_dict()
    assert run["train"] == dataclasses.asdict(TrainConfig(lr=0.001, batch_size=4))
    (tmp_path / "run.yaml").write_text(printed)
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize("name", CONFIG_VERBS)
def test_print_config_has_a_key_per_field(name, capsys):
    required = {"synth": ["o"], "extract": ["v.mp4", "--out", "o"], "train": ["--features", "f", "--out", "o"],
                "score": ["v.mp4", "--model", "m", "--out", "o"], "serve": ["--model", "m"], "demo": [],
                "fit-normal": ["--features", "f", "--out", "o"], "watch": ["--model", "m"],
                "benchmark": ["ucf-crime", "--root", "r"]}[name]
    assert main([name, *required, "--print-config"]) == 0
    run = yaml.safe_load(capsys.readouterr().out)
    for opt in _options(name):
        value = run
        for part in opt.key.split("."):
            value = value[part]
        assert value == (list(opt.default) if isinstance(opt.default, tuple) else opt.default), opt.key


def test_config_file_reproduces_the_checkpoint_bit_for_bit(tmp_path, trained_inputs, capsys):
    bench, feats = trained_inputs
    args = ["-q", "train", "--features", str(feats), "--benchmark", str(bench), "--epochs", "2", "--device", "cpu",
            "--train.batch-size", "4", "--num-snippets", "8", "--hidden", "32", "--seed", "5"]
    assert main(args + ["--out", str(tmp_path / "flags")]) == 0
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "flags"), "--print-config"]) == 0
    (tmp_path / "run.yaml").write_text(capsys.readouterr().out)
    assert main(["-q", "train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "file")]) == 0
    assert main(["-q", "train", "--config", str(tmp_path / "run.yaml"), "--seed", "6",
                 "--out", str(tmp_path / "seed6")]) == 0
    weights = {d: (tmp_path / d / "model.safetensors").read_bytes() for d in ("flags", "file", "seed6")}
    assert weights["flags"] == weights["file"]
    assert weights["flags"] != weights["seed6"]  # the comparison can tell runs apart


@pytest.mark.parametrize("where", ["before", "after", "none"])
def test_quiet_works_before_or_after_the_verb(where, tmp_path, monkeypatch):
    import vad.synth.generate

    seen = {}

    def fake_make_benchmark(out_dir, config, progress=True):
        seen.update(config=config, progress=progress)
        return SimpleNamespace(videos=[], seconds=0.0, root=out_dir)

    monkeypatch.setattr(vad.synth.generate, "make_benchmark", fake_make_benchmark)
    argv = {"before": ["-q", "synth", "out", "--videos", "8"], "after": ["synth", "out", "-q", "--videos", "8"],
            "none": ["synth", "out", "--videos", "8"]}[where]
    assert main(argv) == 0
    assert seen["progress"] is (where == "none") and seen["config"].videos == 8


@pytest.mark.parametrize("argv", [
    [],
    ["bogus"],
    ["train", "--features", "f"],
    ["train", "--features", "f", "--out", "o", "--lr", "fast"],
    ["train", "--features", "f", "--out", "o", "--model.arch", "bogus"],
    ["score", "v.mp4", "--model", "m", "--out", "o", "--batch-size", "8"],  # renamed: --batch-snippets
    ["synth", "out", "--nope", "1"],
])
def test_usage_errors_are_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("vad: error: ") and captured.err.count("\n") == 1


def test_usage_error_in_a_real_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "apps.cli", "train", "--features", "f", "--out", "o", "--lr", "x"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "lr" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_device_defaults_to_auto_and_eval_runs(tmp_path, trained_inputs, trained_model, capsys):
    bench, feats = trained_inputs
    args = ["eval", "--model", str(trained_model), "--features", str(feats), "--benchmark", str(bench)]
    assert main(args + ["--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["device"] == "auto"
    assert main(["-q", *args, "--out", str(tmp_path / "m.json")]) == 0
    assert "frame AUC" in capsys.readouterr().out
    assert "auc" in json.loads((tmp_path / "m.json").read_text())


def test_device_is_auto_by_default_in_every_verb(capsys):
    for name, required in (("extract", ["v", "--out", "o"]), ("train", ["--features", "f", "--out", "o"]),
                           ("score", ["v", "--model", "m", "--out", "o"]), ("demo", [])):
        main([name, *required, "--print-config"])
        run = yaml.safe_load(capsys.readouterr().out)
        device = run.get("device") or run.get("train", {}).get("device") or run["backbone"]["device"]
        assert device == "auto", name


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("vad ")


def test_extract_prompt_file_and_shortcuts_reach_the_config(tmp_path, monkeypatch):
    import vad.features.extract

    seen = {}

    def fake_extract_videos(inputs, out_dir, config, progress=True):
        seen.update(inputs=inputs, config=config)
        return SimpleNamespace(written=[], skipped=[], failed={}, out_dir=out_dir)

    monkeypatch.setattr(vad.features.extract, "extract_videos", fake_extract_videos)
    (tmp_path / "prompts.txt").write_text("# comment\nnormal\nfire\n")
    assert main(["-q", "extract", "a.mp4", "b/", "--out", "o", "--backbone", "tiny", "--snippet-len", "8",
                 "--batch_snippets", "4", "--prompt-file", str(tmp_path / "prompts.txt")]) == 0
    config = seen["config"]
    assert seen["inputs"] == ["a.mp4", "b/"] and config.prompts == ("normal", "fire")
    assert config.backbone.name == "tiny" and config.snippets.snippet_len == 8 and config.batch_snippets == 4


HEAVY = ("torch", "open_clip", "gradio", "matplotlib", "cv2", "decord", "sklearn")


@pytest.mark.parametrize("name", [None, *VERBS])
def test_help_imports_no_heavy_library(name, tmp_path):
    """`vad --help` and every `vad VERB --help` import none of the heavy libraries, the first time (no help cache:
    the options come from the config classes) or from the cache, and print the same help both times."""
    argv = ["--help"] if name is None else [name, "--help"]
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        from apps.cli import main
        outs = []
        for _ in range(2):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert main({argv!r}) == 0
            outs.append(out.getvalue())
        assert outs[0] == outs[1] and "usage: vad" in outs[0], outs
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"`vad {name or ''} --help` imported {proc.stdout.strip()}"


def test_help_cache_follows_the_source(tmp_path, monkeypatch):
    pkg = tmp_path / "cfgpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    source = textwrap.dedent('''
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Conf:
            """A test config."""

            size: int = 3  # how big
    ''')
    (pkg / "conf.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    cache = tmp_path / "cache.json"
    first = cached_config_options({"": "cfgpkg.conf:Conf"}, cache)
    assert cache.exists() and cached_config_options({"": "cfgpkg.conf:Conf"}, cache) == first
    (pkg / "conf.py").write_text(source + "    name: str = 'x'  # what it is called\n")
    os.utime(pkg / "conf.py", ns=(1, 1))
    sys.modules.pop("cfgpkg.conf", None)
    again = cached_config_options({"": "cfgpkg.conf:Conf"}, cache)
    assert [o.key for o in again if isinstance(o, Option)] == ["size", "name"]
    assert again[-1].help == "what it is called"


@pytest.mark.parametrize("verb, message, shown", [
    ("score", "`runtime` onnx: not with `zero_shot`", "--runtime onnx: not with --zero-shot"),  # top-level fields
    ("score", "`threshold` must be in [0, 1]", "--threshold must be in [0, 1]"),  # a short flag of that name
    ("eval", "set `segments.threshold`", "set --threshold"),  # eval's own --threshold, by the name's last part
    ("watch", "set `segments.threshold`", "set --threshold"),  # LiveConfig.threshold
    ("train", "`window_size` > 0", "--model.lego.window-size > 0"),  # the one key ending with it
    ("benchmark", "`device` cuda", "--extract.backbone.device or --train.device cuda"),  # every key ending with it
    ("score", "/data/`model`.mp4: set `model`.", "/data/`model`.mp4: set --model."),  # not inside a path
    ("extract", "`pretrained` x: not found", "--pretrained x: not found"),  # a shortcut of that name
    ("train", "`val_fraction` > 0; give `labels`", "--val-fraction > 0; give --labels"),  # the verb's own arguments
    ("train", "`model.hidden`", "--hidden"),  # a config key with a shortcut
    ("extract", "`vad extract` writes them; `no_such_field`", "`vad extract` writes them; `no_such_field`"),
    (None, "`threshold` must be in [0, 1]", "`threshold` must be in [0, 1]"),  # no verb: nothing to map to
])
def test_library_setting_names_become_the_verbs_flags(verb, message, shown):
    from apps.cli_parser import name_flags

    assert name_flags(message, verb) == shown


def test_warnings_after_a_run_keep_the_librarys_words(caplog):
    """The flag filter works for the run in progress only: a later library warning in the process is unchanged."""
    import logging

    assert main(["score", "--help"]) == 0
    with caplog.at_level("WARNING"):
        logging.getLogger("vad.test").warning("set `segments.threshold` to %s", "0.7")
    assert caplog.records[-1].getMessage() == "set `segments.threshold` to 0.7"


def test_a_library_error_reaches_the_user_with_the_verbs_flag(capsys):
    """LiveConfig says `window`; `vad watch` shows --window, one line, exit 2."""
    assert main(["watch", "--model", "m", "--source", "x.mp4", "--window", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vad: error: --window and --smoothing must be >= 1") and "`" not in err
