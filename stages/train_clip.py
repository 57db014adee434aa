"""Stage train_clip: train MiniCLIP pairings on PACS train-split image-caption pairs (seed 001),
score image -> text retrieval on both splits, save the ``clip.use`` pairing as models/miniclip."""
from pathlib import Path

import pandas as pd
import typer
from _common import load_params, run

from pipeline.clip_training import train_pairings
from pipeline.miniclip import save_miniclip
from pipeline.reports import curves
from pipeline.store import read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         model_dir: Path = Path("models/miniclip"), reports: Path = Path("reports")) -> None:
    p = load_params(params)
    cfg = p["clip"]
    use = "+".join(cfg["use"])
    if use not in {"+".join(x) for x in cfg["pairings"]}:
        raise ValueError(f"clip.use={cfg['use']} is not one of clip.pairings={cfg['pairings']}")
    df, _, _ = read_table(manifest)
    models, scores, losses = train_pairings(df, dict(p["prompts"]["domains"]), list(p["data"]["classes"]), cfg,
                                            p["data"]["workers"])
    save_miniclip(*models[use], model_dir)
    scores = pd.DataFrame(scores)
    write_csv(reports / "retrieval.csv", scores)
    losses = pd.DataFrame(losses)
    write_csv(reports / "clip_loss.csv", losses)
    curves(losses, "step", "loss", "pairing", reports / "clip_loss.png")
    write_json(reports / "retrieval.json", {f"{r.pairing}.{r.split}.top{k}": getattr(r, f"top{k}")
                                            for r in scores.itertuples() for k in cfg["ks"]})
    print(scores.to_string(index=False))


if __name__ == "__main__":
    run(app)
