"""Stage similarity: mean cosine between domain descriptions and each domain's images (seed 000, Table 1)."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.metrics import own_description_top1, similarity_from_blocks
from pipeline.reports import heatmap
from pipeline.store import iter_blocks, read_checked_prompts, read_json, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), images: Path = Path("features/images.parquet"),
         prompts: Path = Path("features/prompts.parquet"), out_dir: Path = Path("reports")) -> None:
    read_params(params)
    domains = read_json(labels / "domains.json")["domains"]
    txt, T = read_checked_prompts(images, prompts)
    kinds = (("domain", "single"), ("domain_avg", "class_averaged"))
    descs = {}
    for kind, _ in kinds:
        rows = [txt.index[(txt["kind"] == kind) & (txt["domain"] == d)] for d in domains]
        descs[kind] = [(txt.at[r[0], "text"], T[r[0]]) for r in rows if len(r)]
    every = [d for kind, _ in kinds for d in descs[kind]]  # one pass over the store, one row group at a time
    blocks = ((df["domain"], X) for df, X in iter_blocks(images, stage="similarity"))
    both = similarity_from_blocks(every, blocks, domains)
    tables, summary, at = [], {}, 0
    for kind, label in kinds:
        t = both.iloc[at:at + len(descs[kind])].reset_index(drop=True)
        at += len(descs[kind])
        summary[label] = {"own_description_top1": own_description_top1(t, [d for d, _ in descs[kind]])}
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    write_csv(out_dir / "similarity.csv", table)
    pairs = table.melt(id_vars="description", var_name="domain", value_name="cos")
    write_csv(out_dir / "similarity_pairs.csv", pd.DataFrame({"pair": pairs["description"] + " | " + pairs["domain"],
                                                              "cos": pairs["cos"]}))
    heatmap(table, out_dir / "similarity.png", "mean cos(E_T(description), E_I(x)) per image domain")
    write_json(out_dir / "similarity.json", summary)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    run(app)
