"""Images -> manifest: ``<domain>/<class>/<image>`` folders (DomainBed's layout) or the Hugging Face parquet layout,
for a label space (domains, classes) that :mod:`pipeline.datasets` resolves from the preset and the folders.

Every image is validated (fully decoded, :func:`pipeline.images.check_image`) and identified by the
sha256 of its bytes; the train/test split is a deterministic function of that hash, the same for every
copy of an image (:func:`pipeline.splits.content_split`).

Two outputs, so that nothing downstream depends on *where* the files are:

* the **manifest** (``MANIFEST_COLUMNS``: image_id, domain, class, label, split) holds content only,
  sorted by (domain, class, image_id): the same images reached through another ``data.root`` give a
  byte-identical manifest, and no later stage reruns;
* the **locator** (``LOCATOR_COLUMNS``: image_id, path, row-aligned with the manifest) says where
  to read each image's bytes. Only the stages that read pixels open it.

Dataset rules (``data.on_bad_image``: ``fail`` stops at the first problem with one line naming it,
``skip`` logs it and lists it in the report): hidden files and folders are ignored at any depth;
an unreadable / zero-byte / non-image file, a file or folder outside ``<domain>/<class>/``, a link to a
folder that leads back into the tree (a loop, or another folder of it), a listed domain or class without a
folder, a class folder without images, and a (domain, class) that ``data.test_fraction`` leaves without a
train or a test image are each a problem. Duplicates (the same bytes in several files) follow
``data.on_duplicate`` (:func:`duplicates`). The label space never changes (label = index in the classes):
a skipped class keeps its label.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .errors import BadInputError
from .splits import assign_split, content_split, unit_hash  # noqa: F401 (re-exported)
from .images import IMAGE_SUFFIXES, PARQUET_ROW_SEP, check_image, read_image_bytes
from .params import Data
from .store import read_table, write_table

log = logging.getLogger(__name__)

PACS_DOMAINS = ["photo", "art_painting", "cartoon", "sketch"]
PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
MANIFEST_COLUMNS = ["image_id", "domain", "class", "label", "split"]
LOCATOR_COLUMNS = ["image_id", "path"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: a file (``path``) or a (domain, class) cell; ``reason`` is a
    deterministic string (no object reprs), so reports are reproducible."""

    reason: str
    path: str | None = None
    domain: str | None = None
    cls: str | None = None

    def where(self) -> str:
        return self.path or "/".join(x for x in (self.domain, self.cls) if x)

    def to_dict(self) -> dict:
        return {k: v for k, v in (("path", self.path), ("domain", self.domain), ("class", self.cls),
                                  ("reason", self.reason)) if v is not None}


def _hidden(name: str) -> bool:
    return name.startswith(".")


# --------------------------------------------------------------------------- scanning layouts
def _subfolders(folder: Path) -> list[str]:
    """Names of the visible folders (or links to folders) directly in ``folder``."""
    return sorted(e.name for e in os.scandir(folder) if not _hidden(e.name) and e.is_dir())


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _image_files(folder: Path, root: Path) -> tuple[list[Path], list[Problem]]:
    """Image files under ``folder`` at any depth, hidden files and folders pruned; other files are problems.

    A link to a folder is followed only when it leads out of the dataset tree (``root``, resolved): one that
    points at a folder containing it is a loop, one into the tree would list the same images again under
    another folder -- both are problems naming the link (under ``data.on_bad_image``). A link to a file is
    read like the file (its bytes make its image_id; a copy of an image elsewhere in the tree is a duplicate)."""
    files, problems, seen = [], [], set()

    def walk(here: Path, real: Path) -> None:
        seen.add(real)
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(f"cannot list folder ({type(exc).__name__}: {exc.strerror or exc})", path=str(here)))
            return
        for e in entries:
            if _hidden(e.name):
                continue
            f = Path(e.path)
            if e.is_symlink() and e.is_dir():
                try:
                    target = f.resolve(strict=True)
                except (OSError, RuntimeError):
                    problems.append(Problem("symlink loop (the link cannot be resolved)", path=str(f)))
                    continue
                if _within(real, target):
                    problems.append(Problem(f"symlink loop: links to {target}, a folder that contains it", path=str(f)))
                elif _within(target, root):
                    problems.append(Problem(f"link into the dataset tree ({target}): its images would be listed "
                                            "twice, under two folders", path=str(f)))
                elif target in seen:
                    problems.append(Problem(f"link to {target}, a folder already listed", path=str(f)))
                else:
                    walk(f, target)
            elif e.is_dir():
                walk(f, real / e.name)
            elif f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
            else:
                problems.append(Problem(f"not an image file extension ({f.suffix or 'none'})", path=str(f)))

    walk(folder, folder.resolve())
    return files, problems


