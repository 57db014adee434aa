"""The content-addressed cell cache of the evaluation, kept across runs like the embedding cache.

A *cell* is one fitted-and-scored unit of the grid: (features, trial partition, setting, operator and
its hyper-parameters, probe and its hyper-parameters). Its key is the sha256 of all of those *and* of
the source of the ``pipeline`` package, so a code change never serves a stale number. Its value is
its accuracies (source validation, target validation, target test) and their row counts. New cells
are appended as one Parquet shard per run (atomically), each cell with the code version that made it;
a sweep that changes one value recomputes only the cells whose key changed. The directory is ours, not
DVC's (like ``embed.cache_dir``); :func:`cache_report` says its size per code version and
:func:`prune` drops the cells of versions no longer in use (``clipdg cells --prune``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import pandas as pd
from pyarrow import ArrowException

from .store import read_table, write_table

log = logging.getLogger(__name__)

VALUE_COLUMNS = ["source_val", "target_val", "test", "n_source_val", "n_target_val", "n_test"]


CELL_CODE = ("evaluation.py", "partition.py", "cellcache.py", "operators", "probes", "adapters")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the modules that compute a cell (names and bytes): any edit there invalidates every cell."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(f for name in CELL_CODE for f in ([root / name] if name.endswith(".py") else (root / name).rglob("*.py"))):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cell_key(*parts) -> str:
    """sha256 of the JSON of ``parts`` (sorted keys) and the code version."""
    return hashlib.sha256(json.dumps([code_version(), *parts], sort_keys=True, default=str).encode()).hexdigest()


class CellCache:
    """``key -> {source_val, target_val, test, n_*}`` under ``root`` (None: a throwaway in-memory cache)."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None
        self.values: dict[str, dict] = {}
        self.new: dict[str, dict] = {}
        self.versions: dict[str, int] = {}  # cells per code version ("unknown": shards from before versions)
        if self.root and self.root.is_dir():
            for shard in _shards(self.root):
                try:
                    df = read_table(shard)[0]
                except (OSError, ArrowException) as exc:  # truncated / corrupt: its cells are computed again
                    log.warning("cell cache: deleting unreadable shard %s (%s: %s); its cells are computed again",
                                shard, type(exc).__name__, exc)
                    shard.unlink(missing_ok=True)
                    continue
                self.values.update(zip(df["key"], df[VALUE_COLUMNS].to_dict("records")))
                for v, n in (df["code"].value_counts().items() if "code" in df else [("unknown", len(df))]):
                    self.versions[v] = self.versions.get(v, 0) + int(n)
        self.hits = 0

    def report(self) -> dict:
        """Its size, from what was loaded and saved (no shard read again): shards, bytes, cells per code
        version; ``current`` is this checkout's version; ``starts``: the warm-start store's files and bytes
        per code version (:mod:`pipeline.starts`)."""
        from .starts import report as starts_report

        shards = _shards(self.root)
        return {"root": str(self.root), "shards": len(shards), "bytes": _bytes(shards),
                "cells": sum(self.versions.values()), "current": code_version(), "by_version": dict(self.versions),
                "starts": {v: {"files": n, "bytes": b} for v, (n, b) in starts_report(self.root).items()}}

    def get(self, key: str) -> dict | None:
        v = self.values.get(key)
        self.hits += v is not None
        return v

    def put(self, key: str, value: dict) -> None:
        self.values[key] = self.new[key] = value

    def save(self) -> Path | None:
        """Write this run's new cells as one shard (named by its keys, so a rerun overwrites itself)."""
        if self.root is None or not self.new:
            return None
        keys = sorted(self.new)
        name = f"cells-{hashlib.sha256(''.join(keys).encode()).hexdigest()[:24]}.parquet"
        df = pd.DataFrame([{"key": k, **self.new[k]} for k in keys], columns=["key", *VALUE_COLUMNS])
        write_table(self.root / name, df.assign(code=code_version()))
        self.versions[code_version()] = self.versions.get(code_version(), 0) + len(keys)
        self.new = {}
        return self.root / name


def _shards(root: Path | None) -> list[Path]:
    return sorted(root.glob("cells-*.parquet")) if root and root.is_dir() else []


def _bytes(shards: list[Path]) -> int:
    return sum(s.stat().st_size for s in shards if s.exists())


def cache_report(root: str | Path) -> dict:
    """:meth:`CellCache.report` of the cache at ``root`` (an unreadable shard is deleted, as a run would)."""
    return CellCache(root).report()


def prune(root: str | Path, keep=None) -> dict:
    """Drop every cell whose code version is not in ``keep`` (default: this checkout's): a shard left empty
    is deleted, one partly kept is rewritten atomically; so are those versions' warm starts. Returns {"kept",
    "dropped", "bytes_before", "bytes_after"} (cells; "starts_dropped": start files). Other checkouts
    (branches) sharing the directory keep theirs only if named in ``keep``."""
    import shutil

    from .starts import DIR, report as starts_report

    keep = set(keep or [code_version()])
    root = Path(root)
    before = _bytes(_shards(root))
    starts_dropped = 0
    for version, (files, _) in starts_report(root).items():
        if version not in keep:
            shutil.rmtree(root / DIR / version)
            starts_dropped += files
    kept = dropped = 0
    for shard in _shards(root):
        try:
            df = read_table(shard)[0]
        except (OSError, ArrowException):
            shard.unlink(missing_ok=True)
            continue
        mask = df["code"].isin(keep) if "code" in df else pd.Series(False, index=df.index)
        kept, dropped = kept + int(mask.sum()), dropped + int((~mask).sum())
        if not mask.any():
            shard.unlink()
        elif not mask.all():
            write_table(shard, df[mask].reset_index(drop=True))
    return {"kept": kept, "dropped": dropped, "bytes_before": before, "bytes_after": _bytes(_shards(root)),
            "starts_dropped": starts_dropped}
