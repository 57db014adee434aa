"""Stage prepare on a DomainNet-shaped folder tree: DomainBed's six domain folders, 345 class folders (the
real names a generated tree can hold: three real ones, the rest numbered), small generated images, and what
a web-collected folder holds -- byte-identical copies (in one class, across classes, across domains) and
links (a loop, a link into the tree, a link out of it). Times a cold and a warm `prepare` (the stage's own
code, `data.on_bad_image: skip`) and reports peak RSS, the duplicate counts and the skipped links.

    python benchmarks/domainnet_tree.py --per-class 10 --out /tmp/dn
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import typer
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]
REAL = ["The_Eiffel_Tower", "aircraft_carrier", "alarm_clock"]


def make_tree(root: Path, per_class: int, seed: int = 0) -> dict:
    """The tree, and what was planted in it."""
    rng = np.random.default_rng(seed)
    classes = REAL + [f"class_{i:03d}" for i in range(345 - len(REAL))]
    for k, d in enumerate(DOMAINS):
        for c in classes:
            (root / d / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / d / c / f"{i}.png")
    src = root / "real" / "alarm_clock" / "0.png"
    shutil.copy(src, root / "real" / "alarm_clock" / "copy.png")              # same class
    shutil.copy(src, root / "real" / "aircraft_carrier" / "alarm.png")        # another class
    shutil.copy(src, root / "sketch" / "alarm_clock" / "from_real.png")        # another domain
    (root / "painting" / "class_100" / "loop").symlink_to("..", target_is_directory=True)
    (root / "painting" / "class_101" / "again").symlink_to("../class_102", target_is_directory=True)
    outside = root.parent / f"{root.name}_outside"
    outside.mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(outside / "extra.png")
    (root / "clipart" / "class_200" / "more").symlink_to(outside, target_is_directory=True)
    return {"files": 6 * 345 * per_class + 3 + 1, "classes": len(classes)}


def timed_prepare(project: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of `python stages/prepare.py` in ``project``."""
    code = ("import resource, runpy, sys\nsys.argv = ['prepare.py']\ntry:\n"
            f"    runpy.run_path({str(REPO / 'stages' / 'prepare.py')!r}, run_name='__main__')\nfinally:\n"
            "    print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'stages'}{os.pathsep}{REPO}")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode:
        sys.exit(r.stderr[-3000:])
    return seconds, float(r.stdout.split("RSS")[-1]), r.stdout


def main(per_class: int = 10, out: Path = Path("/tmp/domainnet_tree"), workers: int = 4) -> None:
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.parent / f"{out.name}_outside", ignore_errors=True)
    t0 = time.perf_counter()
    planted = make_tree(out / "domain_net", per_class)
    print(f"tree: {planted['files']} files, 6 domains x {planted['classes']} classes ({time.perf_counter() - t0:.1f} s)")
    project = out / "project"
    project.mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(root=str(out / "domain_net"), dataset="domain_net", on_bad_image="skip", workers=workers)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for run in ("cold", "warm"):
        seconds, rss, stdout = timed_prepare(project)
        print(f"prepare {run}: {seconds:.1f} s, peak RSS {rss:.0f} MiB -- {stdout.splitlines()[0]}")
    rep = json.loads((project / "reports/prepare.json").read_text())
    print("duplicates:", {k: v for k, v in rep["duplicates"].items() if k != "examples"})
    print("skipped:", [f"{s['path']}: {s['reason']}" for s in rep["skipped_files"]])
    classes = json.loads((project / "data/classes.json").read_text())
    print("classes:", len(classes["classes"]), classes["classes"][:4], "names:", classes["names"][:3])
    print(f"this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    typer.run(main)
