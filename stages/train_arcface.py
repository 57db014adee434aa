"""Stage train_arcface: PromptStyler's linear classifier, ArcFace loss, trained on the style-content
features only (no image) -> models/promptstyler_arcface.npz."""
from pathlib import Path

import typer
from _common import read_params, run

import pandas as pd

from pipeline.arcface import ArcFace
from pipeline.livelog import log_curves
from pipeline.store import read_json, read_table, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), styles: Path = Path("features/styles.parquet"),
         out: Path = Path("models/promptstyler_arcface.npz"), report: Path = Path("reports/arcface.json")) -> None:
    p = read_params(params)
    df, F, meta = read_table(styles)
    label = {c: i for i, c in enumerate(read_json(labels / "classes.json")["classes"])}  # the manifest's labels
    y = df["class"].map(label).to_numpy()
    clf = ArcFace(**p.promptstyler.arcface.model_dump()).fit(F, y)
    clf.save(out, provenance=meta)
    write_json(report, {"n_features": len(df), "train_accuracy": round(float(clf.score(F, y)), 4)})
    log_curves(report.parent / "train_arcface", pd.DataFrame(clf.history_), "epoch", ["loss", "train_accuracy"])
    print(f"train_arcface: {len(df)} style-content features -> {out}")


if __name__ == "__main__":
    run(app)
