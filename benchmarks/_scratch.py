"""Scratch git + DVC projects built from a checkout, for the benchmarks that time real `dvc repro` runs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROJECT_FILES = ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore", ".dvcignore")


def sh(cwd: Path, *cmd: str, code: Path | None = None) -> str:
    """Run ``cmd`` in ``cwd`` importing ``pipeline`` from ``code`` (default: ``cwd``'s own)."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(code or cwd),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def commit(proj: Path, message: str) -> None:
    sh(proj, "git", "add", "-A")
    sh(proj, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", message)


def project(src: Path, proj: Path, pacs: Path, model: Path) -> Path:
    """A git + DVC project at ``proj`` with ``src``'s pipeline, reading ``pacs`` with the CLIP directory
    ``model`` (4 PromptStyler styles of 10 steps: the benchmarks time the feature-cache stages)."""
    proj.mkdir(parents=True)
    for item in PROJECT_FILES:
        if (src / item).is_file():  # an older checkout (a baseline) may have other files: models/dvc.yaml
            (proj / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / item, proj / item)
    if (src / "models" / "dvc.yaml").is_file():
        (proj / "models").mkdir(exist_ok=True)
        shutil.copy(src / "models" / "dvc.yaml", proj / "models" / "dvc.yaml")
    for d in ("pipeline", "stages"):
        shutil.copytree(src / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    p = yaml.safe_load((proj / "params.yaml").read_text())
    p["data"]["root"], p["model"]["name"] = str(pacs.resolve()), str(model)
    p["promptstyler"].update(k=4, iterations=10)
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(proj, "git", "init", "-q")
    sh(proj, "dvc", "init", "-q")
    commit(proj, "init")
    return proj


def timed_repro(proj: Path, code: Path | None = None, targets: tuple[str, ...] = ()) -> tuple[float, list[str]]:
    """(seconds of `dvc repro [targets]`, the stages it ran)."""
    t0 = time.perf_counter()
    out = sh(proj, "dvc", "repro", *targets, code=code)
    return time.perf_counter() - t0, re.findall(r"Running stage '([\w/.:]+)'", out)
