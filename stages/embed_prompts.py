"""Stage embed_prompts: E_T of domain descriptions, dummy-noun prompts (in the template set's object frames) and
class prompts (the template set x the classes' prompt names) -> features/prompts.parquet."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.encoders import load_checked_encoder, provenance
from pipeline.prompts import add_domain_averages, prompt_table
from pipeline.store import read_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), labels: Path = Path("data"), model: Path = Path("models/model.json"),
         out: Path = Path("features/prompts.parquet")) -> None:
    p = read_params(params, model=True)
    descriptions = read_json(labels / "domains.json")["descriptions"]
    classes = read_json(labels / "classes.json")
    table = prompt_table(descriptions, p.prompts.dummy_nouns, classes["classes"],
                         read_json(labels / "templates.json")["templates"], dict(zip(classes["classes"], classes["names"])))
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    table, emb = add_domain_averages(table, encoder.encode_texts(table["text"].tolist()), descriptions)
    write_table(out, table, emb, metadata=provenance(encoder))
    print(f"embed_prompts: {len(table)} prompts -> {out}")


if __name__ == "__main__":
    run(app)
