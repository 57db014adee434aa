"""Shared by the stage scripts: the one params loader, and clean errors (no params parsing in pipeline/)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

# The workspace's own library first: a DVC experiment workspace, a scratch clone or a copied project
# runs the pipeline/ that its dvc.yaml depends on, never another checkout's editable install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.params import Params, check_model_name, load_params  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def read_params(path: str | Path = "params.yaml", model: bool = False) -> Params:
    """Validated params (every key, every level); ``model``: the stage loads ``model.name``, check it too."""
    p = load_params(path)
    if model:
        check_model_name(p.model.name)
    return p


def run(app) -> None:
    """Run a typer app; known input errors print one clear line and exit 1 (no traceback)."""
    try:
        app()
    except (ValueError, FileNotFoundError, KeyError) as exc:  # every PipelineError is a ValueError
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        sys.exit(1)
