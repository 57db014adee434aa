"""Stage evaluate: every method on every setting over evaluation.trials partitions, with model selection
-> reports/accuracy.csv (one row per trial x selection x setting x method: the chosen hyper-parameters,
their validation accuracy, the test accuracy) + reports/evaluate.json. Cells come from the cell cache
when they were computed before (evaluation.cache_dir); the plan and its estimated time are logged first
(`clipdg plan` prints them without fitting anything)."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.cellcache import CellCache
from pipeline.evaluate_io import read_inputs
from pipeline.evaluation import evaluate
from pipeline.imagefree import IMAGE_FREE
from pipeline.params import project_path
from pipeline.store import write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), arcface: Path = Path("models/promptstyler_arcface.npz"),
         searched: Path = Path("features/descriptions_searched.parquet"),
         learned: Path = Path("features/descriptions_learned.parquet"),
         accuracy: Path = Path("reports/accuracy.csv"), report: Path = Path("reports/evaluate.json")) -> None:
    p = read_params(params)
    inp = read_inputs(p, labels, images, prompts, arcface, descriptions=(searched, learned))
    image_free = {n: IMAGE_FREE[n].build(inp.context) for n in IMAGE_FREE.check(p.evaluation.image_free)}
    cache = CellCache(project_path(p.evaluation.cache_dir))
    acc, info = evaluate(inp.images, inp.X, inp.text, inp.domains, inp.classes, p, image_free, cache,
                         fixed_test=bool(inp.meta.get("trained_on")), progress=True, joint=inp.joint)
    cache.save()
    size = {k: v for k, v in cache.report().items() if k in ("cells", "shards", "bytes", "by_version", "starts")}
    write_csv(accuracy, acc)
    write_json(report, {**info, "domains": inp.domains, "trained_on": inp.meta.get("trained_on"), "cell_cache": size})
    print(f"evaluate: {info['cells']} cells ({info['computed']} computed, {info['cells'] - info['computed']} from the "
          f"cache), {info['trials']} trials{' with the manifest test split fixed' if info['fixed_test'] else ''}"
          f" in {info['seconds']:.1f} s (estimated {info['plan']['estimated_seconds']} s; {info['warm_started_fits']} fits "
          f"from stored coefficients); cell cache "
          f"{size['cells']:,} cells, {size['bytes'] / 2**20:.1f} MiB (`clipdg cells --prune` drops old code versions)")


if __name__ == "__main__":
    run(app)
