"""Stage prepare: scan data.root, validate + hash every image, split -> data/manifest.parquet."""
from pathlib import Path

import typer
from _common import load_params, run

from pipeline.data import build_manifest
from pipeline.store import write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), out: Path = Path("data/manifest.parquet"),
         report: Path = Path("reports/prepare.json")) -> None:
    p = load_params(params)["data"]
    manifest, rep = build_manifest(p["root"], p["domains"], p["classes"], p["test_fraction"],
                                   p["on_bad_image"], p.get("split_seed", 0), p.get("workers", 4))
    meta = {k: p[k] for k in ("root", "domains", "classes", "test_fraction")}
    write_table(out, manifest, metadata=meta)
    write_json(report, rep)
    print(f"prepare: {rep['images']} images, {rep['skipped']} skipped -> {out}")


if __name__ == "__main__":
    run(app)
