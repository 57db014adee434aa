"""Stage layerwise_gap: the domain gaps (``layerwise.gap_metrics``) on every block of features/layers.parquet and on
the joint-space projection, RMS-scaled, mean over ordered pairs of distinct domains -> reports/layerwise_gap.csv
(stage layerwise draws them beside each block's accuracy). Apart from layerwise, so that a classifier edit never
recomputes them."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.layer_gaps import layer_gaps, read_blocks
from pipeline.store import write_csv

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), images: Path = Path("features/images.parquet"),
         layers: Path = Path("features/layers.parquet"), out_dir: Path = Path("reports")) -> None:
    p = read_params(params)
    img, _, _, blocks, domains = read_blocks(images, layers, "layerwise_gap")
    gaps = layer_gaps(img["domain"].to_numpy(), blocks, domains, p)
    write_csv(out_dir / "layerwise_gap.csv", gaps)
    print(gaps.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    run(app)
