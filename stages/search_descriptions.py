"""Stage search_descriptions: each domain's candidate descriptions (descriptions.candidates, else the built-in pool)
embedded once, scored by Sim(t, D) on the domain's unlabelled train-split images and by their specificity; the
one ``descriptions.select`` picks becomes the domain's ``domain_searched`` description (operator translate_searched)
-> features/descriptions_searched.parquet, features/description_candidates.parquet (every candidate, for stage
description_accuracy), reports/description_search.csv, reports/description_search.json."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.description_search import candidate_pools, search_table
from pipeline.encoders import load_checked_encoder, provenance
from pipeline.store import read_json, read_table, write_csv, write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), model: Path = Path("models/model.json"),
         images: Path = Path("features/images.parquet"), out: Path = Path("features/descriptions_searched.parquet"),
         candidates: Path = Path("features/description_candidates.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params, model=True)
    img, X, meta = read_table(images)
    space = read_json(labels / "domains.json")
    domains, described = present_domains(img, space["domains"], "search_descriptions"), space["descriptions"]
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    pool = candidate_pools({d: described[d] for d in domains}, p.descriptions.candidates)
    T = encoder.encode_texts(pool["text"].tolist())
    train = (img["split"] == "train").to_numpy()  # the manifest's train split, unlabelled
    table = search_table(pool, T, X[train], img["domain"].to_numpy()[train], domains, p.descriptions.select)
    chosen = table[table["selected"]]
    info = {**provenance(encoder), "select": p.descriptions.select}
    write_table(out, chosen[["domain", "text"]].assign(kind="domain_searched"), T[chosen.index.to_numpy()],
                metadata=info)
    write_table(candidates, table, T, metadata=info)
    write_csv(out_dir / "description_search.csv", table)
    write_json(out_dir / "description_search.json", {
        "select": p.descriptions.select, "images": "the manifest's train split of each domain, unlabelled",
        "selected": dict(zip(chosen["domain"], chosen["text"])), "trained_on": meta.get("trained_on")})
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    run(app)
