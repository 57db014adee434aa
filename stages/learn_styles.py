"""Stage learn_styles: PromptStyler's K style word vectors with the text encoder frozen (GPU when present)
-> features/styles.parquet (style, class, embedding: the K x N style-content features),
   features/style_words.parquet (style, embedding: the word vectors s_i), reports/promptstyler_styles.json."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.encoders import load_checked_encoder, provenance
from pipeline.livelog import log_curves
from pipeline.promptstyler import learn_styles, mean_abs_cos
from pipeline.store import read_json, write_csv, write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), model: Path = Path("models/model.json"),
         out: Path = Path("features/styles.parquet"),
         words: Path = Path("features/style_words.parquet"), report: Path = Path("reports/promptstyler_styles.json"),
         log: Path = Path("reports/promptstyler_styles.csv")) -> None:
    p = read_params(params, model=True)
    ps = p.promptstyler
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    classes = read_json(labels / "classes.json")
    styles = learn_styles(encoder, classes["classes"], names=classes["names"],
                          templates=read_json(labels / "templates.json")["templates"], **ps.model_dump(exclude={"arcface"}))
    df, F = styles.table()
    meta = provenance(encoder)
    write_table(out, df, F, metadata=meta)
    write_table(words, pd.DataFrame({"style": range(len(styles.words))}), styles.words, metadata=meta)
    write_csv(log, styles.log)
    log_curves(report.parent / "learn_styles", styles.log, "style", ["l_style", "l_content"])  # DVC plots: per style
    summary = {"k": ps.k, "iterations": ps.iterations, "style_mean_abs_cos": round(mean_abs_cos(styles.style_features), 4),
               "content_accuracy": round(styles.content_accuracy(), 4),
               "seconds_per_style": round(float(styles.log["seconds"].mean()), 3), "device": encoder.device}
    write_json(report, summary)
    print(f"learn_styles: {summary}")


if __name__ == "__main__":
    run(app)
