"""Stage evaluate: zero-shot, PromptStyler (ArcFace on style features), linear probes (logreg / svm / softmax),
DANN and every feature operator on every domain pair -> reports/accuracy.csv. Headline metrics are written by
the diagnostics stage, which adds the gap-vs-drop correlations."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.classifiers import ArcFace
from pipeline.coverage import present_domains
from pipeline.evaluation import evaluate_grid, image_free_rows
from pipeline.prompts import class_text_weights, domain_text_vectors
from pipeline.store import check_same_model, read_feature_stores, read_metadata, write_csv

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), arcface: Path = Path("models/promptstyler_arcface.npz"),
         accuracy: Path = Path("reports/accuracy.csv")) -> None:
    p = read_params(params)
    img, X, txt, T = read_feature_stores(images, prompts)
    domains, classes = present_domains(img, p.data.domains, "evaluate"), p.data.classes
    domain_text = {k: domain_text_vectors(txt, T, k) for k in ("domain", "domain_avg")}
    acc = evaluate_grid(img, X, domain_text, class_text_weights(txt, T, classes), domains, p.classifier, p.operators,
                        p.translate, classes)
    styler = ArcFace.load(arcface)  # PromptStyler: trained on style-content text features only
    check_same_model(images, read_metadata(images), arcface, styler.provenance_)
    rows = image_free_rows(img, X, styler, domains, "promptstyler", "arcface", classes)
    acc = pd.concat([acc, pd.DataFrame(rows, columns=acc.columns)], ignore_index=True)
    write_csv(accuracy, acc)
    print(acc.groupby(["protocol", "method"], sort=False)["accuracy"].mean().to_string(float_format="%.4f"))


if __name__ == "__main__":
    run(app)
