"""Training curves as DVC plots, in DVCLive's layout (the field's convention for DVC): ``<dir>/plots/metrics/
<name>.tsv`` (columns step, <name>) and ``<dir>/metrics.json`` (the last values), which dvc.yaml declares as
plots so that ``dvc plots show / diff`` and ``dvc exp show`` include them. The curves are replayed from a
training log after training (the training code stays free of logging), into a temporary directory renamed
onto ``<dir>`` at the end, so a killed stage never leaves half a log."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd


def log_curves(out_dir: str | Path, log: pd.DataFrame, step: str, metrics: list[str], group: str | None = None) -> Path:
    """One DVCLive metric per column of ``metrics`` (per value of ``group``: ``<group value>/<metric>``),
    stepped by the ``step`` column. An empty log (nothing was trained) writes only ``metrics.json``: ``{}``."""
    from dvclive import Live

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if len(log):
            with Live(dir=str(tmp), dvcyaml=None, save_dvc_exp=False, report=None, monitor_system=False) as live:
                for s, rows in log.groupby(step, sort=True):
                    live.step = int(s)
                    for r in rows.itertuples(index=False):
                        for m in metrics:
                            name = f"{getattr(r, group)}/{m}" if group else m
                            live.log_metric(name, float(getattr(r, m)), plot=True)
        if not any(tmp.iterdir()):  # nothing trained: an empty metrics file (git keeps no empty directory)
            (tmp / "metrics.json").write_text("{}\n")
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
