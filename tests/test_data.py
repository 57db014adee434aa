import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import pipeline.data as data_mod
from pipeline.data import LOCATOR_COLUMNS, MANIFEST_COLUMNS, PACS_CLASSES, PACS_DOMAINS, BadInputError, assign_split
from pipeline.datasets import prepare_dataset
from pipeline.images import read_image_bytes
from pipeline.params import Data, ParamsError, Prompts
from pipeline.store import write_table


def build_manifest(root, data=Data(), cache=None):
    """Stage prepare's manifest, locator and report (the label space discovered as the stage does)."""
    return prepare_dataset(root, data, cache=cache)[:3]


def test_manifest_on_real_pacs_subset(pacs_subset):
    df, loc, rep = build_manifest(pacs_subset, Data(test_fraction=0.2))
    assert len(df) == 4 * 7 * 5 and rep["skipped"] == 0 and rep["missing"] == []
    assert list(df.columns) == MANIFEST_COLUMNS and list(loc.columns) == LOCATOR_COLUMNS
    assert (loc["image_id"] == df["image_id"]).all()
    assert df["image_id"].iloc[0] == hashlib.sha256(open(loc["path"].iloc[0], "rb").read()).hexdigest()
    assert (df["label"] == df["class"].map(PACS_CLASSES.index)).all()
    assert set(df["domain"]) == set(PACS_DOMAINS)
    assert loc[df.domain == "sketch"]["path"].str.endswith(".png").all()
    # round(0.2 * 5) = 1 test image in every (domain, class)
    assert (df[df.split == "test"].groupby(["domain", "class"]).size() == 1).all()
    again, _, _ = build_manifest(pacs_subset, Data(test_fraction=0.2))
    pd.testing.assert_frame_equal(df, again)


def test_split_is_a_function_of_content_not_order():
    df = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(50)], "domain": "photo", "class": "dog"})
    a = assign_split(df, 0.3)
    b = assign_split(df.iloc[::-1], 0.3)
    assert (a == b.loc[a.index]).all() and (a == "test").sum() == 15
    assert (assign_split(df, 0.3, seed=1) != a).any()
    with pytest.raises(BadInputError, match="test_fraction"):
        assign_split(df, 1.5)


def test_same_images_under_another_root_give_the_identical_manifest(pacs_root, tmp_path):
    """The manifest holds content only: copies of the files in another place (other names for the
    folders above data.root) give a byte-identical manifest; only the locator changes."""
    a = data_mod.make_subset(pacs_root, tmp_path / "a" / "pacs", per_class=2)
    b = tmp_path / "elsewhere" / "copy"
    shutil.copytree(a, b, symlinks=False)
    (ma, la, _), (mb, lb, _) = build_manifest(a), build_manifest(b)
    write_table(tmp_path / "ma.parquet", ma, metadata={"classes": PACS_CLASSES})
    write_table(tmp_path / "mb.parquet", mb, metadata={"classes": PACS_CLASSES})
    assert (tmp_path / "ma.parquet").read_bytes() == (tmp_path / "mb.parquet").read_bytes()
    assert not set(la["path"]) & set(lb["path"])


def _tree(root, domains=("photo", "sketch"), classes=("dog", "horse"), per_class=3):
    """A generated <domain>/<class>/<image> tree of small PNGs (distinct bytes)."""
    rng = np.random.default_rng(0)
    for d in domains:
        for c in classes:
            (root / d / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / d / c / f"{i}.png")
    return root


def test_hidden_files_and_folders_are_ignored_at_any_depth(tmp_path):
    root = _tree(tmp_path / "ds")
    png = next((root / "photo" / "dog").iterdir()).read_bytes()
    for hidden in (".thumbs/t.png", ".ipynb_checkpoints/x-checkpoint.png", "sub/.cache/deep.png", ".DS_Store"):
        f = root / "photo" / "dog" / hidden
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(png)
    (root / ".git").mkdir()
    (root / ".git" / "junk.png").write_bytes(png)
    (root / "sketch" / ".hidden_class").mkdir()
    (root / "sketch" / "horse" / "nested").mkdir()
    (root / "sketch" / "horse" / "nested" / "ok.png").write_bytes(png)  # a visible subfolder counts
    d = Data(domains=["photo", "sketch"], classes=["dog", "horse"])
    df, loc, rep = build_manifest(root, d)  # on_bad_image: fail -- nothing hidden is a problem
    assert len(df) == 4 * 3 + 1 and rep["skipped"] == 0
    assert not any("/." in p for p in loc["path"])


