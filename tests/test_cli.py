"""The `clipdg` console script (issue 21): one command line for the helpers around `dvc repro`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["fetch", "convert", "random-clip", "list", "validate", "fingerprint"]
runner = CliRunner()


def test_the_console_script_is_declared_and_every_command_has_help():
    script = Path(sys.executable).parent / "clipdg"
    assert script.is_file(), "pip install -e . declares the clipdg console script (pyproject.toml)"
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and all(c in r.stdout for c in COMMANDS)
    for command in COMMANDS:
        r = runner.invoke(app, [command, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output, command


def test_list_names_every_registry_with_its_params_key():
    r = runner.invoke(app, ["list", "--json"])
    regs = json.loads(r.stdout)
    assert {k: v["params_key"] for k, v in regs.items() if k in ("datasets", "operators", "gaps", "probes")} == {
        "datasets": "data.dataset", "operators": "operators.names", "gaps": "gap.metrics", "probes": "classifier.probes"}
    assert set(regs["datasets"]["entries"]) == {"pacs", "vlcs", "office_home", "terra_incognita", "domain_net", "custom"}
    assert set(regs["encoders"]["entries"]) == {"hf_clip", "siglip", "open_clip", "miniclip"}
    assert {"simple3", "clip80"} <= set(regs["templates"]["entries"])
    assert "operators.coral: {ridge=" in regs["operators"]["entries"]["coral"]
    r = runner.invoke(app, ["list", "operatros"])
    assert r.exit_code == 1 and "did you mean 'operators'" in r.output


def test_validate_checks_params_without_running_anything(tmp_path, monkeypatch, tiny_clip):
    from trees import make_tree

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    make_tree(tmp_path / "data", ["photo", "art_painting", "cartoon", "sketch", "a", "b"], ["dog", "horse"], 1)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["root"] = "data"

    def check(edit=None):
        p = json.loads(json.dumps(params))
        if edit:
            edit(p)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
        return runner.invoke(app, ["validate"])

    r = check()
    assert r.exit_code == 0 and "ok  model.name: models/miniclip" in r.output
    assert "ok  data.dataset: pacs, 4 domains x 2 classes" in r.output
    cases = [
        (lambda p: p["classifier"].update(probes=["logreg", "svn"]), "classifier.probes: unknown probe or adapter 'svn'"),
        (lambda p: p["operators"].update(names=["none", "whitn"]), "unknown operator 'whitn' (did you mean 'whiten'?)"),
        (lambda p: p["data"].update(dataset="office-home"), "data.dataset: unknown dataset 'office-home'"),
        (lambda p: p["data"].update(dataset="custom", domains=["a", "b"]), "no description for domain 'a'"),
        (lambda p: p["data"].update(dataset="vlcs"), "neither <domain>/<class>/<image> folders"),
        (lambda p: p["prompts"].update(templates="clip08"), "prompts.templates='clip08': neither a template set"),
        (lambda p: p["model"].update(name="siglip:no/such/dir"), "model.name='siglip:no/such/dir': no such directory"),
        (lambda p: p["model"].update(name="clip:" + str(tiny_clip)), "unknown encoder family 'clip'"),
        (lambda p: p["gap"].update(metrics=["fid", "kdi"]), "unknown gap metric 'kdi'"),
    ]
    for edit, words in cases:
        r = check(edit)
        assert r.exit_code == 1 and words in r.output and r.output.count("\n") == 1, (words, r.output)


def test_random_clip_fingerprint_and_convert(tmp_path):
    r = runner.invoke(app, ["random-clip", str(tmp_path / "sig"), "--family", "siglip"])
    assert r.exit_code == 0, r.output
    fp = json.loads(runner.invoke(app, ["fingerprint", str(tmp_path / "sig")]).stdout)
    assert fp["family"] == "siglip" and fp["objective"] == "sigmoid" and fp["text"]["padding"] == "max_length"
    r = runner.invoke(app, ["random-clip", str(tmp_path / "x"), "--preset", "huge"])
    assert r.exit_code == 1 and "--preset 'huge'" in r.output
    r = runner.invoke(app, ["convert", str(tmp_path / "sig"), str(tmp_path / "out")])
    assert r.exit_code == 1 and "no open_clip_config.json with a model_cfg" in r.output
    r = runner.invoke(app, ["fetch", "no-such-org/no-such-model", str(tmp_path / "f")])
    assert r.exit_code == 1 and "cannot fetch 'no-such-org/no-such-model'" in r.output
    shutil.rmtree(tmp_path / "sig")
