"""The shipped GitHub Actions example (docs/ci/github-actions-team.yml) cannot run here: it is parsed and every
command it runs is checked against this repo (console-script subcommands, DVC subcommands and their options,
scripts and modules), and the CI report's pieces are unit-tested."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cireport import flatten, moved, render_plots, vega_fields

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "docs" / "ci" / "github-actions-team.yml"
EXTERNAL = {"pip", "gh"}  # installed on the runner, not by this repo


def commands(workflow: dict) -> list[list[str]]:
    out = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    out.append(shlex.split(line.replace("${{", "'${{").replace("}}", "}}'")))
    return out


def test_the_workflow_parses_and_every_command_it_runs_exists():
    wf = yaml.safe_load(WORKFLOW.read_text())
    assert wf["name"] and wf[True if True in wf else "on"]["pull_request"]  # YAML 1.1 reads `on:` as True
    cmds = commands(wf)
    assert {c[0] for c in cmds} <= EXTERNAL | {"dvc", "clipdg"}, cmds
    for cmd in cmds:
        if cmd[0] == "dvc":
            # the subcommand and each option exist in this DVC (its parser rejects anything else)
            args = [a if not a.startswith("'${{") else "x" for a in cmd[1:]]
            r = subprocess.run([sys.executable, "-c", "import sys; from dvc.cli import parse_args; parse_args(sys.argv[1:])",
                                *args], capture_output=True, text=True)
            assert r.returncode == 0, f"{cmd}: {r.stderr[-500:]}"
        elif cmd[0] == "clipdg":
            from typer.main import get_command

            from pipeline.cli import app

            group = get_command(app)
            sub = group.get_command(None, cmd[1])
            assert sub is not None, f"clipdg has no subcommand {cmd[1]!r}"
            options = {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}
            for a in cmd[2:]:
                assert not a.startswith("--") or a in options, f"clipdg {cmd[1]}: no option {a}"
    assert any(c[:2] == ["dvc", "pull"] for c in cmds) and any(c[:2] == ["dvc", "repro"] for c in cmds)
    assert any(c[:2] == ["clipdg", "report"] for c in cmds)


def test_metric_moves_and_the_plot_rendering():
    before = {"lodo": {"logreg": {"mean": 0.45, "se": 0.01}}, "zeroshot": {"zeroshot": {"mean": 0.46, "se": 0.0}}}
    after = {"lodo": {"logreg": {"mean": 0.14, "se": 0.01}}, "zeroshot": {"zeroshot": {"mean": 0.46, "se": 0.0}}}
    assert flatten(before)["lodo.logreg.mean"] == 0.45
    assert moved(before, after) == {"lodo.logreg.mean": (0.45, 0.14)}
    assert moved(before, before) == {}


def test_dvc_plot_specs_render_to_images(tmp_path):
    spec = {"encoding": {"x": {"field": "step"}}, "layer": [{"encoding": {"y": {"field": "loss"}}}],
            "data": {"values": [{"step": 0, "loss": "3", "rev": "workspace"}, {"step": 1, "loss": "2", "rev": "workspace"},
                                {"step": 0, "loss": "3", "rev": "HEAD"}]}}
    assert vega_fields(spec) == ("step", ["loss"])
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    out = render_plots({"data": {"a/loss.tsv": [{"type": "vega", "revisions": ["workspace", "HEAD"], "content": spec}],
                                 "x.png": [{"type": "image", "revisions": ["HEAD"], "url": str(tmp_path / "img.png")}]}},
                       tmp_path)
    assert out == [("a/loss.tsv", ["workspace", "HEAD"], "a_loss.tsv-0.png"), ("x.png", ["HEAD"], "img.png")]
    assert (tmp_path / "a_loss.tsv-0.png").read_bytes()[:4] == b"\x89PNG"
