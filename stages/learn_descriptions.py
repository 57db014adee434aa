"""Stage learn_descriptions: per domain, a pseudo-word vector in "a * of a" learned with the text encoder frozen to
maximise its similarity to the domain's unlabelled train-split images minus its similarity to the other domains'
(descriptions.learn) -> features/descriptions_learned.parquet (kind domain_learned: operator translate_learned),
features/description_words.parquet, reports/learn_descriptions.json and its curves."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.coverage import present_domains
from pipeline.descriptions import LEARNED_PROMPT, domain_means, learn_descriptions
from pipeline.encoders import load_checked_encoder, provenance
from pipeline.livelog import log_curves
from pipeline.store import read_table, write_csv, write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), model: Path = Path("models/model.json"),
         images: Path = Path("features/images.parquet"), out: Path = Path("features/descriptions_learned.parquet"),
         words: Path = Path("features/description_words.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params, model=True)
    img, X, meta = read_table(images)
    domains = present_domains(img, meta["label_space"]["domains"], "learn_descriptions")  # no rerun on a description edit
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    dom, train = img["domain"].to_numpy(), (img["split"] == "train").to_numpy()  # unlabelled train split
    W, T, log = learn_descriptions(encoder, domain_means(X[train], dom[train], domains), domains,
                                   **p.descriptions.learn.model_dump())
    rows = pd.DataFrame({"domain": domains, "text": [LEARNED_PROMPT.format(f"<{d}>") for d in domains],
                         "kind": "domain_learned"})
    write_table(out, rows, T, metadata={**provenance(encoder), "prompt": LEARNED_PROMPT})
    write_table(words, rows[["domain"]], W, metadata=provenance(encoder))
    write_csv(out_dir / "learn_descriptions.csv", log)
    log_curves(out_dir / "learn_descriptions", log, "step", ["sim_own", "sim_others"], group="domain")
    ends = log.groupby("domain", sort=False).agg(first=("sim_own", "first"), last=("sim_own", "last"),
                                                  others=("sim_others", "last"))
    write_json(out_dir / "learn_descriptions.json", {
        "prompt": LEARNED_PROMPT, "images": "the manifest's train split of every domain, unlabelled (no label read)",
        "train_images": {d: int((train & (dom == d)).sum()) for d in domains},
        "sim_own": {d: {"start": round(r["first"], 4), "end": round(r["last"], 4)} for d, r in ends.iterrows()},
        "sim_others_end": {d: round(r["others"], 4) for d, r in ends.iterrows()},
        **p.descriptions.learn.model_dump(), "device": encoder.device, "trained_on": meta.get("trained_on")})
    print(ends.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    run(app)
