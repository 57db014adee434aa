"""Stage domain_gap: FID / KID / MMD / CMMD and the covariance gaps for every ordered domain pair, with confidence
intervals for the population gap, and a CLIP inception score per domain."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.imagefree.zeroshot import ZeroShotClassifier
from pipeline.coverage import present_domains
from pipeline.gaps import gap_table, inception_score
from pipeline.prompts import class_text_weights
from pipeline.reports import heatmap
from pipeline.store import read_feature_stores, read_json, read_metadata, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    img, X, txt, T = read_feature_stores(images, prompts, stage="domain_gap")
    domains = present_domains(img, read_json(labels / "domains.json")["domains"], "domain_gap")
    table, info = gap_table(X, img["domain"].to_numpy(), domains, p.gap)
    write_csv(out_dir / "domain_gap.csv", table)
    for metric, m in table.groupby("metric"):
        grid = m.pivot(index="source", columns="target", values="value").loc[domains, domains].reset_index()
        heatmap(grid, out_dir / "gap_plots" / f"{metric}.png", f"{metric}: source (rows) vs target (columns)")
    zs = ZeroShotClassifier.for_model(class_text_weights(txt, T, read_json(labels / "classes.json")["classes"]),
                                      read_metadata(images))
    dom = img["domain"].to_numpy()
    cross = table[table.source != table.target].groupby("metric")["value"].mean()
    write_json(out_dir / "domain_gap.json", {
        "clip_inception_score": {d: round(inception_score(zs.predict_proba(X[dom == d])), 4) for d in domains},
        "mean_cross_domain_gap": {k: float(f"{v:.6g}") for k, v in cross.items()},
        **info,
    })
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    run(app)
