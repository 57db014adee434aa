"""Stage embed_images: E_I(x) of every manifest image, once -> features/images.parquet."""
from pathlib import Path

import typer
from _common import load_params, run

from pipeline.embed import embed_images
from pipeline.encoders import load_encoder, provenance
from pipeline.store import read_table, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
COLUMNS = ["image_id", "path", "domain", "class", "label", "split"]


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         out: Path = Path("features/images.parquet")) -> None:
    p = load_params(params)
    df, _, _ = read_table(manifest)
    encoder = load_encoder(p["model"]["name"], p["embed"]["device"])
    unique = df.drop_duplicates("image_id")
    emb, stats = embed_images(unique["path"].tolist(), encoder, p["embed"]["batch_size"], p["embed"]["workers"])
    row = {h: i for i, h in enumerate(unique["image_id"])}
    write_table(out, df[COLUMNS], emb[df["image_id"].map(row).to_numpy()],
                metadata={**provenance(encoder), "embed_stats": stats})
    print(f"embed_images: {stats['images']} images in {stats['seconds']} s = "
          f"{stats['images_per_second']} img/s on {encoder.device} -> {out}")


if __name__ == "__main__":
    run(app)
