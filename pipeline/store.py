"""The one Parquet read/write path, plus atomic writes for every artefact.

Feature stores hold one row per item and an ``embedding`` column of fixed-size float32 lists;
provenance (model id, weight hash, preprocessing, ...) lives in the Parquet schema metadata
under the key ``pipeline`` as JSON.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import NonFiniteError

EMBEDDING = "embedding"
META_KEY = b"pipeline"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> dict:
    """A JSON artefact of an earlier stage; one line naming it when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the stage that produces it (`dvc repro`)")
    return json.loads(path.read_text())


def write_csv(path: str | Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def _arrow_table(df: pd.DataFrame, vectors: dict[str, np.ndarray], where) -> pa.Table:
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    for column, matrix in vectors.items():
        emb = np.ascontiguousarray(matrix, dtype=np.float16 if np.asarray(matrix).dtype == np.float16 else np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(df):
            raise ValueError(f"{where}: {column} of shape {emb.shape} does not match {len(df)} rows")
        flat = pa.array(emb.reshape(-1), type=pa.float16() if emb.dtype == np.float16 else pa.float32())
        table = table.append_column(column, pa.FixedSizeListArray.from_arrays(flat, emb.shape[1]))
    return table


class TableWriter:
    """Stream a store to Parquet one row group per :meth:`write`, renamed onto ``path`` only when the
    ``with`` block succeeds: memory is bounded by one part, not by the store."""

    def __init__(self, path: str | Path, metadata: dict | None = None):
        self.path, self.metadata = Path(path), metadata or {}
        self._atomic = atomic_path(self.path)
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def __enter__(self) -> "TableWriter":
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, df: pd.DataFrame, embeddings: np.ndarray | None = None,
              vectors: dict[str, np.ndarray] | None = None) -> None:
        """One row group: ``df``, plus an ``embedding`` matrix and / or other named vector columns."""
        vectors = {**({EMBEDDING: embeddings} if embeddings is not None else {}), **(vectors or {})}
        table = _arrow_table(df, vectors, self.path)
        if self._writer is None:
            meta = {**(table.schema.metadata or {}), META_KEY: json.dumps(self.metadata, sort_keys=True).encode()}
            plain = [f.name for f in table.schema if not pa.types.is_fixed_size_list(f.type)]
            # no dictionary for the float vectors: it never repeats a value, and cost them 56 % more bytes
            self._writer = pq.ParquetWriter(self._tmp, table.schema.with_metadata(meta), use_dictionary=plain)
        self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(df)

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
        elif exc[0] is None:
            exc = (ValueError, ValueError(f"{self.path}: nothing was written"), None)
            self._atomic.__exit__(*exc)
            raise exc[1]
        self._atomic.__exit__(*exc)


def write_table(path: str | Path, df: pd.DataFrame, embeddings: np.ndarray | None = None,
                metadata: dict | None = None, vectors: dict[str, np.ndarray] | None = None) -> None:
    """Write ``df`` (plus an optional ``embedding`` matrix and other named vector columns) to Parquet, atomically."""
    with TableWriter(path, metadata) as writer:
        writer.write(df, embeddings, vectors)


IDENTIFYING = ("image_id", "domain", "class", "text", "kind", "style")  # columns that name a row in a message


def describe_row(df: pd.DataFrame, row: int) -> str:
    """``col=value`` of the columns that identify row ``row`` (for error messages)."""
    return ", ".join(f"{c}={df[c].iloc[row]}" for c in IDENTIFYING if c in df.columns)


def check_finite(path, df: pd.DataFrame, emb: np.ndarray, offset: int = 0, count: str = "in all") -> None:
    """Refuse an embedding matrix with a NaN / inf, naming the store, the first bad row (``df``'s rows start
    at store row ``offset``) and how many (``count``: where they were counted)."""
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise NonFiniteError(f"{path}: row {offset + row} ({describe_row(df, row)}) has a non-finite embedding "
                             f"({int(bad.sum())} row(s) {count}); nothing downstream may use it")


def read_table(path: str | Path, vector: str = EMBEDDING, dtype=np.float32) -> tuple[pd.DataFrame, np.ndarray | None, dict]:
    """Read a store written by :func:`write_table`: (columns, the ``vector`` column as a ``dtype`` matrix (float16
    columns are widened to the default float32) or None when the store has no such column, metadata); other vector
    columns are not read.
    A NaN / inf vector is refused (:class:`NonFiniteError`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that produces it (`dvc repro`)")
    schema = pq.read_schema(path)
    vectors = [f.name for f in schema if pa.types.is_fixed_size_list(f.type)]
    table = pq.read_table(path, columns=[n for n in schema.names if n not in vectors or n == vector])
    meta = json.loads((schema.metadata or {}).get(META_KEY, b"{}"))
    emb = None
    if vector in table.column_names:
        col = table.column(vector).combine_chunks()
        dim = col.type.list_size
        emb = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(dtype, copy=False)
        table = table.drop_columns([vector])
    df = table.to_pandas()
    if emb is not None:
        check_finite(path, df, emb)
    return df, emb, meta


def iter_blocks(path: str | Path, vector: str = EMBEDDING, columns=("domain", "label"),
                locator: str | Path | None = "data/paths.parquet", stage: str = "this stage"
                ) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """(rows, ``vector`` matrix) one Parquet row group at a time (a stage that accumulates per-domain statistics
    holds one row group, not the store), checked as :func:`read_feature_stores` checks: a NaN / inf vector is
    refused naming the store, its row, image_id and file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that produces it (`dvc repro`)")
    pf = pq.ParquetFile(path)
    if vector not in pf.schema_arrow.names:
        require_vectors(path, None, vector, stage)
    names = [c for c in ("image_id", *columns) if c in pf.schema_arrow.names]
    start = 0
    for g in range(pf.num_row_groups):
        table = pf.read_row_group(g, columns=[*dict.fromkeys(names), vector])
        col = table.column(vector).combine_chunks()
        X = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size).astype(np.float32, copy=False)
        df = table.drop_columns([vector]).to_pandas()
        try:
            check_finite(path, df, X, offset=start, count="in this row group")
        except NonFiniteError as exc:
            raise NonFiniteError(f"{exc}{_paths_of(exc, locator)}") from None
        start += len(df)
        yield df, X


