"""Stage description_accuracy: each candidate description of stage search_descriptions scored by its translation
accuracy (LODO on its own domain, training-domain validation, the evaluation's trials; the first probe at the C
grid). It reads labels, so it is an analysis beside the label-free search, and a classifier edit reruns it alone
-> reports/description_accuracy.csv, reports/description_accuracy.json."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.description_accuracy import defaults, summary, translation_accuracy
from pipeline.params import project_path
from pipeline.starts import starts_root
from pipeline.store import read_json, read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"),
         images: Path = Path("features/images.parquet"),
         candidates: Path = Path("features/description_candidates.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    img, X, meta = read_table(images)
    table, T, _ = read_table(candidates)
    domains = present_domains(img, read_json(labels / "domains.json")["domains"], "description_accuracy")
    starts = starts_root(project_path(p.evaluation.cache_dir), p.evaluation.warm_starts)
    table["translation_accuracy"] = translation_accuracy(X, img, domains, table, T, defaults(table, T), p,
                                                         fixed_test=bool(meta.get("trained_on")), starts_dir=starts)
    write_csv(out_dir / "description_accuracy.csv", table)
    write_json(out_dir / "description_accuracy.json", {**summary(table), "trained_on": meta.get("trained_on")})
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    run(app)