CELL_CASES = {
    # name: (edit the tree, Data overrides, (domain, class) named, words in the reason)
    "empty class folder": (lambda r: [f.unlink() for f in (r / "photo" / "dog").iterdir()], {},
                           ("photo", "dog"), "no image file"),
    "listed class without folder": (lambda r: None, {"classes": ["dog", "horse", "zebra"]},
                                    ("photo", "zebra"), "no folder for this class of data.classes"),
    "listed domain without folder": (lambda r: None, {"domains": ["photo", "sketch", "cartoon"]},
                                     ("cartoon", None), "no folder for this domain of data.domains"),
    "no test image": (lambda r: [f.unlink() for f in sorted((r / "sketch" / "horse").iterdir())[1:]], {},
                      ("sketch", "horse"), "leaves no test image"),
    "no train image": (lambda r: None, {"test_fraction": 0.9}, ("photo", "dog"), "leaves no train image"),
}


@pytest.mark.parametrize("case", sorted(CELL_CASES))
def test_missing_cells_fail_with_one_line_or_are_recorded_when_skipped(case, tmp_path):
    edit, overrides, (domain, cls), words = CELL_CASES[case]
    root = _tree(tmp_path / "ds")
    edit(root)
    d = Data(**{"domains": ["photo", "sketch"], "classes": ["dog", "horse"], **overrides})
    where = f"{domain}/{cls}" if cls else domain
    with pytest.raises(BadInputError, match=f"{where}: .*{words}") as err:
        build_manifest(root, d)
    assert "\n" not in str(err.value) and "data.on_bad_image: skip" in str(err.value)

    df, loc, rep = build_manifest(root, d.model_copy(update={"on_bad_image": "skip"}))
    assert {"domain": domain, **({"class": cls} if cls else {})}.items() <= rep["missing"][0].items()
    assert words in rep["missing"][0]["reason"]
    # the label space never changes: labels index data.classes, whatever is missing
    assert (df["label"] == df["class"].map(d.classes.index)).all()


def test_domain_and_class_lists_may_not_be_empty():
    from pipeline.params import ParamsError, parse_params

    for key in ("domains", "classes"):
        with pytest.raises(ParamsError, match=f"data.{key}"):
            parse_params({"data": {key: []}})