def _strays(folder: Path, allowed: list[str], level: str, param: str) -> list[Problem]:
    """Files, and folders not in ``allowed``, directly inside ``folder`` (hidden entries ignored)."""
    out = []
    for entry in sorted(folder.iterdir()):
        if _hidden(entry.name):
            continue
        if not entry.is_dir():
            out.append(Problem("file outside <domain>/<class>/", path=str(entry)))
        elif entry.name not in allowed:
            out.append(Problem(f"{level} folder not listed in {param}", path=str(entry)))
    return out


def _scan_folders(root: Path, domains: list[str], classes: list[str]) -> tuple[list[dict], list[Problem]]:
    """``root/<domain>/<class>/**/<image>``; anything else is a problem."""
    records, problems = [], _strays(root, domains, "domain", "data.domains (or the data.dataset preset)")
    real_root = root.resolve()
    for domain in domains:
        ddir = root / domain
        if not ddir.is_dir():
            problems.append(Problem("no folder for this domain of data.domains (or the data.dataset preset)",
                                    domain=domain))
            continue
        problems += _strays(ddir, classes, "class", "data.classes")
        for label, cls in enumerate(classes):
            cdir = ddir / cls
            if not cdir.is_dir():
                problems.append(Problem("no folder for this class of data.classes", domain=domain, cls=cls))
                continue
            files, bad = _image_files(cdir, real_root)
            problems += bad
            if not files:
                problems.append(Problem("class folder holds no image file", domain=domain, cls=cls))
            records += [{"path": str(f), "domain": domain, "class": cls, "label": label} for f in files]
    return records, problems


def _hf_class_names(file: Path) -> list[str] | None:
    """ClassLabel names that the ``datasets`` library stores in the parquet schema metadata."""
    import json

    meta = pq.read_schema(file).metadata or {}
    try:
        info = json.loads(meta[b"huggingface"])
        return list(info["info"]["features"]["label"]["names"])
    except (KeyError, TypeError, ValueError):
        return None


def _scan_hf_parquet(files: list[Path], domains: list[str], classes: list[str]) -> tuple[list[dict], list[Problem]]:
    """Hugging Face ``flwrlabs/pacs`` layout: columns ``image`` ({bytes, path}), ``domain``, ``label``."""
    records, problems = [], []
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
                problems.append(Problem(f"domain {domain!r} not listed in data.domains", path=addr))
            elif cls not in classes:
                problems.append(Problem(f"class {cls!r} (label {label}) not listed in data.classes", path=addr))
            else:
                records.append({"path": addr, "domain": domain, "class": cls, "label": classes.index(cls)})
    return records, problems


def parquet_files(root: Path) -> list[Path]:
    """Parquet files of a HF dataset at ``root`` (a file, or a folder such as ``data/train-*.parquet``)."""
    if root.is_file():
        return [root] if root.suffix == ".parquet" else []
    return sorted(p for p in root.rglob("*.parquet") if not any(_hidden(x) for x in p.relative_to(root).parts))


def _folder_layout(root: Path, domains: list[str] | None) -> bool:
    if not root.is_dir():
        return False
    return any((root / d).is_dir() for d in domains) if domains else bool(_subfolders(root))


def scan(root: str | Path, domains: list[str], classes: list[str]) -> tuple[list[dict], list[Problem]]:
    """Every candidate image under ``root`` in either supported layout, and every problem found."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(f"data.root={root} does not exist")
    if _folder_layout(root, domains):
        return _scan_folders(root, domains, classes)
    files = parquet_files(root)
    if not files:
        raise BadInputError(f"data.root={root}: neither <domain>/<class>/<image> folders "
                            f"(data.domains = {domains}) nor parquet files found")
    return _scan_hf_parquet(files, domains, classes)


# --------------------------------------------------------------------------- validation cache
class ValidationCache:
    """What :func:`build_manifest` learnt about each file, kept across runs in ``path`` (Parquet):
    the sha256 of a file with a given (path, size, mtime) -- the test git and DVC use to skip rehashing --
    and whether the bytes with a given sha256 decode. An unchanged dataset is rescanned without
    reading an image; a relocated one is re-read and hashed but not decoded again."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.digest: dict[str, str] = {}  # stat key -> sha256
        self.verdict: dict[str, str] = {}  # sha256 -> "" (valid) or the reason it is not
        if self.path and self.path.is_file():
            try:
                df = read_table(self.path)[0]
            except Exception as exc:  # a corrupt cache is rebuilt, never trusted
                log.warning("ignoring unreadable validation cache %s (%s)", self.path, exc)
            else:
                self.digest = dict(zip(df["key"], df["image_id"]))
                self.verdict = dict(zip(df["image_id"], df["reason"]))

    @staticmethod
    def key(path: str) -> str | None:
        file = path.split(PARQUET_ROW_SEP)[0] if PARQUET_ROW_SEP in path else path
        try:
            st = os.stat(file)
        except OSError:
            return None
        return f"{path}|{st.st_size}|{st.st_mtime_ns}"

    def _answer(self, key: str | None) -> tuple[str, str | None] | None:
        digest = self.digest.get(key) if key else None
        if digest is not None and digest in self.verdict:
            return digest, self.verdict[digest] or None
        return None

    def known(self, path: str) -> tuple[str, str | None] | None:
        """:meth:`check`'s answer from the file's stats alone, or None when the file must be read."""
        return self._answer(self.key(path))

    def check(self, path: str) -> tuple[str | None, str | None]:
        """(sha256, None) for a valid image, (sha256 or None, reason) otherwise."""
        key = self.key(path)
        answer = self._answer(key)
        if answer is not None:
            return answer
        try:
            data = read_image_bytes(path)
        except OSError as exc:
            return None, f"cannot read ({type(exc).__name__}: {exc.strerror or exc})"
        digest = hashlib.sha256(data).hexdigest()
        reason = self.verdict.get(digest, None)
        if reason is None:
            reason = check_image(data) or ""
        if key:
            self.digest[key] = digest
        self.verdict[digest] = reason
        return digest, reason or None

    def save(self) -> None:
        if self.path is None:
            return
        keys = list(self.digest)
        df = pd.DataFrame({"key": keys, "image_id": [self.digest[k] for k in keys],
                           "reason": [self.verdict.get(self.digest[k], "") for k in keys]})
        write_table(self.path, df)


