"""Shared by the stage scripts: params.yaml loading and clean errors (no params parsing in pipeline/)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import yaml

from pipeline.encoders import ModelLoadError

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


class MissingParam(KeyError):
    """A key the stage needs is absent from params.yaml."""


class Params(dict):
    """params.yaml as nested dicts whose missing keys raise :class:`MissingParam` naming the key."""

    def __init__(self, data: dict, prefix: str = ""):
        super().__init__({k: Params(v, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in data.items()})
        self._prefix = prefix

    def __missing__(self, key):
        raise MissingParam(f"params.yaml has no key {self._prefix}{key}")


def load_params(path: str | Path = "params.yaml") -> Params:
    with open(path) as f:
        return Params(yaml.safe_load(f) or {})


def run(app) -> None:
    """Run a typer app; known input errors print one clear line and exit 1 (no traceback)."""
    try:
        app()
    except (MissingParam, ValueError, ModelLoadError, FileNotFoundError) as exc:  # BadInputError is a ValueError
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        sys.exit(1)
