"""Stage layerwise: which block of the image tower transfers best. Every block of features/layers.parquet
(``embed.layers``) and the joint-space projection, scored by the evaluation's probes (``layerwise.probes``, model
selection, trials, cell cache) in-domain, single-source and leave-one-domain-out, and by the domain gaps
(``layerwise.gap_metrics``) -> reports/layerwise.csv (+ _gap.csv, _curve.csv, .json, .png)."""
import logging
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.cellcache import CellCache
from pipeline.coverage import present_domains
from pipeline.layerwise import PROJECTION, curve, headline, plot, read_layer, score_layers, wide_curve
from pipeline.params import project_path
from pipeline.store import check_same_model, read_metadata, read_table, write_csv, write_json

log = logging.getLogger("layerwise")
app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), images: Path = Path("features/images.parquet"),
         layers: Path = Path("features/layers.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    meta = read_metadata(layers)
    if not meta.get("layers"):
        log.warning("layerwise: %s holds no block (embed.layers: %s): only the projection is scored; set "
                    "embed.layers: all or a list of block indices", layers, p.embed.layers)
    img, X, img_meta = read_table(images)
    check_same_model(images, img_meta, layers, meta)
    blocks = [(c["index"], c["name"], read_layer(layers, c["column"], img)) for c in meta["layers"]]
    blocks.append((meta.get("n_blocks", 0), PROJECTION, X))
    space = img_meta["label_space"]  # the manifest's domains and classes (not data/*.json: no rerun on a description edit)
    domains, classes = present_domains(img, space["domains"], "layerwise"), space["classes"]
    cache = CellCache(project_path(p.evaluation.cache_dir))
    acc, gaps = score_layers(img, blocks, domains, classes, p, cache, fixed_test=bool(img_meta.get("trained_on")))
    cache.save()
    summary = curve(acc)
    wide = wide_curve(summary, gaps)
    write_csv(out_dir / "layerwise.csv", summary)
    write_csv(out_dir / "layerwise_gap.csv", gaps)
    write_csv(out_dir / "layerwise_curve.csv", wide)
    write_json(out_dir / "layerwise.json", {**headline(summary), "trained_on": img_meta.get("trained_on"),
                                            "layer_dtype": meta.get("layer_dtype")})
    plot(wide, list(p.layerwise.gap_metrics), out_dir / "layerwise.png")
    print(wide.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    run(app)
