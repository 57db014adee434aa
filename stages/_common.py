"""Shared by the stage scripts: params.yaml loading and clean errors (no params parsing in pipeline/)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import yaml

from pipeline.encoders import ModelLoadError

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def run(app) -> None:
    """Run a typer app; known input errors print one clear line and exit 1 (no traceback)."""
    try:
        app()
    except KeyError as exc:
        print(f"error: missing entry {exc.args[0] if exc.args else exc} (check params.yaml)", file=sys.stderr)
        sys.exit(1)
    except (ValueError, ModelLoadError, FileNotFoundError) as exc:  # BadInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
