"""The persistent per-image feature cache behind ``embed_images``: incremental, resumable, shardable.

An embedding is keyed by (image content hash, model weight hash, preprocessing). The content hash
is the manifest's ``image_id`` (sha256 of the file bytes, :mod:`pipeline.data`); weights and
preprocessing select a namespace directory ``<root>/<key>/``. Inside it, shards
``shard-<sha>.parquet`` (columns ``image_id``, ``embedding``; written atomically through
:mod:`pipeline.store`) each hold one block of images embedded together. So:

- adding images embeds only them; removing images only drops rows from the assembled store;
- a new model (weights) or preprocessing is a new namespace: everything is recomputed;
- a killed run leaves only complete shards: the next run embeds what is missing;
- any number of processes or machines can write shards of disjoint blocks into one namespace.

DVC sees only the assembled store (``features/images.parquet``); this directory is ours.
"""
from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .store import TableWriter, read_table, write_json, write_table

SHARD_GLOB = "shard-*.parquet"
STALE_TEMP_SECONDS = 3600  # a shard is written in well under a second: older temp files are a killed run's


def cache_key(provenance: dict) -> str:
    """16 hex digits of sha256 over the weight hash, the preprocessing and the output dim."""
    keyed = {k: provenance[k] for k in ("weight_sha256", "preprocessing", "dim")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """One namespace (model weights + preprocessing) of the feature cache under ``root``."""

    def __init__(self, root: str | Path, provenance: dict):
        self.key = cache_key(provenance)
        self.dir = Path(root) / self.key
        self.dim = int(provenance["dim"])
        self._ids: dict[str, list[str]] = {}  # shard name -> its image ids, read once per shard
        if not (self.dir / "namespace.json").exists():
            write_json(self.dir / "namespace.json", {k: provenance.get(k) for k in
                                                    ("model", "weight_sha256", "preprocessing", "dim")})
        for tmp in self.dir.glob(".shard-*.tmp"):  # left by a SIGKILL mid-write; never read
            if time.time() - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink(missing_ok=True)

    def shards(self) -> list[Path]:
        return sorted(self.dir.glob(SHARD_GLOB))

    def index(self) -> pd.DataFrame:
        """Where every cached image lives: ``shard``, ``row``, indexed by ``image_id`` (ids only are read)."""
        parts = []
        for path in self.shards():
            if path.name not in self._ids:  # shards are immutable once renamed into place
                self._ids[path.name] = pq.read_table(path, columns=["image_id"]).column("image_id").to_pylist()
            ids = self._ids[path.name]
            parts.append(pd.DataFrame({"image_id": ids, "shard": path.name, "row": np.arange(len(ids))}))
        if not parts:
            return pd.DataFrame({"shard": [], "row": []}, index=pd.Index([], name="image_id"))
        index = pd.concat(parts).drop_duplicates("image_id").set_index("image_id")
        return index.astype({"shard": "category"})  # one string per shard, not per image

    def write_shard(self, image_ids: list[str], embeddings: np.ndarray, info: dict) -> Path:
        """Store one block atomically; the name is a hash of its ids, so a redone block overwrites itself."""
        name = f"shard-{hashlib.sha256(''.join(image_ids).encode()).hexdigest()[:24]}.parquet"
        write_table(self.dir / name, pd.DataFrame({"image_id": list(image_ids)}), embeddings,
                    metadata={"cache_key": self.key, **info})
        self._ids[name] = list(image_ids)
        return self.dir / name

    def assemble(self, out: str | Path, df: pd.DataFrame, metadata: dict, window: int = 8192) -> int:
        """Write ``df`` (one row per manifest row, duplicates allowed) with each row's cached embedding
        to the store ``out``, ``window`` rows per row group; holds at most two shards in memory."""
        index = self.index()
        missing = ~df["image_id"].isin(index.index)
        if missing.any():
            raise RuntimeError(f"{self.dir}: {int(missing.sum())} manifest images have no cached embedding "
                               f"(first: image_id {df.loc[missing, 'image_id'].iloc[0]}); run embed_images without --shard")

        @lru_cache(maxsize=2)
        def shard(name: str) -> np.ndarray:
            return read_table(self.dir / name)[1]

        with TableWriter(out, metadata) as writer:
            for start in range(0, len(df), window):
                part = df.iloc[start:start + window]
                where = index.loc[part["image_id"].to_numpy()].reset_index(drop=True)
                rows = where["row"].to_numpy()
                emb = np.empty((len(part), self.dim), np.float32)
                for name, pos in where.groupby("shard", sort=False).indices.items():
                    emb[pos] = shard(name)[rows[pos]]
                writer.write(part, emb)
        return writer.rows