@pytest.fixture
def dirty_root(pacs_root, tmp_path):
    """Two real images per domain/class (copied), plus one bad item of each kind."""
    root = tmp_path / "pacs"
    for d in PACS_DOMAINS:
        for c in PACS_CLASSES:
            (root / d / c).mkdir(parents=True)
            for f in sorted((pacs_root / d / c).iterdir())[:2]:
                shutil.copy(f, root / d / c / f.name)
    good = sorted((pacs_root / "photo" / "dog").iterdir())[0].read_bytes()
    bad = {
        "truncated": root / "photo" / "dog" / "truncated.jpg",
        "zero": root / "cartoon" / "horse" / "empty.jpg",
        "text": root / "art_painting" / "house" / "notes.jpg",
        "unknown_class": root / "sketch" / "zebra",
        "stray_file": root / "photo" / "readme.txt",
    }
    bad["truncated"].write_bytes(good[: len(good) // 2])
    bad["zero"].write_bytes(b"")
    bad["text"].write_text("this is not a jpeg\n")
    bad["unknown_class"].mkdir()
    shutil.copy(sorted((pacs_root / "sketch" / "dog").iterdir())[0], bad["unknown_class"] / "z.png")
    bad["stray_file"].write_text("notes")
    return root, bad


def test_bad_files_skip_logs_and_counts_with_deterministic_reasons(dirty_root, caplog, tmp_path):
    root, bad = dirty_root
    df, _, rep = build_manifest(root, Data(on_bad_image="skip", classes=PACS_CLASSES))
    assert len(df) == 4 * 7 * 2
    assert rep["skipped"] == 5
    reasons = {s["path"]: s["reason"] for s in rep["skipped_files"]}
    assert "class folder not listed in data.classes" in reasons["sketch/zebra"]
    assert "zero-byte" in reasons["cartoon/horse/empty.jpg"]
    assert "unreadable image" in reasons["photo/dog/truncated.jpg"]
    assert "unreadable image" in reasons["art_painting/house/notes.jpg"]
    assert "outside <domain>/<class>/" in reasons["photo/readme.txt"]
    for p in bad.values():
        assert str(p) in caplog.text
    # reproducible: the same report, byte for byte, from a fresh process-like rerun (no object reprs)
    _, _, again = build_manifest(root, Data(on_bad_image="skip", classes=PACS_CLASSES), cache=tmp_path / "v.parquet")
    assert json.dumps(again) == json.dumps(rep) and " at 0x" not in json.dumps(rep)


@pytest.mark.parametrize("kind", ["truncated", "zero", "text", "unknown_class", "stray_file"])
def test_bad_files_fail_names_the_file(dirty_root, kind):
    root, bad = dirty_root
    for other, p in bad.items():  # keep only one bad item
        if other != kind:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(BadInputError, match=str(bad[kind])):
        build_manifest(root, Data(on_bad_image="fail", classes=PACS_CLASSES))


def test_validation_cache_skips_decoding_unchanged_and_moved_files(pacs_root, tmp_path, monkeypatch):
    root = data_mod.make_subset(pacs_root, tmp_path / "a", per_class=2)
    cache = tmp_path / "cache" / "validated.parquet"
    first = build_manifest(root, cache=cache)
    calls = []
    monkeypatch.setattr(data_mod, "check_image", lambda b: calls.append(1))
    monkeypatch.setattr(data_mod, "read_image_bytes", lambda p: (_ for _ in ()).throw(AssertionError(p)))
    written = cache.stat().st_mtime_ns
    again = build_manifest(root, cache=cache)  # unchanged files: file stats only, no read, no decode
    pd.testing.assert_frame_equal(first[0], again[0])
    assert cache.stat().st_mtime_ns == written  # nothing learnt: the cache is not rewritten
    monkeypatch.setattr(data_mod, "read_image_bytes", read_image_bytes)
    moved = tmp_path / "b"
    shutil.copytree(root, moved)  # new paths: read and hashed again, never decoded again
    pd.testing.assert_frame_equal(first[0], build_manifest(moved, cache=cache)[0])
    assert calls == []


def test_bad_params_are_named(pacs_subset, tmp_path):
    with pytest.raises(BadInputError, match="data.root"):
        build_manifest(tmp_path / "missing")
    with pytest.raises(ParamsError, match="prompts.domains: no description for domain 'mars'"):
        build_manifest(pacs_subset, Data(domains=[*PACS_DOMAINS, "mars"]))
    with pytest.raises(BadInputError, match="mars: no folder for this domain of data.domains"):
        prepare_dataset(pacs_subset, Data(domains=[*PACS_DOMAINS, "mars"]), Prompts(domains={"mars": "a red photo"}))


def test_hugging_face_parquet_layout(pacs_subset, tmp_path):
    """flwrlabs/pacs: image {bytes, path}, domain string, label ClassLabel (names in HF metadata)."""
    folder, loc, _ = build_manifest(pacs_subset)
    images = [{"bytes": open(p, "rb").read(), "path": p.split("/")[-1]} for p in loc["path"]]
    table = pa.table({"image": images, "domain": folder["domain"].tolist(), "label": folder["label"].tolist()})
    hf = {"info": {"features": {"image": {"_type": "Image"}, "domain": {"dtype": "string", "_type": "Value"},
                                "label": {"names": PACS_CLASSES, "_type": "ClassLabel"}}}}
    table = table.replace_schema_metadata({b"huggingface": json.dumps(hf).encode()})
    (tmp_path / "data").mkdir()
    pq.write_table(table.slice(0, 70), tmp_path / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(70), tmp_path / "data" / "train-00001-of-00002.parquet")
    df, hloc, rep = build_manifest(tmp_path)
    assert rep["skipped"] == 0
    pd.testing.assert_frame_equal(df, folder)  # content-only manifests: identical whatever the layout
    assert "#" in hloc["path"].iloc[0]
    assert hashlib.sha256(read_image_bytes(hloc["path"].iloc[3])).hexdigest() == df["image_id"].iloc[3]


# ----------------------------------------------------------------------------- duplicates and links
def _dup_tree(root):
    """6 distinct images per (domain, class) of 2 x 2, then planted copies (same bytes, another file):
    4 inside one class, 4 into the other class of the same domain, 4 into the other domain."""
    root = _tree(root, per_class=6)
    planted = []
    for i in range(4):
        src = root / "photo" / "dog" / f"{i}.png"
        for dst in (root / "photo" / "dog" / f"copy{i}.png", root / "photo" / "horse" / f"from_dog{i}.png",
                    root / "sketch" / "dog" / f"from_photo{i}.png"):
            shutil.copy(src, dst)
            planted.append(dst)
    return root, planted


def test_every_copy_of_an_image_is_on_one_side_of_every_split(tmp_path):
    """Duplicates keep their rows and labels (DomainBed's behaviour) and never link train to test: the same
    content is on one side in every domain, class and trial, for the test and the validation cut."""
    from pipeline.partition import partition

    root, planted = _dup_tree(tmp_path / "ds")
    d = Data(domains=["photo", "sketch"], classes=["dog", "horse"], test_fraction=0.5)
    df, loc, rep = build_manifest(root, d)
    assert len(df) == 4 * 6 + len(planted) and rep["unique_images"] == 24
    assert rep["duplicates"] == {"duplicate_files": 12, "contents_with_copies": 4, "conflicting_labels": 4,
                                 "shared_between_domains": 4, "on_duplicate": "keep", "examples": rep["duplicates"]["examples"]}
    assert len(rep["duplicates"]["examples"]) == 4 and len(rep["duplicates"]["examples"][0]["copies"]) == 4
    assert (df.groupby("image_id")["split"].nunique() == 1).all()
    labels = df[df["image_id"].duplicated(keep=False)].groupby("image_id")["class"].nunique()
    assert (labels == 2).all()  # the copy in the other class keeps its own label
    for trial in range(6):
        for fixed in (False, True):
            part = partition(df, trial, 0.5, 0.5, 0, fixed_test=fixed)
            assert (pd.Series(part).groupby(df["image_id"].to_numpy()).nunique() == 1).all(), (trial, fixed)


def test_on_duplicate_fail_names_two_copies_and_one_keeps_the_first(tmp_path, caplog):
    root, planted = _dup_tree(tmp_path / "ds")
    d = Data(domains=["photo", "sketch"], classes=["dog", "horse"])
    with pytest.raises(BadInputError, match=r"photo/dog/(\d).png and .*photo/dog/copy\1.png hold the same bytes \(12 "):
        build_manifest(root, d.model_copy(update={"on_duplicate": "fail"}))
    df, loc, rep = build_manifest(root, d.model_copy(update={"on_duplicate": "one"}))
    assert len(df) == 24 == df["image_id"].nunique() and rep["duplicates"]["dropped"] == 12
    assert not any("copy" in p or "from_" in p for p in loc["path"])  # the first copy in label-space order stays
    assert "12 duplicate file(s) -- 4 content(s) with copies, 4 under conflicting labels, 4 shared between domains" \
        in caplog.text


def _link(link: Path, target) -> Path:
    link.symlink_to(target, target_is_directory=True)
    return link


@pytest.mark.parametrize("target,words", [(".", "symlink loop"), ("..", "symlink loop"),
                                          ("../../sketch/horse", "link into the dataset tree")])
def test_a_link_back_into_the_tree_is_named_and_never_followed(target, words, tmp_path):
    root = _tree(tmp_path / "ds")
    link = _link(root / "photo" / "dog" / "again", target)
    d = Data(domains=["photo", "sketch"], classes=["dog", "horse"])
    with pytest.raises(BadInputError, match=f"{re.escape(str(link))}: {words}") as err:
        build_manifest(root, d)
    assert "file extension" not in str(err.value)
    df, loc, rep = build_manifest(root, d.model_copy(update={"on_bad_image": "skip"}))
    assert len(df) == 4 * 3 and (loc["path"].str.count("again") == 0).all()  # no image listed twice, no relabel
    assert rep["skipped"] == 1 and words in rep["skipped_files"][0]["reason"]


def test_a_link_out_of_the_tree_is_followed(tmp_path):
    root = _tree(tmp_path / "ds")
    outside = _tree(tmp_path / "elsewhere", domains=("extra",), classes=("dog",), per_class=2)
    _link(root / "photo" / "dog" / "more", outside / "extra" / "dog")
    _link(outside / "extra" / "dog" / "back", outside / "extra")  # a loop out there is named as one too
    d = Data(domains=["photo", "sketch"], classes=["dog", "horse"], on_bad_image="skip")
    df, loc, rep = build_manifest(root, d)
    assert loc["path"].str.contains("/more/").sum() == 2 and len(df) == 4 * 3 + 2
    assert rep["skipped"] == 1 and "symlink loop" in rep["skipped_files"][0]["reason"]
