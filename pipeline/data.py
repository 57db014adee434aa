"""Datasets -> manifest: PACS-style folders or the Hugging Face parquet layout of ``flwrlabs/pacs``.

PACS (Li, Yang, Song, Hospedales, "Deeper, Broader and Artier Domain Generalization", ICCV 2017):
4 domains x 7 classes, 9,991 images. Every image is validated (fully decoded) and identified by the
sha256 of its bytes; the train/test split is a deterministic function of that hash.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from PIL import Image
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

PACS_DOMAINS = ["photo", "art_painting", "cartoon", "sketch"]
PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
PARQUET_ROW_SEP = "#"  # "<file.parquet>#<row>" addresses an image stored inside a parquet file
MANIFEST_COLUMNS = ["image_id", "path", "domain", "class", "label", "split"]


class BadInputError(ValueError):
    """Input that the pipeline refuses; the message names the file or the param at fault."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


# --------------------------------------------------------------------------- reading images
@functools.lru_cache(maxsize=2)
def _parquet_images(file: str) -> list:
    col = pq.read_table(file, columns=["image"]).column("image").to_pylist()
    return [c["bytes"] if isinstance(c, dict) else c for c in col]


def read_image_bytes(path: str) -> bytes:
    """Bytes of an image file, or of row ``k`` of a parquet file addressed as ``file.parquet#k``."""
    if PARQUET_ROW_SEP in path and path.split(PARQUET_ROW_SEP)[0].endswith(".parquet"):
        file, row = path.rsplit(PARQUET_ROW_SEP, 1)
        return _parquet_images(file)[int(row)]
    return Path(path).read_bytes()


def decode_image(data: bytes) -> Image.Image:
    """Fully decode ``data`` to an RGB PIL image (raises on truncated / non-image data)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def check_image(data: bytes) -> str | None:
    """None if ``data`` decodes completely as an image, else a short reason."""
    if not data:
        return "zero-byte file"
    try:
        decode_image(data)
    except Exception as exc:  # PIL raises several types: UnidentifiedImageError, OSError, SyntaxError
        return f"unreadable image ({type(exc).__name__}: {exc})"
    return None


# --------------------------------------------------------------------------- scanning layouts
def _unexpected(folder: Path, allowed: list[str], level: str, param: str) -> list[Skipped]:
    """Files, and folders not in ``allowed``, directly inside ``folder`` (dotfiles ignored)."""
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            out.append(Skipped(str(entry), "file outside <domain>/<class>/"))
        elif entry.name not in allowed:
            out.append(Skipped(str(entry), f"unknown {level} folder ({param} = {allowed})"))
    return out


def _scan_folders(root: Path, domains: list[str], classes: list[str]) -> tuple[list[dict], list[Skipped]]:
    """``root/<domain>/<class>/<image>``; anything else is reported as skipped."""
    records, skipped = [], _unexpected(root, domains, "domain", "data.domains")
    for domain in domains:
        ddir = root / domain
        if not ddir.is_dir():
            raise BadInputError(f"data.root={root}: no folder for domain {domain!r} listed in data.domains")
        skipped += _unexpected(ddir, classes, "class", "data.classes")
        for label, cls in enumerate(classes):
            cdir = ddir / cls
            if not cdir.is_dir():
                continue
            for f in sorted(cdir.rglob("*")):
                if f.name.startswith(".") or f.is_dir():
                    continue
                if f.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(Skipped(str(f), f"not an image file extension ({f.suffix or 'none'})"))
                    continue
                records.append({"path": str(f), "domain": domain, "class": cls, "label": label})
    return records, skipped


def _hf_class_names(file: Path) -> list[str] | None:
    """ClassLabel names that the ``datasets`` library stores in the parquet schema metadata."""
    meta = pq.read_schema(file).metadata or {}
    try:
        info = json.loads(meta[b"huggingface"])
        return list(info["info"]["features"]["label"]["names"])
    except (KeyError, TypeError, ValueError):
        return None


def _scan_hf_parquet(files: list[Path], domains: list[str], classes: list[str]) -> tuple[list[dict], list[Skipped]]:
    """Hugging Face ``flwrlabs/pacs`` layout: columns ``image`` ({bytes, path}), ``domain``, ``label``."""
    records, skipped = [], []
    for file in files:
        cols = pq.read_schema(file).names
        missing = {"image", "domain", "label"} - set(cols)
        if missing:
            raise BadInputError(f"{file}: parquet lacks columns {sorted(missing)} (need image, domain, label)")
        names = _hf_class_names(file) or classes
        t = pq.read_table(file, columns=["domain", "label"]).to_pandas()
        for row, (domain, label) in enumerate(zip(t["domain"], t["label"])):
            addr = f"{file}{PARQUET_ROW_SEP}{row}"
            cls = names[int(label)] if 0 <= int(label) < len(names) else None
            if domain not in domains:
                skipped.append(Skipped(addr, f"unknown domain {domain!r} (data.domains = {domains})"))
            elif cls not in classes:
                skipped.append(Skipped(addr, f"unknown class {cls!r} (label {label}; data.classes = {classes})"))
            else:
                records.append({"path": addr, "domain": domain, "class": cls, "label": classes.index(cls)})
    return records, skipped


def parquet_files(root: Path) -> list[Path]:
    """Parquet files of a HF dataset at ``root`` (a file, or a folder such as ``data/train-*.parquet``)."""
    if root.is_file():
        return [root] if root.suffix == ".parquet" else []
    return sorted(root.rglob("*.parquet"))


def scan(root: str | Path, domains: list[str], classes: list[str]) -> tuple[list[dict], list[Skipped]]:
    """Find every candidate image under ``root`` in either supported layout."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(f"data.root={root} does not exist")
    if root.is_dir() and any((root / d).is_dir() for d in domains):
        return _scan_folders(root, domains, classes)
    files = parquet_files(root)
    if not files:
        raise BadInputError(f"data.root={root}: neither <domain>/<class>/<image> folders "
                            f"(data.domains = {domains}) nor parquet files found")
    return _scan_hf_parquet(files, domains, classes)


