"""Seconds of `dvc repro` on full PACS: cold, unchanged, and after moving the same images to another data.root.

    python benchmarks/relocate.py                       # tiny random CLIP (fast), PACS from ../shared/pacs
    python benchmarks/relocate.py --preset small-512 --pacs /path/to/pacs

Builds a scratch git + DVC project from this checkout, points it at the images and a random CLIP
directory, runs `dvc repro`, commits, then times `dvc repro` with nothing changed, and again after
copying the images to a new folder and setting data.root there. Prints the stages each run ran.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer
import yaml
from _scratch import project, timed_repro

REPO = Path(__file__).resolve().parents[1]


def main(pacs: Path = REPO.parent / "shared" / "pacs", preset: str = "tiny", keep: bool = False) -> None:
    from pipeline.randomclip import build_random_clip

    work = Path(tempfile.mkdtemp(prefix="relocate-"))
    proj = project(REPO, work / "proj", pacs, build_random_clip(work / "clip", preset, seed=0))
    p = yaml.safe_load((proj / "params.yaml").read_text())
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
