"""Stage train_clip: when model.name is the pipeline's own CLIP (models/miniclip), train the MiniCLIP pairings on
the train split's image-caption pairs (seed 001), score image -> text retrieval on both splits and save the
``clip.use`` pairing as models/miniclip. With any other model it trains nothing: it writes a note saying so in
models/miniclip (a second or two), so `dvc status` has nothing to report and switching back to MiniCLIP
restores the trained model from DVC's run cache."""
import hashlib
from pathlib import Path

import pandas as pd
import typer
from _common import read_params, run

from pipeline.clip_training import train_pairings, trains_miniclip
from pipeline.data import read_locator
from pipeline.livelog import log_curves
from pipeline.miniclip import save_miniclip, write_not_trained
from pipeline.reports import curves
from pipeline.store import read_json, read_table, write_csv, write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), manifest: Path = Path("data/manifest.parquet"),
         locator: Path = Path("data/paths.parquet"), labels: Path = Path("data"),
         model_dir: Path = Path("models/miniclip"), reports: Path = Path("reports")) -> None:
    p = read_params(params)
    cfg, trained = p.clip, trains_miniclip(p.model.name)
    scores, losses = pd.DataFrame(columns=["pairing", "split", "n_images", "n_captions", *[f"top{k}" for k in cfg.ks]]), \
        pd.DataFrame(columns=["pairing", "epoch", "step", "loss", "temperature"])
    if trained:
        df = read_table(manifest)[0]
        df = df.assign(path=read_locator(df, locator).to_numpy())
        domains, classes = read_json(labels / "domains.json"), read_json(labels / "classes.json")
        models, scores, losses = train_pairings(df, domains["descriptions"], classes["classes"], cfg, p.data.workers,
                                                dict(zip(classes["classes"], classes["names"])))
        model, tokenizer = models["+".join(cfg.use)]
        # the evaluation must never score as test an image this model trained on: it keeps this split's test rows
        model.spec["trained_on"] = {"manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                                    "split_seed": p.data.split_seed, "test_fraction": p.data.test_fraction,
                                    "domains": cfg.train_domains, "captions": cfg.captions}
        save_miniclip(model, tokenizer, model_dir)
        scores, losses = pd.DataFrame(scores), pd.DataFrame(losses)
    else:
        write_not_trained(model_dir)
    write_csv(reports / "retrieval.csv", scores)
    write_csv(reports / "clip_loss.csv", losses)
    curves(losses, "step", "loss", "pairing", reports / "clip_loss.png")
    log_curves(reports / "train_clip", losses, "step", ["loss", "temperature"], "pairing")  # DVC plots (DVCLive)
    write_json(reports / "retrieval.json", {f"{r.pairing}.{r.split}.top{k}": getattr(r, f"top{k}")
                                            for r in scores.itertuples() for k in cfg.ks} if trained else
               {"trained": False})
    print(scores.to_string(index=False) if trained else f"train_clip: model.name={p.model.name!r} is not "
          "models/miniclip: nothing to train")


if __name__ == "__main__":
    run(app)
