"""Stage fewshot_gap: every gap from k target images (``fewshot.k``) over repeated draws, with its interval,
and how well k images rank the domain pairs -> reports/fewshot_gap.csv, fewshot_summary.csv,
fewshot_gap.json, fewshot_plots/<metric>.png (stage diagnostics adds the agreement with the accuracy drop)."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.gaps.fewshot import fewshot_table, ranking_agreement, smallest_k
from pipeline.reports import fewshot_plot
from pipeline.store import read_json, read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    img, X, _ = read_table(images)
    domains = present_domains(img, read_json(labels / "domains.json")["domains"], "fewshot_gap")
    full = pd.read_csv(out_dir / "domain_gap.csv")
    sigma = read_json(out_dir / "domain_gap.json").get("mmd_sigma")
    table = fewshot_table(X, img["domain"].to_numpy(), domains, p.fewshot, p.gap, full, sigma, progress=True)
    summary = ranking_agreement(table)
    write_csv(out_dir / "fewshot_gap.csv", table)
    write_csv(out_dir / "fewshot_summary.csv", summary)
    for metric in dict.fromkeys(table["metric"]):
        fewshot_plot(table, summary, metric, out_dir / "fewshot_plots" / f"{metric}.png")
    write_json(out_dir / "fewshot_gap.json", {"smallest_k_spearman_0.9": smallest_k(summary, 0.9),
                                              "draws": p.fewshot.draws, "ci": p.gap.ci})
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    run(app)
