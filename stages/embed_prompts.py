"""Stage embed_prompts: E_T of domain descriptions, dummy-noun prompts, class prompts -> features/prompts.parquet."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.encoders import load_encoder, provenance
from pipeline.prompts import add_domain_averages, prompt_table
from pipeline.store import write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), out: Path = Path("features/prompts.parquet")) -> None:
    p = read_params(params, model=True)
    descriptions = {d: p.prompts.domains[d] for d in p.data.domains}
    table = prompt_table(descriptions, p.prompts.dummy_nouns, p.data.classes, p.prompts.class_templates)
    encoder = load_encoder(p.model.name, p.embed.device)
    table, emb = add_domain_averages(table, encoder.encode_texts(table["text"].tolist()), descriptions)
    write_table(out, table, emb, metadata=provenance(encoder))
    print(f"embed_prompts: {len(table)} prompts -> {out}")


if __name__ == "__main__":
    run(app)
