"""Stage results: DomainBed-style tables from reports/accuracy.csv -> reports/results.md, results.tex and
reports/metrics.json (the headline for `dvc metrics diff` / `dvc exp show`: training-domain validation's Avg,
mean and SE over trials, per protocol x method) and reports/metrics_all.json (every selection method)."""
import json
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.store import write_json, write_text
from pipeline.tables import (all_metrics, encoder_text, features_text, headline, latex, markdown, summarize,
                             validation_text)

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), accuracy: Path = Path("reports/accuracy.csv"),
         report: Path = Path("reports/evaluate.json"), out_dir: Path = Path("reports")) -> None:
    read_params(params)
    info = json.loads(report.read_text())
    summary = summarize(pd.read_csv(accuracy, keep_default_na=False, na_values=[""]))
    fixed = (" The test split is the manifest's in every trial (the features come from a model trained on this "
             "dataset's train split); trials redraw train / validation only.") if info["fixed_test"] else \
        " Each trial redraws train / validation / test."
    caption = (f"Accuracy (%) on the target's test rows, mean ± standard error over {info['trials']} trials "
               f"(data.split_seed + t); {validation_text(info['val_fraction'])}{features_text(info)}{encoder_text(info)}{fixed}")
    write_text(out_dir / "results.md", markdown(summary, info["domains"], caption))
    write_text(out_dir / "results.tex", latex(summary, info["domains"], caption))
    write_json(out_dir / "metrics.json", headline(summary))
    write_json(out_dir / "metrics_all.json", all_metrics(summary))
    print(markdown(summary, info["domains"], caption))


if __name__ == "__main__":
    run(app)
