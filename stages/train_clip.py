"""Stage train_clip (models/dvc.yaml): train MiniCLIP pairings on PACS train-split image-caption pairs
(seed 001), score image -> text retrieval on both splits, save the ``clip.use`` pairing as models/miniclip.
It is in the DAG only while ``model.name`` is models/miniclip (the embed stages depend on ``${model.name}``)."""
import hashlib
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.clip_training import train_pairings
from pipeline.data import read_locator
from pipeline.miniclip import save_miniclip
from pipeline.reports import curves
from pipeline.store import read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         locator: Path = Path("data/paths.parquet"), model_dir: Path = Path("models/miniclip"),
         reports: Path = Path("reports")) -> None:
    p = read_params(params)
    cfg = p.clip
    df = read_table(manifest)[0]
    df = df.assign(path=read_locator(df, locator).to_numpy())
    models, scores, losses = train_pairings(df, {d: p.prompts.domains[d] for d in p.data.domains}, p.data.classes,
                                            cfg, p.data.workers)
    model, tokenizer = models["+".join(cfg.use)]
    # the evaluation must never score as test an image this model trained on: it keeps this split's test rows
    model.spec["trained_on"] = {"manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                                "split_seed": p.data.split_seed, "test_fraction": p.data.test_fraction}
    save_miniclip(model, tokenizer, model_dir)
    scores, losses = pd.DataFrame(scores), pd.DataFrame(losses)
    write_csv(reports / "retrieval.csv", scores)
    write_csv(reports / "clip_loss.csv", losses)
    curves(losses, "step", "loss", "pairing", reports / "clip_loss.png")
    write_json(reports / "retrieval.json", {f"{r.pairing}.{r.split}.top{k}": getattr(r, f"top{k}")
                                            for r in scores.itertuples() for k in cfg.ks})
    print(scores.to_string(index=False))


if __name__ == "__main__":
    run(app)