# --------------------------------------------------------------------------- manifest
def coverage_problems(df: pd.DataFrame, domains: list[str], classes: list[str], test_fraction: float) -> list[Problem]:
    """Every listed (domain, class) that has no valid image, or no train / no test image."""
    counts = df.groupby(["domain", "class", "split"]).size()
    out = []
    for d in domains:
        if not (df["domain"] == d).any():
            continue  # reported by the scan (no folder) or below (no valid image at all)
        for c in classes:
            n = {s: int(counts.get((d, c, s), 0)) for s in ("train", "test")}
            if not n["train"] and not n["test"]:
                out.append(Problem("no valid image", domain=d, cls=c))
            elif not n["train"] or not n["test"]:
                lacking = "train" if not n["train"] else "test"
                out.append(Problem(f"{n['train'] + n['test']} image(s): data.test_fraction={test_fraction} leaves "
                                   f"no {lacking} image", domain=d, cls=c))
    return out


def _fail(p: Problem, root):
    where = p.where() if p.path else f"data.root={root}: {p.where()}"
    raise BadInputError(f"{where}: {p.reason} (set data.on_bad_image: skip to go on without it)")


def build_manifest(root: str | Path, data: Data = Data(), cache: str | Path | None = None,
                   domains: list[str] | None = None, classes: list[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Scan ``root``, validate and hash every image; return (manifest, locator, report).

    ``data``: the ``data`` params (test_fraction, split_seed, on_bad_image, on_duplicate, workers);
    ``domains`` / ``classes``: the label space (default: ``data.domains`` / ``data.classes``;
    :func:`pipeline.datasets.prepare_dataset` discovers them). ``on_bad_image='fail'`` raises
    :class:`BadInputError` naming the first problem (file, link, or domain / class and the param); ``'skip'``
    logs each one and lists it in the report. Duplicates (the same bytes twice) follow ``data.on_duplicate``
    (:func:`duplicates`). ``cache``: a :class:`ValidationCache` file (None: validate everything from scratch).
    """
    domains, classes = domains or data.domains, classes or data.classes
    if not domains or not classes:
        raise ValueError("build_manifest needs the domains and classes: pipeline.datasets.prepare_dataset discovers them")
    test_fraction, on_bad_image = data.test_fraction, data.on_bad_image
    records, problems = scan(root, domains, classes)
    if problems and on_bad_image == "fail":
        _fail(problems[0], root)
    vc = ValidationCache(cache)
    results = [vc.known(r["path"]) for r in records]  # unchanged files: their stats answer, no thread
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        with ThreadPoolExecutor(data.workers) as pool:
            checked = pool.map(vc.check, [records[i]["path"] for i in todo])
            for i, r in zip(todo, tqdm(checked, total=len(todo), desc="prepare: hash+validate", unit="img",
                                       mininterval=2)):
                results[i] = r
        vc.save()
    rows = []
    for rec, (digest, reason) in zip(records, results):
        if reason is not None:
            p = Problem(reason, path=rec["path"])
            if on_bad_image == "fail":
                _fail(p, root)
            problems.append(p)
            continue
        rows.append({"image_id": digest, **rec})
    df = pd.DataFrame(rows, columns=["image_id", "path", "domain", "class", "label"])
    if df.empty:
        raise BadInputError(f"data.root={root}: no valid image of data.domains x data.classes found")
    rank = {"domain": {d: i for i, d in enumerate(domains)}, "class": {c: i for i, c in enumerate(classes)}}
    df = df.sort_values(["domain", "class", "image_id", "path"], key=lambda c: c.map(rank[c.name]) if c.name in rank
                        else c, kind="stable").reset_index(drop=True)
    df, dups = duplicates(df, data.on_duplicate, root)
    df["split"] = assign_split(df, test_fraction, data.split_seed)
    cells = coverage_problems(df, domains, classes, test_fraction)
    if cells and on_bad_image == "fail":
        _fail(cells[0], root)
    problems += cells
    for p in problems:
        log.warning("skipped %s: %s", p.where(), p.reason)
    return df[MANIFEST_COLUMNS], df[LOCATOR_COLUMNS], manifest_report(df, problems, domains, classes, root, dups)


def duplicates(df: pd.DataFrame, on_duplicate: str, root) -> tuple[pd.DataFrame, dict]:
    """What ``data.on_duplicate`` does with files holding the same bytes (one image_id, several rows), and the
    counts of ``reports/prepare.json``: ``keep`` (DomainBed's behaviour: every occurrence keeps its row and
    label; :func:`content_split` puts every copy on one side; the embedding is computed once), ``fail``
    (refuse, naming two copies), ``one`` (keep the first copy in label-space order, drop the others).
    Logged in one line when there is any."""
    counts = df["image_id"].value_counts()
    copied = counts[counts > 1].index
    sub = df[df["image_id"].isin(copied)]
    report = {"duplicate_files": int(len(df) - len(counts)), "contents_with_copies": int(len(copied)),
              "conflicting_labels": int((sub.groupby("image_id")["class"].nunique() > 1).sum()),
              "shared_between_domains": int((sub.groupby("image_id")["domain"].nunique() > 1).sum()),
              "on_duplicate": on_duplicate, "examples": []}
    if not len(copied):
        return df, report
    for h, group in list(sub.groupby("image_id", sort=False))[:5]:
        report["examples"].append({"image_id": h, "copies": [{"domain": d, "class": c, "path": _relative(f, root)}
                                                             for d, c, f in zip(group["domain"], group["class"],
                                                                                group["path"])]})
    if on_duplicate == "fail":
        first = sub.groupby("image_id", sort=False).head(2).iloc[:2]
        raise BadInputError(f"{first['path'].iloc[0]} and {first['path'].iloc[1]} hold the same bytes "
                            f"({report['duplicate_files']} duplicate file(s) in all; data.on_duplicate: keep keeps "
                            "every copy on one split, one keeps the first copy)")
    if on_duplicate == "one":
        keep = ~df["image_id"].duplicated(keep="first")
        report["dropped"] = int((~keep).sum())
        df = df[keep].reset_index(drop=True)
    log.warning("prepare: %d duplicate file(s) -- %d content(s) with copies, %d under conflicting labels, %d shared "
                "between domains; data.on_duplicate: %s (%s)", report["duplicate_files"], report["contents_with_copies"],
                report["conflicting_labels"], report["shared_between_domains"], on_duplicate,
                "every copy keeps its row, all copies on one side of every split" if on_duplicate == "keep" else
                "the first copy of each kept")
    return df, report


def manifest_report(df: pd.DataFrame, problems: list[Problem], domains: list[str], classes: list[str],
                    root: str | Path, dups: dict | None = None) -> dict:
    """Counts per domain and split, duplicates, and every problem (skipped file or link, missing cell)."""
    counts = {d: {s: int(((df["domain"] == d) & (df["split"] == s)).sum()) for s in ("train", "test")}
              for d in domains}
    files = [p for p in problems if p.path]
    cells = [p for p in problems if not p.path]
    return {
        "images": int(len(df)),
        "unique_images": int(df["image_id"].nunique()),
        "domains": list(domains),
        "classes": len(classes),
        "per_domain": counts,
        "duplicates": dups or {},
        "skipped": len(files),
        "skipped_files": [{**p.to_dict(), "path": _relative(p.path, root)} for p in files],
        "missing": [p.to_dict() for p in cells],
    }


def _relative(path: str, root: str | Path) -> str:
    """``path`` relative to ``data.root`` when under it: the report reads the same wherever the data lives."""
    root = str(Path(root))
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


def read_locator(manifest: pd.DataFrame, locator: str | Path) -> pd.Series:
    """Path of every manifest row (row-aligned), from the locator prepare wrote beside the manifest."""
    loc = read_table(locator)[0]
    if len(loc) != len(manifest) or not (loc["image_id"].to_numpy() == manifest["image_id"].to_numpy()).all():
        raise BadInputError(f"{locator} does not match the manifest (rerun `dvc repro prepare`)")
    return loc["path"]


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
