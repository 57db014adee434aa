"""Stage prepare: scan data.root, validate + hash every image, split -> data/manifest.parquet (content only:
image_id, domain, class, label, split) + data/paths.parquet (where each image's bytes are) + reports/prepare.json.

It runs on every `dvc repro` (``always_changed``): what it learnt about each file is cached in
``data.cache_dir``, so an unchanged dataset is rescanned from file stats alone. The manifest is
byte-identical for the same images wherever they live, so nothing downstream reruns.
"""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.data import build_manifest
from pipeline.params import project_path
from pipeline.store import write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), out: Path = Path("data/manifest.parquet"),
         locator: Path = Path("data/paths.parquet"), report: Path = Path("reports/prepare.json")) -> None:
    d = read_params(params).data
    manifest, paths, rep = build_manifest(project_path(d.root), d, cache=project_path(d.cache_dir) / "validated.parquet")
    write_table(out, manifest, metadata=d.model_dump(include={"domains", "classes", "test_fraction", "split_seed"}))
    write_table(locator, paths)
    write_json(report, rep)
    print(f"prepare: {rep['images']} images, {rep['skipped']} files skipped, {len(rep['missing'])} cells missing -> {out}")


if __name__ == "__main__":
    run(app)
