"""Cost of PromptStyler's style learning per style (``iterations`` SGD steps through the frozen text
tower), for random-CLIP presets (same FLOPs as trained weights; ``vit-b-32`` has every shape of
openai/clip-vit-base-patch32's text tower) and/or the pipeline's MiniCLIP.

    python benchmarks/promptstyler_cost.py --presets vit-b-32 --styles 2 --iterations 100
    python benchmarks/promptstyler_cost.py --presets "" --model miniclip
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer

from pipeline.data import PACS_CLASSES
from pipeline.encoders import load_encoder
from pipeline.promptstyler import learn_styles
from pipeline.randomclip import build_random_clip


def main(presets: str = "vit-b-32", model: str = "", styles: int = 2, iterations: int = 100, k: int = 80) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        names = [str(build_random_clip(Path(tmp) / p, p)) for p in presets.split(",") if p] + ([model] if model else [])
        for name in names:
            encoder = load_encoder(name, "auto")
            t0 = time.perf_counter()
            learn_styles(encoder, PACS_CLASSES, k=styles, iterations=iterations, progress=False)
            per_style = (time.perf_counter() - t0) / styles
            print(f"{Path(name).name}: {per_style:.1f} s per style ({iterations} iterations, {len(PACS_CLASSES)} classes, "
                  f"{encoder.device}); K={k}: {per_style * k / 60:.1f} min")


if __name__ == "__main__":
    typer.run(main)
