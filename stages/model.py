"""Stage model: fingerprint the model ``model.name`` names -> models/model.json (family, weight sha256,
preprocessing, text tokenisation, logit semantics: what changes a feature, nothing about where the model
lives). Every embedding stage depends on this file instead of the model directory, so a model prefix works,
a missing model is refused here with the project's own hint (`clipdg fetch ...`) before DVC checks any path,
a model changed in place reruns what it embedded, and one moved elsewhere reruns nothing. It runs on every
`dvc repro` (``always_changed``); the fingerprint is cached by the model files' stats in model.cache_dir."""
from pathlib import Path

import typer
from _common import read_params, run

from pipeline.encoders import model_fingerprint
from pipeline.params import project_path
from pipeline.store import write_json

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(params: Path = Path("params.yaml"), out: Path = Path("models/model.json")) -> None:
    p = read_params(params, model=True)
    fp = model_fingerprint(p.model.name, project_path(p.model.cache_dir))
    write_json(out, fp)
    print(f"model: {p.model.name} ({fp['family']}, {fp['dim']}-d joint space, weights {fp['weight_sha256'][:12]})")


if __name__ == "__main__":
    run(app)
