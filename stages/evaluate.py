"""Stage evaluate: every method on every setting over evaluation.trials partitions, with model selection
-> reports/accuracy.csv (one row per trial x selection x setting x method: the chosen hyper-parameters,
their validation accuracy, the test accuracy) + reports/evaluate.json. Cells come from the cell cache
when they were computed before (evaluation.cache_dir)."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.cellcache import CellCache
from pipeline.coverage import present_domains
from pipeline.evaluation import evaluate
from pipeline.featcache import column_of
from pipeline.imagefree import IMAGE_FREE
from pipeline.params import project_path
from pipeline.prompts import class_text_weights, description_vectors
from pipeline.store import EMBEDDING, read_feature_stores, read_json, read_metadata, read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), arcface: Path = Path("models/promptstyler_arcface.npz"),
         accuracy: Path = Path("reports/accuracy.csv"), report: Path = Path("reports/evaluate.json")) -> None:
    p = read_params(params)
    img, X, txt, T = read_feature_stores(images, prompts, vector=column_of(p.classifier.features), stage="evaluate")
    joint = X if p.classifier.features == "projected" else read_table(images, EMBEDDING)[1]
    meta, classes = read_metadata(images), read_json(labels / "classes.json")["classes"]
    domains = present_domains(img, read_json(labels / "domains.json")["domains"], "evaluate")
    text = description_vectors(txt, T)
    context = {"class_weights": class_text_weights(txt, T, classes), "classes": classes, "arcface": arcface,
               "image_meta": meta}
    image_free = {n: IMAGE_FREE[n].build(context) for n in IMAGE_FREE.check(p.evaluation.image_free)}
    cache = CellCache(project_path(p.evaluation.cache_dir))
    acc, info = evaluate(img, X, text, domains, classes, p, image_free, cache, fixed_test=bool(meta.get("trained_on")),
                         progress=True, joint=joint)
    cache.save()
    write_csv(accuracy, acc)
    write_json(report, {**info, "domains": domains, "trained_on": meta.get("trained_on")})
    print(f"evaluate: {info['cells']} cells ({info['computed']} computed, {info['cells'] - info['computed']} from the "
          f"cache), {info['trials']} trials{' with the manifest test split fixed' if info['fixed_test'] else ''}")


if __name__ == "__main__":
    run(app)
