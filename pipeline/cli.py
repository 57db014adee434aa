"""``clipdg``: the helper commands around ``dvc repro`` (a typer console script, declared in pyproject.toml).

    clipdg fetch HUB_ID DIR         save a hub model as a directory model.name can name
    clipdg convert SRC DIR          an open_clip checkpoint directory -> a transformers CLIP directory
    clipdg random-clip DIR          a random CLIP / SigLIP with the real vocabulary (tests, CI, benchmarks)
    clipdg list [REGISTRY]          the registries and the params key each is chosen by
    clipdg validate [params.yaml]   every check the stages make on params, without running anything
    clipdg fingerprint MODEL        what stage model would write to models/model.json
    clipdg plan [-S key=value]      what stage evaluate would compute and how long it should take (fits nothing)
    clipdg cells [--prune]          the cell cache's size per code version; prune the versions not in use
    clipdg report --base REV        metrics diff + every plot of `dvc plots diff` as images, in report.md (CI / PRs)

Known input errors print one line and exit 1, as the stages do.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Helpers around `dvc repro` for the CLIP feature-cache pipeline (fetch, convert, list, validate).")


def registries() -> dict:
    """{registry: (params key, {entry: one-line description})} of every extension point."""
    from .adapters import ADAPTERS
    from .datasets import DATASETS, template_sets
    from .encoders import ENCODERS
    from .gaps import GAP_METRICS
    from .imagefree import IMAGE_FREE
    from .operators import OPERATORS
    from .probes import PROBES
    from .selection import SELECTIONS

    def doc(entry) -> str:
        """The first line of the entry's own docstring, else of its module's."""
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else getattr(entry, "__doc__", None)
        text = (own or sys.modules[entry.__module__].__doc__ or "").strip().splitlines()
        return text[0].strip() if text else ""

    def operator(name) -> str:
        op = OPERATORS[name]
        hyper = ", ".join(f"{k}={v!r}" for k, v in op.hyper.items())
        return f"scope {op.scope}, uses {op.uses}; {op.section()}: {{{hyper}}}" if hyper else f"scope {op.scope}, uses {op.uses}"

    def dataset(name) -> str:
        d = DATASETS[name]
        return f"domains {d.domains}" if d.domains else "domains: data.domains or the folders under data.root"

    return {
        "datasets": ("data.dataset", {n: dataset(n) for n in DATASETS.names()}),
        "templates": ("prompts.templates", {n: "a shipped template set (or give a file path)" for n in template_sets()}),
        "encoders": ("model.name prefix (<family>:DIR)", {n: doc(ENCODERS[n]) for n in ENCODERS.names()}),
        "operators": ("operators.names", {n: operator(n) for n in OPERATORS.names()}),
        "probes": ("classifier.probes", {n: doc(PROBES[n]) for n in PROBES.names()}),
        "adapters": ("classifier.probes", {n: doc(ADAPTERS[n]) for n in ADAPTERS.names()}),
        "image_free": ("evaluation.image_free", {n: doc(IMAGE_FREE[n]) for n in IMAGE_FREE.names()}),
        "gaps": ("gap.metrics", {n: doc(GAP_METRICS[n]) for n in GAP_METRICS.names()}),
        "selections": ("evaluation.selection", {n: doc(SELECTIONS[n]) for n in SELECTIONS.names()}),
    }


def validate_params(path: str | Path = "params.yaml") -> list[str]:
    """Every check the stages make on ``params.yaml`` before they read an image: the schema, the dataset (preset,
    folders, classes shared by every domain, descriptions, prompt names), the template set, the model directory
    and family, every registry name and operator section. Returns what was checked; raises the first problem
    (one line, naming the key)."""
    from .datasets import discover, resolve
    from .encoders import ENCODERS
    from .evaluation import check_feature_space, learner_variants, operator_variants
    from .gaps import GAP_METRICS
    from .imagefree import IMAGE_FREE
    from .params import MINICLIP_DIR, check_model_name, load_params, project_path, split_model_name
    from .selection import SELECTIONS

    p = load_params(path)
    checked = [f"{path}: schema"]
    space = resolve(p.data, p.prompts, *discover(project_path(p.data.root), p.data))  # folder names only: no image read
    checked += [f"data.dataset: {space.dataset}, {len(space.domains)} domains x {len(space.classes)} classes under "
                f"{project_path(p.data.root)}", f"prompts.templates: {space.template_source} ({len(space.templates)} "
                "templates)"]
    family, raw = split_model_name(p.model.name)
    if family is not None:
        ENCODERS[family]
    if Path(raw) != Path(MINICLIP_DIR):  # train_clip writes that one
        check_model_name(p.model.name)
    checked.append(f"model.name: {p.model.name}")
    operator_variants(p)
    learner_variants(p)
    check_feature_space(p)
    for names, registry in ((p.evaluation.selection, SELECTIONS), (p.evaluation.image_free, IMAGE_FREE),
                            (p.gap.metrics, GAP_METRICS)):
        registry.check(names)
    checked.append("registries: operators (and their sections), probes, adapters, selections, image-free, gaps")
    return checked


def _run(fn):
    """Known input errors: one line on stderr, exit 1 (as ``stages/_common.run``)."""
    try:
        return fn()
    except (ValueError, FileNotFoundError, KeyError) as exc:
        typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        raise typer.Exit(1)


@app.command()
def fetch(name: str = typer.Argument(..., help="hub id: org/name (transformers CLIP or SigLIP), or hf-hub:org/name "
                                               "(an open_clip checkpoint)"),
          out_dir: Path = typer.Argument(..., help="the directory to create; then set model.name to it")) -> None:
    """Save a hub model as a local directory (needs the network or a filled Hugging Face cache)."""
    from .encoders import fetch as do_fetch

    typer.echo(_run(lambda: do_fetch(name, out_dir)))


@app.command()
def convert(src: Path = typer.Argument(..., help="an open_clip checkpoint directory (open_clip_config.json + weights)"),
            out_dir: Path = typer.Argument(..., help="the transformers CLIP directory to create")) -> None:
    """Convert an open_clip ViT CLIP into a transformers CLIP directory (equal features; model.name can also
    read the open_clip directory itself with the prefix open_clip:)."""
    from .encoders.open_clip import save_converted

    typer.echo(_run(lambda: save_converted(src, out_dir)))


@app.command("random-clip")
def random_clip(out_dir: Path, preset: str = typer.Option("tiny", help="tiny | small-128 | small-512 | vit-b-32"),
                seed: int = typer.Option(0, help="weight initialisation seed"),
                family: str = typer.Option("clip", help="clip (CLIPModel) | siglip (SiglipModel)")) -> None:
    """Build a randomly initialised CLIP or SigLIP in transformers format, with a real tokenizer."""
    from .randomclip import PRESETS, build_random_clip, build_random_siglip

    def build():
        if preset not in PRESETS or family not in ("clip", "siglip"):
            raise ValueError(f"--preset {preset!r} / --family {family!r}: choose a preset of {sorted(PRESETS)} "
                             "and a family of clip, siglip")
        return (build_random_clip if family == "clip" else build_random_siglip)(out_dir, preset, seed)

    typer.echo(_run(build))


@app.command("list")
def list_registries(registry: Optional[str] = typer.Argument(None, help="one registry (default: all)"),
                    as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """List the registries (datasets, templates, encoders, operators, probes, adapters, image_free, gaps,
    selections): each entry and the params key that chooses it."""
    regs = registries()
    if registry is not None:
        if registry not in regs:
            from .errors import did_you_mean

            typer.echo(f"error: unknown registry {registry!r}{did_you_mean(registry, regs)}; choose from "
                       f"{sorted(regs)}", err=True)
            raise typer.Exit(1)
        regs = {registry: regs[registry]}
    if as_json:
        typer.echo(json.dumps({k: {"params_key": key, "entries": entries} for k, (key, entries) in regs.items()},
                              indent=1))
        return
    for name, (key, entries) in regs.items():
        typer.echo(f"{name}  ({key})")
        for entry, text in entries.items():
            typer.echo(f"  {entry:<18} {text}")


@app.command()
def validate(params: Path = typer.Argument(Path("params.yaml"), help="the params file to check")) -> None:
    """Check params.yaml as the stages would, without running anything; exit 1 with one line on a problem."""
    for line in _run(lambda: validate_params(params)):
        typer.echo(f"ok  {line}")


@app.command()
def fingerprint(model: str = typer.Argument(..., help="a model.name: [family:]DIR")) -> None:
    """Print what stage model writes to models/model.json for MODEL (family, weights, preprocessing, text)."""
    from .encoders import model_fingerprint

    typer.echo(json.dumps(_run(lambda: model_fingerprint(model)), indent=1))


@app.command()
def plan(params: Path = typer.Option(Path("params.yaml"), help="the params file"),
         set_: list[str] = typer.Option([], "--set", "-S", help="section.key=value, as `dvc exp run -S` (repeatable)"),
         labels: Path = typer.Option(Path("data")), images: Path = typer.Option(Path("features/images.parquet")),
         prompts: Path = typer.Option(Path("features/prompts.parquet")),
         timed: bool = typer.Option(True, "--time/--no-time", help="calibrate the solvers and estimate the time"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Stage evaluate's plan on the cached features: cells total / cached / to compute, per learner and operator,
    and the time it should take on this machine (a short calibration of the solvers). Fits nothing."""
    import logging

    from .cellcache import CellCache
    from .evaluate_io import DESCRIPTION_STORES, read_inputs
    from .evaluation import check_feature_space, plan as make_plan, plan_preview
    from .params import load_params, project_path

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def go():
        p = load_params(params, set_)
        if not timed:
            p = p.model_copy(update={"evaluation": p.evaluation.model_copy(update={"preview": False})})
        check_feature_space(p)
        inp = read_inputs(p, labels, images, prompts, Path("-"), stage="clipdg plan",
                          descriptions=tuple(d for d in DESCRIPTION_STORES if d.is_file()))
        cache = CellCache(project_path(p.evaluation.cache_dir))
        pl = make_plan(inp.images, inp.X, inp.domains, p, cache, bool(inp.meta.get("trained_on")), inp.text)
        return plan_preview(inp.images, inp.X, p, pl)

    pv = _run(go)
    typer.echo(json.dumps(pv.as_dict(), indent=1) if as_json else pv.line())


