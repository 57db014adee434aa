"""Seconds of `dvc repro` on full PACS: cold, unchanged, and after moving the same images to another data.root.

    python benchmarks/relocate.py                       # tiny random CLIP (fast), PACS from ../shared/pacs
    python benchmarks/relocate.py --preset small-512 --pacs /path/to/pacs

Builds a scratch git + DVC project from this checkout, points it at the images and a random CLIP
directory, runs `dvc repro`, commits, then times `dvc repro` with nothing changed, and again after
copying the images to a new folder and setting data.root there. Prints the stages each run ran.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
import yaml

REPO = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *cmd: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def timed_repro(proj: Path) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = sh(proj, "dvc", "repro")
    return time.perf_counter() - t0, re.findall(r"Running stage '([\w/.:]+)'", out)


def main(pacs: Path = REPO.parent / "shared" / "pacs", preset: str = "tiny", keep: bool = False) -> None:
    from pipeline.randomclip import build_random_clip

    work = Path(tempfile.mkdtemp(prefix="relocate-"))
    proj = work / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore", ".dvcignore", "models/dvc.yaml"):
        (proj / item).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / item, proj / item)
    for d in ("pipeline", "stages"):
        shutil.copytree(REPO / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    p = yaml.safe_load((proj / "params.yaml").read_text())
    p["data"]["root"] = str(pacs.resolve())
    p["model"]["name"] = str(build_random_clip(work / "clip", preset, seed=0))
    p["promptstyler"].update(k=4, iterations=10)
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(proj, "git", "init", "-q")
    sh(proj, "dvc", "init", "-q")
    sh(proj, "git", "add", "-A")
    sh(proj, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    for label in ("cold", "unchanged"):
        seconds, ran = timed_repro(proj)
        print(f"{label}: {seconds:.1f} s, ran {ran}", flush=True)
    moved = work / "elsewhere" / "pacs"
    shutil.copytree(pacs, moved)
    before = (proj / "data/manifest.parquet").read_bytes()
    p["data"]["root"] = str(moved)
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    seconds, ran = timed_repro(proj)
    same = (proj / "data/manifest.parquet").read_bytes() == before
    print(f"relocated data.root (copies of the {sum(1 for _ in moved.rglob('*.*'))} files): {seconds:.1f} s, ran {ran}, "
          f"manifest byte-identical: {same}")
    seconds, ran = timed_repro(proj)
    print(f"unchanged again: {seconds:.1f} s, ran {ran}")
    if not keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    typer.run(main)