# --------------------------------------------------------------------------- manifest
def _hash_and_check(path: str) -> tuple[str | None, str | None]:
    try:
        data = read_image_bytes(path)
    except OSError as exc:
        return None, f"cannot read ({exc})"
    reason = check_image(data)
    return (hashlib.sha256(data).hexdigest(), None) if reason is None else (None, reason)


def unit_hash(key: str) -> float:
    """Deterministic uniform number in [0, 1) from a string (first 64 bits of its sha256)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) / 2.0**64


def assign_split(df: pd.DataFrame, test_fraction: float, seed: int = 0) -> pd.Series:
    """Deterministic stratified split: in each (domain, class) the round(f*n) images with the
    smallest ``unit_hash(seed:image_id)`` are ``test`` (at least one when n >= 2 and f > 0)."""
    if not 0.0 <= test_fraction < 1.0:
        raise BadInputError(f"data.test_fraction={test_fraction} must be in [0, 1)")
    u = df["image_id"].map(lambda h: unit_hash(f"{seed}:{h}"))
    split = pd.Series("train", index=df.index)
    for _, idx in df.groupby(["domain", "class"]).groups.items():
        n = len(idx)
        k = int(math.floor(test_fraction * n + 0.5))
        if test_fraction > 0 and n >= 2:
            k = max(k, 1)
        order = u.loc[idx].sort_values(kind="stable").index[:k]
        split.loc[order] = "test"
    return split


def build_manifest(root: str | Path, domains: list[str] | None = None, classes: list[str] | None = None,
                   test_fraction: float = 0.2, on_bad_image: str = "fail", seed: int = 0,
                   workers: int = 4) -> tuple[pd.DataFrame, dict]:
    """Scan, validate and hash every image; return (manifest, report).

    ``on_bad_image='fail'`` raises :class:`BadInputError` naming the first bad file;
    ``'skip'`` logs each one and lists it in the report.
    """
    if on_bad_image not in ("fail", "skip"):
        raise BadInputError(f"data.on_bad_image={on_bad_image!r} must be 'fail' or 'skip'")
    domains = list(domains or PACS_DOMAINS)
    classes = list(classes or PACS_CLASSES)
    records, skipped = scan(root, domains, classes)
    if skipped and on_bad_image == "fail":
        s = skipped[0]
        raise BadInputError(f"{s.path}: {s.reason} (set data.on_bad_image: skip to skip such files)")
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(_hash_and_check, [r["path"] for r in records]), total=len(records),
                            desc="prepare: hash+validate", unit="img", mininterval=2))
    rows = []
    for rec, (digest, reason) in zip(records, results):
        if reason is not None:
            if on_bad_image == "fail":
                raise BadInputError(f"{rec['path']}: {reason} (set data.on_bad_image: skip to skip such files)")
            skipped.append(Skipped(rec["path"], reason))
            continue
        rows.append({"image_id": digest, **rec})
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    df = pd.DataFrame(rows, columns=["image_id", "path", "domain", "class", "label"])
    if df.empty:
        raise BadInputError(f"data.root={root}: no valid images found")
    df["split"] = assign_split(df, test_fraction, seed)
    df = df[MANIFEST_COLUMNS].sort_values(["domain", "class", "path"], key=_domain_order(domains)).reset_index(drop=True)
    return df, manifest_report(df, skipped, domains)


def _domain_order(domains: list[str]):
    rank = {d: i for i, d in enumerate(domains)}
    return lambda col: col.map(rank) if col.name == "domain" else col


def manifest_report(df: pd.DataFrame, skipped: list[Skipped], domains: list[str]) -> dict:
    """Counts per domain and split, duplicates, and every skipped file with its reason."""
    counts = {d: {s: int(((df["domain"] == d) & (df["split"] == s)).sum()) for s in ("train", "test")}
              for d in domains}
    return {
        "images": int(len(df)),
        "unique_images": int(df["image_id"].nunique()),
        "per_domain": counts,
        "skipped": len(skipped),
        "skipped_files": [{"path": s.path, "reason": s.reason} for s in skipped],
    }


def make_subset(root: str | Path, out: str | Path, per_class: int, domains: list[str] | None = None,
                classes: list[str] | None = None) -> Path:
    """Symlink the first ``per_class`` files (by name) of every domain/class into ``out``: a small,
    deterministic real-PACS subset for tests and CI (no image is copied)."""
    root, out = Path(root).resolve(), Path(out)
    for d in domains or PACS_DOMAINS:
        for c in classes or PACS_CLASSES:
            (out / d / c).mkdir(parents=True, exist_ok=True)
            for f in sorted((root / d / c).iterdir())[:per_class]:
                link = out / d / c / f.name
                if not link.exists():
                    link.symlink_to(f)
    return out


