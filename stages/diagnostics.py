"""Stage diagnostics: direction alignment and gap-vs-drop per pair (full-sample gaps, and the few-shot ones per k)
-> reports/diagnostics.csv, .json, fewshot_vs_drop.csv, gap_vs_drop.png."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.diagnostics import accuracy_drops, agreement_with_drops, alignment_from_means, domain_means, gap_vs_drop
from pipeline.prompts import description_vectors
from pipeline.reports import scatter_panels
from pipeline.store import iter_blocks, read_checked_prompts, read_json, read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), out_dir: Path = Path("reports")) -> None:
    read_params(params)
    txt, T = read_checked_prompts(images, prompts)
    domains = present_domains(read_table(images, vector="-")[0], read_json(labels / "domains.json")["domains"], "diagnostics")
    classes = read_json(labels / "classes.json")["classes"]
    blocks = ((df["domain"], X, df["label"]) for df, X in iter_blocks(images, stage="diagnostics"))
    means = domain_means(blocks, len(classes))  # one row group of features in memory at a time
    acc = pd.read_csv(out_dir / "accuracy.csv")
    table, corr = gap_vs_drop(pd.read_csv(out_dir / "domain_gap.csv"), accuracy_drops(acc))
    align = {kind: alignment_from_means(means, vectors, domains, classes)
             for kind, vectors in description_vectors(txt, T).items()}
    avg = align["domain_avg"][["source", "target", "alignment_cos", "alignment_cos_class_mean"]]
    table = align["domain"].merge(avg, on=["source", "target"], suffixes=("", "_avg_description")).merge(
        table, on=["source", "target"])
    write_csv(out_dir / "diagnostics.csv", table)
    titles = {m: f"Spearman {c['spearman']} {c['spearman_ci'] or ''} (n = {c['n']} pairs)" for m, c in corr.items()}
    scatter_panels(table.assign(pair=table["source"] + "→" + table["target"]), sorted(corr), "accuracy_drop",
                   out_dir / "gap_vs_drop.png", label="pair", titles=titles)
    drops = agreement_with_drops(pd.read_csv(out_dir / "fewshot_gap.csv"), accuracy_drops(acc))
    write_csv(out_dir / "fewshot_vs_drop.csv", drops)
    metrics = {"gap_vs_drop": corr, "fewshot_gap_vs_drop": {
        m: {k: (None if pd.isna(v) else round(float(v), 4)) for k, v in zip(g.k, g.spearman_vs_drop)}
        for m, g in drops.groupby("metric", sort=False)}}
    metrics["direction_alignment"] = {
        "mean_cos": round(float(table["alignment_cos"].mean()), 4),
        "mean_cos_per_class": round(float(table["alignment_cos_class_mean"].mean()), 4),
        "mean_cos_avg_description": round(float(table["alignment_cos_avg_description"].mean()), 4)}
    write_json(out_dir / "diagnostics.json", metrics)
    print(table[["source", "target", "alignment_cos", "accuracy_drop"]].to_string(index=False))


if __name__ == "__main__":
    run(app)
