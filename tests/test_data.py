import hashlib
import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import (PACS_CLASSES, PACS_DOMAINS, BadInputError, assign_split, build_manifest,
                           read_image_bytes)


def test_manifest_on_real_pacs_subset(pacs_subset):
    df, rep = build_manifest(pacs_subset, test_fraction=0.2)
    assert len(df) == 4 * 7 * 5 and rep["skipped"] == 0
    assert list(df.columns) == ["image_id", "path", "domain", "class", "label", "split"]
    row = df.iloc[0]
    assert row["image_id"] == hashlib.sha256(open(row["path"], "rb").read()).hexdigest()
    assert (df["label"] == df["class"].map(PACS_CLASSES.index)).all()
    assert set(df["domain"]) == set(PACS_DOMAINS)
    assert df[df.domain == "sketch"]["path"].str.endswith(".png").all()
    # round(0.2 * 5) = 1 test image in every (domain, class)
    assert (df[df.split == "test"].groupby(["domain", "class"]).size() == 1).all()
    again, _ = build_manifest(pacs_subset, test_fraction=0.2)
    pd.testing.assert_frame_equal(df, again)


def test_split_is_a_function_of_content_not_order():
    df = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(50)], "domain": "photo", "class": "dog"})
    a = assign_split(df, 0.3)
    b = assign_split(df.iloc[::-1], 0.3)
    assert (a == b.loc[a.index]).all() and (a == "test").sum() == 15
    assert (assign_split(df, 0.3, seed=1) != a).any()
    with pytest.raises(BadInputError, match="test_fraction"):
        assign_split(df, 1.5)


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
    }
    bad["truncated"].write_bytes(good[: len(good) // 2])
    bad["zero"].write_bytes(b"")
    bad["text"].write_text("this is not a jpeg\n")
    bad["unknown_class"].mkdir()
    shutil.copy(sorted((pacs_root / "sketch" / "dog").iterdir())[0], bad["unknown_class"] / "z.png")
    return root, bad


def test_bad_files_skip_logs_and_counts(dirty_root, caplog):
    root, bad = dirty_root
    df, rep = build_manifest(root, on_bad_image="skip")
    assert len(df) == 4 * 7 * 2
    assert rep["skipped"] == 4
    reasons = {s["path"]: s["reason"] for s in rep["skipped_files"]}
    assert "unknown class folder" in reasons[str(bad["unknown_class"])]
    assert "zero-byte" in reasons[str(bad["zero"])]
    assert "unreadable image" in reasons[str(bad["truncated"])]
    assert "unreadable image" in reasons[str(bad["text"])]
    for p in bad.values():
        assert str(p) in caplog.text


@pytest.mark.parametrize("kind", ["truncated", "zero", "text", "unknown_class"])
def test_bad_files_fail_names_the_file(dirty_root, kind):
    root, bad = dirty_root
    for other, p in bad.items():  # keep only one bad item
        if other != kind:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(BadInputError, match=str(bad[kind])):
        build_manifest(root, on_bad_image="fail")


def test_bad_params_are_named(pacs_subset, tmp_path):
    with pytest.raises(BadInputError, match="on_bad_image"):
        build_manifest(pacs_subset, on_bad_image="ignore")
    with pytest.raises(BadInputError, match="data.root"):
        build_manifest(tmp_path / "missing")
    with pytest.raises(BadInputError, match="mars"):
        build_manifest(pacs_subset, domains=["photo", "mars"])


def test_hugging_face_parquet_layout(pacs_subset, tmp_path):
    """flwrlabs/pacs: image {bytes, path}, domain string, label ClassLabel (names in HF metadata)."""
    folder, _ = build_manifest(pacs_subset)
    images = [{"bytes": open(p, "rb").read(), "path": p.split("/")[-1]} for p in folder["path"]]
    table = pa.table({"image": images, "domain": folder["domain"].tolist(), "label": folder["label"].tolist()})
    hf = {"info": {"features": {"image": {"_type": "Image"}, "domain": {"dtype": "string", "_type": "Value"},
                                "label": {"names": PACS_CLASSES, "_type": "ClassLabel"}}}}
    table = table.replace_schema_metadata({b"huggingface": json.dumps(hf).encode()})
    (tmp_path / "data").mkdir()
    pq.write_table(table.slice(0, 70), tmp_path / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(70), tmp_path / "data" / "train-00001-of-00002.parquet")
    df, rep = build_manifest(tmp_path)
    assert rep["skipped"] == 0
    key = ["image_id", "domain", "class", "label", "split"]
    pd.testing.assert_frame_equal(df[key].sort_values("image_id").reset_index(drop=True),
                                  folder[key].sort_values("image_id").reset_index(drop=True))
    assert "#" in df["path"].iloc[0]
    assert hashlib.sha256(read_image_bytes(df["path"].iloc[3])).hexdigest() == df["image_id"].iloc[3]