def read_checked_prompts(images: str | Path, prompts: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The prompt store (rows, vectors), refused if another model embedded it than the image store's
    (whose vectors are not read: stream them with :func:`iter_blocks`)."""
    txt, T, txt_meta = read_table(prompts)
    if not Path(images).exists():
        raise FileNotFoundError(f"{images} does not exist; run the stage that produces it (`dvc repro`)")
    check_same_model(images, read_metadata(images), prompts, txt_meta)
    return txt, T


def require_vectors(path, emb: np.ndarray | None, column: str, stage: str) -> np.ndarray:
    """``emb`` if the store had the column, else one line saying which ``embed.features`` adds it."""
    if emb is None:
        kind = "projected" if column == EMBEDDING else column
        raise ValueError(f"{path} holds no {kind} image features ({stage} needs them): set embed.features to "
                         f"{kind} or both and rerun `dvc repro`")
    return emb


def read_metadata(path: str | Path) -> dict:
    """Only the ``pipeline`` schema metadata of a store (no data read)."""
    schema = pq.read_schema(path)
    return json.loads((schema.metadata or {}).get(META_KEY, b"{}"))


def check_same_model(path_a, meta_a: dict, path_b, meta_b: dict) -> None:
    """Refuse to mix feature stores embedded by different models (weights or preprocessing)."""
    for key in ("model", "weight_sha256"):
        if meta_a.get(key) != meta_b.get(key):
            raise ValueError(f"{path_a} and {path_b} were embedded by different models "
                             f"({key}: {meta_a.get(key)!r} vs {meta_b.get(key)!r}); rerun `dvc repro`")


def read_feature_stores(images: str | Path, prompts: str | Path, locator: str | Path | None = "data/paths.parquet",
                        vector: str = EMBEDDING, stage: str = "this stage"):
    """Both feature stores, refused if different models embedded them: (img, X, txt, T), X the image store's
    ``vector`` column (the joint-space ``embedding`` by default). A non-finite image vector is refused naming
    the image's path (from ``locator``, prepare's image_id -> path)."""
    try:
        img, X, img_meta = read_table(images, vector)
    except NonFiniteError as exc:
        raise NonFiniteError(f"{exc}{_paths_of(exc, locator)}") from None
    txt, T, txt_meta = read_table(prompts)
    check_same_model(images, img_meta, prompts, txt_meta)
    return img, require_vectors(images, X, vector, stage), txt, T


def _paths_of(exc: NonFiniteError, locator) -> str:
    """'; image file: <path>' for the image_id an error names, when the locator knows it."""
    import re

    found = re.search(r"image_id=([0-9a-f]{64})", str(exc))
    if not found or not locator or not Path(locator).is_file():
        return ""
    loc = pq.read_table(locator).to_pandas()
    paths = loc.loc[loc["image_id"] == found.group(1), "path"]
    return f"; image file: {paths.iloc[0]}" if len(paths) else ""
