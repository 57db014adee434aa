"""Stage prepare: resolve the dataset (data.dataset preset, listed or discovered domains and classes, prompt
text), scan data.root, validate + hash every image, split by content -> data/manifest.parquet (content only:
image_id, domain, class, label, split) + data/paths.parquet (where each image's bytes are) +
data/domains.json, data/classes.json, data/templates.json (the label space and prompt text every later stage
reads) + reports/prepare.json.

It runs on every `dvc repro` (``always_changed``): what it learnt about each file is cached in
``data.cache_dir``, so an unchanged dataset is rescanned from file stats alone. Its outputs are the same bytes
for the same images and params wherever they live, so nothing downstream reruns.
"""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.datasets import prepare_dataset
from pipeline.params import project_path
from pipeline.store import write_json, write_table

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), out: Path = Path("data/manifest.parquet"),
         locator: Path = Path("data/paths.parquet"), labels: Path = Path("data"),
         report: Path = Path("reports/prepare.json")) -> None:
    p = read_params(params)
    d = p.data
    manifest, paths, rep, space = prepare_dataset(project_path(d.root), d, p.prompts,
                                                  project_path(d.cache_dir) / "validated.parquet")
    write_table(out, manifest, metadata={**space.classes_json(), "domains": space.domains,
                                         **d.model_dump(include={"test_fraction", "split_seed"})})
    write_table(locator, paths)
    write_json(labels / "domains.json", space.domains_json())
    write_json(labels / "classes.json", space.classes_json())
    write_json(labels / "templates.json", space.templates_json())
    write_json(report, rep)
    print(f"prepare: {space.dataset}, {len(space.domains)} domains x {len(space.classes)} classes, {rep['images']} "
          f"images ({rep['duplicates']['duplicate_files']} duplicate files), {rep['skipped']} files skipped, "
          f"{len(rep['missing'])} cells missing -> {out}")


if __name__ == "__main__":
    run(app)
