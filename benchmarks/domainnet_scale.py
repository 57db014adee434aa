"""Every cheap stage at DomainNet's scale, on synthetic features: 586,575 x 512 float32 image features (the six
domains at their real sizes), 345 classes with planted class and domain structure, domain / class prompts and
PromptStyler style-content features. Each stage runs as `dvc repro` runs it (``python stages/X.py`` in a
scratch project) under ``/usr/bin/time``: seconds and peak RSS per stage, and for evaluate the plan's
estimate (`clipdg plan`) beside the measured time.

    python benchmarks/domainnet_scale.py --out ../dn_scale                 # the domain_net CPU grid (docs/benchmarks.md)
    python benchmarks/domainnet_scale.py --out ../dn_small --scale 0.01    # 1 % of the rows, same shape otherwise
    python benchmarks/domainnet_scale.py --out ../dn_scale --grid default --plan-only   # the default grid's estimate

The ``cpu`` grid is what a user on a 2-core laptop runs on DomainNet (README); ``default`` is params.yaml.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.params import apply_overrides  # noqa: E402
from pipeline.store import TableWriter, write_json, write_table  # noqa: E402

SIZES = {"clipart": 48_129, "infograph": 51_605, "painting": 72_266, "quickdraw": 172_500, "real": 172_947,
         "sketch": 69_128}
CPU_GRID = ["classifier.probes=[ridge]", "operators.names=[none,center]",
            "evaluation.trials=1", "evaluation.selection=[train_val]",
            "gap.cmmd_estimator=ustat", "gap.n_boot=10", "gap.n_subsets=10", "gap.subset_size=1000", "gap.clamp_subset_size=true",
            "promptstyler.arcface.epochs=5"]
STAGES = ["similarity", "train_arcface", "evaluate", "domain_gap", "fewshot_gap", "diagnostics", "results"]


def world(out: Path, scale: float, dim: int = 512, k: int = 345, seed: int = 0, chunk: int = 65_536) -> dict:
    """Write the stores and label files a project holds after its embedding stages; returns the row counts."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.0, (k, dim)).astype(np.float32)
    domains = list(SIZES)
    shifts = {d: (rng.normal(0, 0.6, dim) if i else np.zeros(dim)).astype(np.float32) for i, d in enumerate(domains)}
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    L = (basis * np.sqrt(dim * (np.arange(1, dim + 1) ** -1.0) / (np.arange(1, dim + 1) ** -1.0).sum())).astype(np.float32)
    classes = [f"class_{c:03d}" for c in range(k)]
    meta = {"model": "synthetic-domainnet", "weight_sha256": "0" * 64, "dim": dim, "logit_scale": 100.0}
    counts, row = {}, 0
    with TableWriter(out / "features" / "images.parquet", meta) as w:
        for d in domains:
            n = max(int(round(SIZES[d] * scale)), 2 * k)
            counts[d] = n
            for s in range(0, n, chunk):
                m = min(chunk, n - s)
                y = (np.arange(s, s + m) * 7919) % k  # every class in every domain, shuffled order
                X = means[y] + shifts[d] + rng.standard_normal((m, dim), dtype=np.float32) @ L.T * 1.5
                ids = [f"{i:064x}" for i in range(row, row + m)]
                w.write(pd.DataFrame({"image_id": ids, "domain": d, "class": [classes[c] for c in y], "label": y,
                                      "split": np.where(np.arange(s, s + m) % 5 == 0, "test", "train")}), X)
                row += m
    base = rng.normal(0, 1.0, dim).astype(np.float32)
    rows, vecs = [], []
    for d in domains:
        for kind in ("domain", "domain_avg"):
            rows.append({"text": f"a {d} image", "kind": kind, "domain": d, "class": None})
            vecs.append(base + shifts[d])
    for c, name in enumerate(classes):
        rows.append({"text": f"a photo of a {name}", "kind": "class", "domain": None, "class": name})
        vecs.append(means[c] + rng.normal(0, 0.3, dim).astype(np.float32))
    write_table(out / "features" / "prompts.parquet", pd.DataFrame(rows), np.stack(vecs), meta)
    K = 80
    style = rng.normal(0, 0.3, (K, dim)).astype(np.float32)
    S = (means[None] + style[:, None]).reshape(K * k, dim)
    write_table(out / "features" / "styles.parquet",
                pd.DataFrame({"style": np.repeat(np.arange(K), k), "class": classes * K}), S, meta)
    write_json(out / "data" / "domains.json", {"domains": domains, "descriptions": {d: f"a {d} image" for d in domains}})
    write_json(out / "data" / "classes.json", {"classes": classes, "names": classes})
    return counts


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in GiB, return code) of ``cmd`` under /usr/bin/time -v."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log.read_text())
    return seconds, (int(rss.group(1)) / 2**20 if rss else float("nan")), rc


def main(out: Path = typer.Option(...), scale: float = 1.0, grid: str = "cpu",
         set_: list[str] = typer.Option([], "--set"), plan_only: bool = False,
         stages: str = ",".join(STAGES)) -> None:
    out = out.resolve()
    if not (out / "features" / "images.parquet").exists():
        t0 = time.perf_counter()
        counts = world(out, scale)
        print(f"world: {sum(counts.values()):,} rows {counts} in {time.perf_counter() - t0:.0f} s", flush=True)
    for d in ("stages", "pipeline"):
        shutil.rmtree(out / d, ignore_errors=True)
        shutil.copytree(REPO / d, out / d, ignore=shutil.ignore_patterns("__pycache__"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = apply_overrides(raw, (CPU_GRID if grid == "cpu" else []) + list(set_))
    (out / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.rmtree(out / "cache" / "cells", ignore_errors=True)  # a cold evaluation
    (out / "logs").mkdir(exist_ok=True)
    results = {}
    plan_s, plan_rss, _ = timed([sys.executable, "-m", "pipeline.cli", "plan", "--json"], out, out / "logs" / "plan.log")
    plan = json.loads(re.search(r"\{.*\}", (out / "logs" / "plan.log").read_text(), re.S).group(0))
    print(f"plan ({grid} grid): {plan['to_compute']:,} cells, estimated {plan['estimated_seconds']} s on "
          f"{plan['workers']} workers (plan took {plan_s:.0f} s, {plan_rss:.2f} GiB)", flush=True)
    if plan_only:
        return
    for stage in stages.split(","):
        s, rss, rc = timed([sys.executable, f"stages/{stage}.py"], out, out / "logs" / f"{stage}.log")
        results[stage] = {"seconds": round(s, 1), "peak_rss_gib": round(rss, 2), "rc": rc}
        extra = f"; estimated {plan['estimated_seconds']} s for its fits" if stage == "evaluate" else ""
        print(f"{stage:<14} {s:8.1f} s  peak RSS {rss:5.2f} GiB  rc {rc}{extra}", flush=True)
        if rc:
            print((out / "logs" / f"{stage}.log").read_text()[-2000:])
            break
    if "evaluate" in results and (out / "reports" / "evaluate.json").exists():
        info = json.loads((out / "reports" / "evaluate.json").read_text())
        results["evaluate"].update(fits_seconds=info["seconds"], estimated_seconds=info["plan"]["estimated_seconds"],
                                   cells=info["cells"])
    total = sum(r["seconds"] for r in results.values())
    print(f"every cheap stage: {total:.0f} s, peak RSS {max(r['peak_rss_gib'] for r in results.values()):.2f} GiB")
    write_json(out / "scale_results.json", {"scale": scale, "grid": grid, "plan": plan, "stages": results,
                                            "total_seconds": round(total, 1)})


if __name__ == "__main__":
    typer.run(main)
