"""The persistent per-image feature cache behind ``embed_images``: incremental, resumable, shardable.

An embedding is keyed by (image content hash, model weight hash, preprocessing). The content hash
is the manifest's ``image_id`` (sha256 of the file bytes, :mod:`pipeline.data`); weights and
preprocessing select a namespace directory ``<root>/<key>/``. Inside it, shards
``shard-<sha>.parquet`` (columns ``image_id``, ``embedding``; written atomically through
:mod:`pipeline.store`) each hold one block of images embedded together. So:

- adding images embeds only them; removing images only drops rows from the assembled store;
- a new model (weights) or preprocessing is a new namespace: everything is recomputed;
- a killed run leaves only complete shards: the next run embeds what is missing;
- any number of processes or machines can write shards of disjoint blocks into one namespace;
- each kind of image feature (``projected``, ``pooled``, ``layer_<i>``: :mod:`pipeline.encoders.base`) is its
  own namespace, so asking for a second kind (another layer) later writes only what that kind lacks;
- a layer kind may be stored as float16 (``embed.layer_dtype``): its own namespace too;
- a shard that cannot be read (a truncated file) is logged, deleted and its images embedded again.

DVC sees only the assembled store (``features/images.parquet``); this directory is ours.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .store import EMBEDDING, TableWriter, read_table, write_json, write_table

SHARD_GLOB = "shard-*.parquet"
STALE_TEMP_SECONDS = 3600  # a shard is written in well under a second: older temp files are a killed run's
COLUMNS = {"projected": EMBEDDING, "pooled": "pooled"}  # feature kind -> its column in features/images.parquet
log = logging.getLogger(__name__)


def column_of(kind: str) -> str:
    """A feature kind's column in a store: ``embedding`` / ``pooled``, and a layer kind's own name (``layer_3``)."""
    return COLUMNS.get(kind, kind)


def cache_key(provenance: dict, kind: str = "projected", dim: int | None = None, dtype: str = "float32") -> str:
    """16 hex digits of sha256 over the weight hash, the preprocessing and the output dim (and the feature kind
    when it is not the joint-space one, whose namespaces predate the kinds; a layer's width, and its dtype when
    not float32)."""
    keyed = {k: provenance[k] for k in ("weight_sha256", "preprocessing", "dim")}
    if kind != "projected":
        keyed.update(kind=kind, pooled_dim=provenance["pooled_dim"])
    if kind not in COLUMNS:
        keyed.update(layer_dim=dim)
    if dtype != "float32":
        keyed.update(dtype=dtype)
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """One namespace (model weights + preprocessing + feature kind [+ dtype]) of the feature cache under ``root``;
    ``dim``: the width of a layer kind (the others' come from the provenance)."""

    def __init__(self, root: str | Path, provenance: dict, kind: str = "projected", dim: int | None = None,
                 dtype: str = "float32"):
        self.kind, self.dtype = kind, np.dtype(dtype)
        self.dim = int(dim if kind not in COLUMNS else provenance["dim"] if kind == "projected" else provenance["pooled_dim"])
        self.key = cache_key(provenance, kind, self.dim, dtype)
        self.dir = Path(root) / self.key
        self._ids: dict[str, list[str]] = {}  # shard name -> its image ids, read once per shard
        if not (self.dir / "namespace.json").exists():
            write_json(self.dir / "namespace.json", {**{k: provenance.get(k) for k in
                                                       ("model", "weight_sha256", "preprocessing")},
                                                    "kind": kind, "dim": self.dim, "dtype": str(self.dtype)})
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
                try:
                    self._ids[path.name] = pq.read_table(path, columns=["image_id"]).column("image_id").to_pylist()
                except (OSError, pa.ArrowException) as exc:  # truncated / corrupt: its images are embedded again
                    log.warning("feature cache: deleting unreadable shard %s (%s: %s); its images are embedded again",
                                path, type(exc).__name__, exc)
                    path.unlink(missing_ok=True)
                    continue
            ids = self._ids[path.name]
            parts.append(pd.DataFrame({"image_id": ids, "shard": path.name, "row": np.arange(len(ids))}))
        if not parts:
            return pd.DataFrame({"shard": [], "row": []}, index=pd.Index([], name="image_id"))
        index = pd.concat(parts).drop_duplicates("image_id").set_index("image_id")
        return index.astype({"shard": "category"})  # one string per shard, not per image

    def write_shard(self, image_ids: list[str], embeddings: np.ndarray, info: dict) -> Path:
        """Store one block atomically; the name is a hash of its ids, so a redone block overwrites itself."""
        name = f"shard-{hashlib.sha256(''.join(image_ids).encode()).hexdigest()[:24]}.parquet"
        write_table(self.dir / name, pd.DataFrame({"image_id": list(image_ids)}), embeddings.astype(self.dtype, copy=False),
                    metadata={"cache_key": self.key, **info})
        self._ids[name] = list(image_ids)
        return self.dir / name

    def assemble(self, out: str | Path, df: pd.DataFrame, metadata: dict, window: int = 8192) -> int:
        """:func:`assemble_store` of this one kind."""
        return assemble_store(out, df, {self.kind: self}, metadata, window)

    def rows(self, df: pd.DataFrame) -> "_Rows":
        """A gatherer of the cached vectors of ``df``'s images (one line naming the first one missing)."""
        index = self.index()
        missing = ~df["image_id"].isin(index.index)
        if missing.any():
            raise RuntimeError(f"{self.dir}: {int(missing.sum())} manifest images have no cached embedding "
                               f"(first: image_id {df.loc[missing, 'image_id'].iloc[0]}); run embed_images without --shard")
        return _Rows(self, index)


class _Rows:
    """Gathers cached vectors for manifest rows, holding at most two shards in memory."""

    def __init__(self, cache: FeatureCache, index: pd.DataFrame):
        self.cache, self.index = cache, index
        self.shard = lru_cache(maxsize=2)(self._read)

    def _read(self, name: str) -> np.ndarray:
        try:
            return read_table(self.cache.dir / name, dtype=self.cache.dtype)[1]
        except (OSError, pa.ArrowException) as exc:
            raise RuntimeError(f"feature cache shard {self.cache.dir / name} cannot be read ({type(exc).__name__}: "
                               f"{exc}); delete it and rerun embed_images") from None

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        where = self.index.loc[ids].reset_index(drop=True)
        rows = where["row"].to_numpy()
        emb = np.empty((len(ids), self.cache.dim), self.cache.dtype)
        for name, pos in where.groupby("shard", sort=False, observed=True).indices.items():
            emb[pos] = self.shard(name)[rows[pos]]
        return emb


def assemble_store(out: str | Path, df: pd.DataFrame, caches: dict[str, FeatureCache], metadata: dict,
                   window: int = 8192) -> int:
    """Write ``df`` (one row per manifest row, duplicates allowed) with each row's cached vector of every kind
    (column :func:`column_of` (kind), in the kind's dtype) to the store ``out``, ``window`` rows per row group."""
    gather = {kind: cache.rows(df) for kind, cache in caches.items()}
    with TableWriter(out, metadata) as writer:
        for start in range(0, len(df), window):
            part = df.iloc[start:start + window]
            ids = part["image_id"].to_numpy()
            writer.write(part, vectors={column_of(kind): g(ids) for kind, g in gather.items()})
    return writer.rows


class FeatureCaches:
    """The namespaces of the feature kinds one run embeds (``embed.features``), used together: an image is
    cached when every kind holds it; a block's features of every kind come from one forward pass. ``dims``: the
    widths of the layer kinds; ``layer_dtype``: how layer kinds are stored (float32 | float16)."""

    def __init__(self, root: str | Path, provenance: dict, kinds: tuple[str, ...] = ("projected",),
                 dims: dict | None = None, layer_dtype: str = "float32"):
        self.kinds = tuple(kinds)
        self.caches = {k: FeatureCache(root, provenance, k, (dims or {}).get(k),
                                       "float32" if k in COLUMNS else layer_dtype) for k in self.kinds}
        first = self.caches[self.kinds[0]]
        self.dir = first.dir if len(self.kinds) == 1 else Path(root)
        self.key = "+".join(c.key for c in self.caches.values())
        self._held: dict[str, set] = {}

    def __getitem__(self, kind: str) -> FeatureCache:
        return self.caches[kind]

    def shards(self) -> list[Path]:
        return [s for c in self.caches.values() for s in c.shards()]

    def held(self, kind: str) -> set:
        """The image ids ``kind``'s namespace holds: read from its shards once, then kept up to date by
        :meth:`write_block` (so a run never re-reads the index per block)."""
        if kind not in self._held:
            self._held[kind] = set(self.caches[kind].index().index)
        return self._held[kind]

    def cached_ids(self) -> set:
        return set.intersection(*(self.held(k) for k in self.kinds))

    def write_block(self, image_ids: list[str], features: dict[str, np.ndarray], info: dict) -> None:
        """One shard per kind that lacks any of the block's images (a kind asked for later is the only one
        written when the other already holds them)."""
        ids = set(image_ids)
        for kind, cache in self.caches.items():
            if not ids <= self.held(kind):
                cache.write_shard(image_ids, features[kind], info)
                self._held[kind] |= ids

    def assemble(self, out: str | Path, df: pd.DataFrame, metadata: dict, window: int = 8192,
                 kinds: tuple[str, ...] | None = None) -> int:
        """:func:`assemble_store` of ``kinds`` (default: every kind of the run)."""
        return assemble_store(out, df, {k: self.caches[k] for k in (self.kinds if kinds is None else kinds)}, metadata,
                              window)
