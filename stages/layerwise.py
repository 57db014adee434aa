"""Stage layerwise: which block of the image tower transfers best. Every block of features/layers.parquet
(``embed.layers``) and the joint-space projection, scored by the evaluation's probes (``layerwise.probes``, model
selection, trials, cell cache) in-domain, single-source and leave-one-domain-out, drawn beside the blocks' domain
gaps (stage layerwise_gap) -> reports/layerwise.csv (+ _curve.csv, .json, .png)."""
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.cellcache import CellCache
from pipeline.layerwise import curve, headline, plot, score_layers, wide_curve
from pipeline.layer_gaps import read_blocks
from pipeline.params import project_path
from pipeline.store import write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), images: Path = Path("features/images.parquet"),
         layers: Path = Path("features/layers.parquet"), gaps: Path = Path("reports/layerwise_gap.csv"),
         out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    img, img_meta, layer_meta, blocks, domains = read_blocks(images, layers, "layerwise")
    cache = CellCache(project_path(p.evaluation.cache_dir))
    acc = score_layers(img, blocks, domains, img_meta["label_space"]["classes"], p, cache,
                       fixed_test=bool(img_meta.get("trained_on")))
    cache.save()
    summary = curve(acc)
    gap = pd.read_csv(gaps)
    wide = wide_curve(summary, gap)
    write_csv(out_dir / "layerwise.csv", summary)
    write_csv(out_dir / "layerwise_curve.csv", wide)
    write_json(out_dir / "layerwise.json", {**headline(summary), "trained_on": img_meta.get("trained_on"),
                                            "layer_dtype": layer_meta.get("layer_dtype")})
    plot(wide, list(dict.fromkeys(gap["metric"])), out_dir / "layerwise.png")
    print(wide.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    run(app)
