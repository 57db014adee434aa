"""A CI / pull-request report, as CML's workflow makes one: `dvc metrics diff` as a markdown table and every
`dvc plots diff` rendered to PNG images beside a ``report.md`` (``clipdg report``); and the check that a
planted breakage moves the headline metrics (``.ci/pipeline.sh``).

DVC renders image plots itself; its data plots come back as Vega-Lite specs with their data inline
(``dvc plots diff --json``), drawn here with matplotlib (one line per revision), so no browser or Vega
tool is needed on a CI runner.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .reports import save_figure
from .store import write_text


def dvc(*args: str, cwd: str | Path = ".") -> str:
    r = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ValueError(f"dvc {' '.join(args)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return r.stdout


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def vega_fields(spec: dict) -> tuple[str, list[str]]:
    """(x field, y fields) of a DVC Vega-Lite template spec."""
    x = spec["encoding"]["x"]["field"]
    ys = []

    def walk(node):
        if isinstance(node, dict):
            enc = node.get("encoding", {})
            f = enc.get("y", {}).get("field") if isinstance(enc.get("y"), dict) else None
            if f and f not in ys:
                ys.append(f)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return x, ys


def render_vega(spec: dict, title: str, path: Path) -> Path:
    """A DVC data plot (Vega-Lite, data inline) as a PNG: y against x, one line per revision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, ys = vega_fields(spec)
    values = spec.get("data", {}).get("values", [])
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for y in ys:
        for rev in dict.fromkeys(v.get("rev", "") for v in values):
            pts = sorted((float(v[x]), float(v[y])) for v in values if v.get("rev", "") == rev and x in v and y in v)
            if pts:
                ax.plot(*zip(*pts), lw=1, label=f"{rev} {y}" if len(ys) > 1 else rev)
    ax.set_xlabel(x)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def render_plots(plots: dict, out_dir: Path) -> list[tuple[str, list[str], str]]:
    """``dvc plots diff --json`` -> [(plot name, revisions, PNG path relative to ``out_dir``)]."""
    out = []
    for name, entries in plots.get("data", {}).items():
        for i, e in enumerate(entries):
            if e.get("type") == "image":
                out.append((name, e.get("revisions", []), str(Path(e["url"]).resolve().relative_to(out_dir.resolve()))))
            elif e.get("type") == "vega":
                png = out_dir / f"{_slug(name)}-{i}.png"
                render_vega(e["content"], name, png)
                out.append((name, e.get("revisions", []), png.name))
    return out


def make_report(out_dir: str | Path, base: str, metrics: list[str] | None = None, plots: list[str] | None = None,
                cwd: str | Path = ".") -> Path:
    """``out_dir``/report.md: the metrics diff (markdown) against ``base`` and every plot of the diff as an
    image beside it. ``metrics`` / ``plots``: targets (default: what dvc.yaml declares)."""
    out_dir = Path(out_dir).resolve()
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    m_args = ["metrics", "diff", base, "--md", "--all"] + (["--targets", *metrics] if metrics else [])
    p_args = ["plots", "diff", base, "--json", "-o", str(out_dir / "plots")] + (["--targets", *plots] if plots else [])
    table = dvc(*m_args, cwd=cwd).strip() or "(no metric changed)"
    images = render_plots(json.loads(dvc(*p_args, cwd=cwd) or "{}"), out_dir) if plots != [] else []
    lines = [f"# Pipeline report: workspace vs {base}", "", "## Metrics", "", table, "", "## Plots", ""]
    for name, revs, png in images:
        lines += [f"**{name}** ({', '.join(revs)})", "", f"![{name}]({png})", ""]
    path = out_dir / "report.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a.b.c": value} of a nested metrics dict."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) else {key: v})
    return out


def moved(before: dict, after: dict, min_change: float = 0.05, field: str = "mean") -> dict:
    """{metric: (before, after)} of the headline ``field`` values that moved by at least ``min_change``."""
    a, b = flatten(before), flatten(after)
    return {k: (a[k], b[k]) for k in a if k.endswith(f".{field}") and k in b and a[k] is not None and b[k] is not None
            and abs(a[k] - b[k]) >= min_change}
