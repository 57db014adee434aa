"""Stage search_descriptions: each domain's candidate descriptions (descriptions.candidates, else the built-in pool)
embedded once, scored by Sim(t, D) on the domain's unlabelled train-split images and by their specificity; the
one ``descriptions.select`` picks becomes the domain's ``domain_searched`` description (operator translate_searched).
Each candidate's translation accuracy (LODO on its own domain, training-domain validation) is reported beside it
-> features/descriptions_searched.parquet, reports/description_search.csv, reports/description_search.json."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.description_search import candidate_pools, search_table, translation_accuracy
from pipeline.encoders import load_checked_encoder, provenance
from pipeline.params import project_path
from pipeline.starts import starts_root
from pipeline.store import read_json, read_table, write_csv, write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), model: Path = Path("models/model.json"),
         images: Path = Path("features/images.parquet"), out: Path = Path("features/descriptions_searched.parquet"),
         out_dir: Path = Path("reports")) -> None:
    p = read_params(params, model=True)
    img, X, meta = read_table(images)
    space = read_json(labels / "domains.json")
    domains, described = present_domains(img, space["domains"], "search_descriptions"), space["descriptions"]
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    pool = candidate_pools({d: described[d] for d in domains}, p.descriptions.candidates)
    T = encoder.encode_texts(pool["text"].tolist())
    dom = img["domain"].to_numpy()
    train = (img["split"] == "train").to_numpy()  # the manifest's train split, unlabelled
    table = search_table(pool, T, X[train], dom[train], domains, p.descriptions.select)
    default = {d: T[i] for i, d in zip(table.index[table["default"]], table["domain"][table["default"]])}
    starts = starts_root(project_path(p.evaluation.cache_dir), p.evaluation.warm_starts)
    table["translation_accuracy"] = translation_accuracy(X, img, domains, table, T, default, p,
                                                         fixed_test=bool(meta.get("trained_on")), starts_dir=starts)
    chosen = table[table["selected"]]
    write_table(out, chosen[["domain", "text"]].assign(kind="domain_searched"), T[chosen.index.to_numpy()],
                metadata={**provenance(encoder), "select": p.descriptions.select})
    write_csv(out_dir / "description_search.csv", table)
    write_json(out_dir / "description_search.json", {
        "select": p.descriptions.select, "images": "the manifest's train split of each domain, unlabelled",
        "selected": dict(zip(chosen["domain"], chosen["text"])),
        "selected_translation_accuracy": {d: round(float(a), 4) for d, a in zip(chosen["domain"], chosen["translation_accuracy"])},
        "default_translation_accuracy": {d: round(float(a), 4) for d, a in zip(
            table["domain"][table["default"]], table["translation_accuracy"][table["default"]])},
        "best_by_translation_accuracy (reads the domain's labels: an analysis)": {
            d: g.loc[g["translation_accuracy"].fillna(-1).idxmax(), "text"] for d, g in table.groupby("domain", sort=False)},
        "trained_on": meta.get("trained_on")})
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    run(app)
