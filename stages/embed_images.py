"""Stage embed_images: the image features of every manifest image, once -> features/images.parquet
(``embedding``: E_I(x) in the joint space, and / or ``pooled``: before the projection; ``embed.features``), and the
blocks of ``embed.layers`` from the same forward pass -> features/layers.parquet (a column ``layer_<i>`` per block).

Only images missing from the feature cache (``embed.cache_dir``) are embedded. ``--shard i/n``
embeds this process's share of them into the cache and stops; a run without it (``dvc repro``)
embeds whatever is still missing and assembles the store (content columns only: no paths).
"""
from pathlib import Path
from typing import Optional

import typer
from _common import read_params, run

from pipeline.data import MANIFEST_COLUMNS, read_locator
from pipeline.embed import embed_manifest, layer_metadata, parse_shard, split_kinds
from pipeline.encoders import load_checked_encoder, provenance
from pipeline.store import read_table, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         locator: Path = Path("data/paths.parquet"), out: Path = Path("features/images.parquet"),
         layers_out: Path = Path("features/layers.parquet"),
         model: Path = Path("models/model.json"),
         report: Path = Path("reports/embed.json"),
         shard: Optional[str] = typer.Option(None, help="i/n: embed only share i of n into the cache"),
         engine: Optional[str] = typer.Option(None, help="local | ray (default: embed.engine)")) -> None:
    p = read_params(params, model=True)
    df, _, label_space = read_table(manifest)
    df = df.assign(path=read_locator(df, locator).to_numpy())
    encoder = load_checked_encoder(p.model.name, p.embed.device, model)
    cache, stats = embed_manifest(df, encoder, p.embed, parse_shard(shard), engine or p.embed.engine)
    print(f"embed_images: embedded {stats['embedded']} images ({stats['images_per_second']} img/s, "
          f"{stats.get('runtime', stats['engine'])}), reused {stats['reused']} from {cache.dir}")
    if shard is None:
        meta = {**provenance(encoder), "label_space": label_space}
        base, layers = split_kinds(cache.kinds)
        rows = cache.assemble(out, df[MANIFEST_COLUMNS], meta, kinds=base)
        cache.assemble(layers_out, df[MANIFEST_COLUMNS], {**meta, **layer_metadata(encoder, layers, p.embed)}, kinds=layers)
        write_json(report, {**stats, "store_rows": rows, "cache_key": cache.key})
        print(f"embed_images: {rows} rows -> {out}")


if __name__ == "__main__":
    run(app)