@app.command()
def cells(params: Path = typer.Option(Path("params.yaml"), help="the params file (evaluation.cache_dir)"),
          do_prune: bool = typer.Option(False, "--prune", help="drop the cells of code versions other than this checkout's"),
          keep: list[str] = typer.Option([], "--keep", help="also keep this code version (repeatable; e.g. another branch's)")) -> None:
    """The cell cache's size (shards, bytes, cells per code version); --prune drops the versions not in use."""
    from .cellcache import cache_report, code_version, prune
    from .params import load_params, project_path

    root = project_path(_run(lambda: load_params(params)).evaluation.cache_dir)
    if do_prune:
        r = prune(root, {code_version(), *keep})
        typer.echo(f"pruned {root}: {r['dropped']:,} cells dropped, {r['kept']:,} kept; "
                   f"{r['bytes_before'] / 2**20:.1f} MiB -> {r['bytes_after'] / 2**20:.1f} MiB; "
                   f"{r['starts_dropped']:,} warm-start files dropped")
    rep = cache_report(root)
    typer.echo(f"{root}: {rep['cells']:,} cells in {rep['shards']} shards, {rep['bytes'] / 2**20:.1f} MiB")
    for version, n in sorted(rep["by_version"].items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {version:<16} {n:>10,} cells{'  (this checkout)' if version == rep['current'] else ''}")
    for version, s in sorted(rep["starts"].items(), key=lambda kv: -kv[1]["bytes"]):
        typer.echo(f"  {version:<16} {s['files']:>10,} warm-start files, {s['bytes'] / 2**20:.1f} MiB"
                   f"{'  (this checkout)' if version == rep['current'] else ''}")


@app.command()
def report(base: str = typer.Option("HEAD", help="the revision to compare the workspace with"),
           out: Path = typer.Option(Path("report"), help="the directory for report.md and its images"),
           metrics: list[str] = typer.Option([], help="metrics targets (default: dvc.yaml's)"),
           plots: list[str] = typer.Option([], help="plots targets (default: dvc.yaml's)")) -> None:
    """A pull-request report as CML's workflow makes one: `dvc metrics diff` (markdown) and every plot of
    `dvc plots diff` as a PNG, in OUT/report.md; prints its path (post it with `gh pr comment --body-file`)."""
    from .cireport import make_report

    typer.echo(_run(lambda: make_report(out, base, metrics or None, plots or None)))


def main() -> None:  # the console script
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
