"""Seconds of `dvc repro` after a one-parameter edit (a sweep step), on full PACS, against a baseline checkout.

    python benchmarks/sweep_warm.py --baseline /tmp/main-before          # interleaved with that checkout
    python benchmarks/sweep_warm.py --rounds 2 --preset small-128
    python benchmarks/sweep_warm.py --project ../full --edit 'translate.alpha=[1.0, 0.5]'   # an existing project
    python benchmarks/sweep_warm.py --baseline /tmp/old --set 'operators.names=[none, center]' \
        --target diagnostics --target results     # like for like: the baseline's grid and stages only

Builds one scratch git + DVC project per checkout (this one, and ``--baseline`` if given) on the same
images and the same random CLIP directory, runs a cold `dvc repro` in each and commits, then, for each
edit in turn and each round, edits one param in each project and times `dvc repro` (interleaved, so
that drift in this machine's speed hits both alike), each round from the cold run's params and cell cache. Edits for this checkout are list (grid) edits;
for a baseline whose params are scalars, the scalar edit of the same knob (``--baseline-edits``).
``--set`` edits this checkout's params before its cold run (e.g. the baseline's operator grid), and
``--target`` times `dvc repro TARGET...` instead of `dvc repro` after each edit (the cold runs are whole),
so that a comparison can leave out stages the baseline does not have.

``--project DIR`` times the edits in an existing git + DVC project instead (e.g. a full-PACS MiniCLIP
run), its stages importing this checkout's ``pipeline`` (``--code`` for another): each edit starts
from its committed state and its cell cache as it was (``evaluation.cache_dir`` is restored between
edits), so every edit computes the same cells.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import typer
import yaml
from _scratch import commit, project, sh, timed_repro

REPO = Path(__file__).resolve().parents[1]
EDITS = ["classifier.C=[0.01, 0.1, 0.5]", "translate.alpha=[0.5, 0.7]", "operators.whiten.shrinkage=[0.1, 0.3]"]
BASELINE_EDITS = ["classifier.C=0.5", "translate.alpha=0.7", "operators.whiten_shrinkage=0.3"]


def edit(proj: Path, assignment: str) -> None:
    path, value = assignment.split("=", 1)
    p = yaml.safe_load((proj / "params.yaml").read_text())
    *parents, leaf = path.split(".")
    node = p
    for k in parents:
        node = node[k]
    node[leaf] = yaml.safe_load(value)
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def in_project(proj: Path, edits: list[str], rounds: int, code: Path) -> None:
    """Each edit (each round) from ``proj``'s committed state and its cell cache as it is now; both are
    put back at the end, also when a `dvc repro` fails."""
    cells = proj / yaml.safe_load((proj / "params.yaml").read_text())["evaluation"]["cache_dir"]
    with tempfile.TemporaryDirectory() as keep:
        saved = Path(keep) / "cells"
        shutil.copytree(cells, saved)

        def restore() -> None:
            sh(proj, "git", "checkout", "-q", "--", ".")
            shutil.rmtree(cells)
            shutil.copytree(saved, cells)

        try:
            for assignment in edits:
                for r in range(rounds):
                    restore()
                    edit(proj, assignment)
                    seconds, ran = timed_repro(proj, code)
                    info = json.loads((proj / "reports" / "evaluate.json").read_text())
                    print(f"round {r} `{assignment}`: {seconds:.1f} s, ran {ran}, {info['computed']} of "
                          f"{info['cells']} cells computed", flush=True)
        finally:
            restore()


def main(baseline: Path = typer.Option(None), pacs: Path = REPO.parent / "shared" / "pacs", preset: str = "small-128",
         rounds: int = 1, edits: list[str] = typer.Option(EDITS, "--edit"),
         baseline_edits: list[str] = typer.Option(BASELINE_EDITS, "--baseline-edit"), keep: bool = False,
         project_dir: Path = typer.Option(None, "--project"), code: Path = REPO,
         sets: list[str] = typer.Option([], "--set"), targets: list[str] = typer.Option([], "--target")) -> None:
    if project_dir:
        return in_project(project_dir.resolve(), edits, rounds, code.resolve())
    from pipeline.randomclip import build_random_clip

    work = Path(tempfile.mkdtemp(prefix="sweep-"))
    model = build_random_clip(work / "clip", preset, seed=0)
    projects = {"this": (project(REPO, work / "this", pacs, model), edits)}
    for assignment in sets:
        edit(projects["this"][0], assignment)
    if baseline:
        projects["baseline"] = (project(baseline.resolve(), work / "baseline", pacs, model), baseline_edits)
    for name, (proj, _) in projects.items():
        seconds, ran = timed_repro(proj)
        commit(proj, "cold")
        shutil.copytree(proj / "cache" / "cells", work / f"{name}-cells")  # the cold run's cells (and warm starts)
        print(f"{name} cold: {seconds:.1f} s, ran {ran}", flush=True)
    for i in range(len(edits)):
        for r in range(rounds):
            for name, (proj, eds) in projects.items():
                sh(proj, "git", "checkout", "-q", "--", ".")  # back to the committed cold params and reports
                shutil.rmtree(proj / "cache" / "cells")  # and to the cold run's cell cache: every round computes
                shutil.copytree(work / f"{name}-cells", proj / "cache" / "cells")  # the same new cells
                edit(proj, eds[i])
                seconds, ran = timed_repro(proj, targets=tuple(targets))
                print(f"{name} round {r} `{eds[i]}`: {seconds:.1f} s, ran {ran}", flush=True)
    if not keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    typer.run(main)
