"""Stage embed_images: E_I(x) of every manifest image, once -> features/images.parquet.

Only images missing from the feature cache (``embed.cache_dir``) are embedded. ``--shard i/n``
embeds this process's share of them into the cache and stops; a run without it (``dvc repro``)
embeds whatever is still missing and assembles the store.
"""
from pathlib import Path
from typing import Optional

import typer
from _common import load_params, run

from pipeline.data import MANIFEST_COLUMNS
from pipeline.embed import embed_to_cache, embed_with_ray, parse_shard
from pipeline.encoders import load_encoder, provenance
from pipeline.store import read_table, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         out: Path = Path("features/images.parquet"), report: Path = Path("reports/embed.json"),
         shard: Optional[str] = typer.Option(None, help="i/n: embed only share i of n into the cache"),
         engine: Optional[str] = typer.Option(None, help="local | ray (default: embed.engine)")) -> None:
    p, df = load_params(params), read_table(manifest)[0]
    e, share, engine = p["embed"], parse_shard(shard), engine or p["embed"]["engine"]
    if engine not in ("local", "ray") or (engine == "ray" and shard):
        raise ValueError(f"embed.engine={engine!r}: choose local or ray (--shard runs locally only)")
    encoder = load_encoder(p["model"]["name"], e["device"])
    common = dict(batch_size=e["batch_size"], shard_size=e["shard_size"], workers=e["workers"],
                  runtime=e["runtime"], threads=e["threads"])
    if engine == "ray":
        cache, stats = embed_with_ray(df, encoder, e["cache_dir"], device=e["device"], **common, **e["ray"])
    else:
        cache, stats = embed_to_cache(df, encoder, e["cache_dir"], shard=share, **common)
    print(f"embed_images: embedded {stats['embedded']} images ({stats['images_per_second']} img/s, "
          f"{stats.get('runtime', engine)}), reused {stats['reused']} from {cache.dir}")
    if shard is None:
        rows = cache.assemble(out, df[MANIFEST_COLUMNS], provenance(encoder))
        write_json(report, {**stats, "store_rows": rows, "cache_key": cache.key})
        print(f"embed_images: {rows} rows -> {out}")


if __name__ == "__main__":
    run(app)
