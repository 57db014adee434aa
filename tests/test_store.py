import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pathlib import Path

from pipeline.errors import NonFiniteError
from pipeline.store import (TableWriter, atomic_path, check_same_model, read_feature_stores, read_metadata, read_table,
                            write_json, write_table)

REPO = Path(__file__).resolve().parents[1]


def test_roundtrip_embeddings_and_metadata(tmp_path):
    df = pd.DataFrame({"image_id": ["a", "b", "c"], "domain": ["photo", "sketch", "photo"]})
    emb = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_table(tmp_path / "s.parquet", df, emb, metadata={"model": "m", "dim": 4})
    back, e, meta = read_table(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(back, df)
    np.testing.assert_array_equal(e, emb)
    assert e.dtype == np.float32 and meta == {"model": "m", "dim": 4}
    assert read_metadata(tmp_path / "s.parquet") == meta
    field = pq.read_schema(tmp_path / "s.parquet").field("embedding")
    assert isinstance(field.type, pa.FixedSizeListType)
    assert field.type.list_size == 4 and field.type.value_type == pa.float32()


def test_write_refuses_mismatched_rows(tmp_path):
    with pytest.raises(ValueError, match="does not match 2 rows"):
        write_table(tmp_path / "s.parquet", pd.DataFrame({"a": [1, 2]}), np.zeros((3, 2)))
    assert not list(tmp_path.iterdir())


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_mixed_models_refused():
    with pytest.raises(ValueError, match="different models"):
        check_same_model("a", {"model": "x", "weight_sha256": "1"}, "b", {"model": "x", "weight_sha256": "2"})


def test_streamed_store_equals_one_shot_and_is_atomic(tmp_path):
    """TableWriter: one row group per part, the same table as write_table; nothing left on failure."""
    df = pd.DataFrame({"image_id": list("abcde"), "label": [0, 1, 2, 3, 4]})
    emb = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    write_table(tmp_path / "one.parquet", df, emb, metadata={"m": 1})
    with TableWriter(tmp_path / "parts.parquet", {"m": 1}) as w:
        assert not (tmp_path / "parts.parquet").exists()  # only a temporary file until the block ends
        for start in (0, 2, 4):
            w.write(df.iloc[start:start + 2], emb[start:start + 2])
    assert pq.ParquetFile(tmp_path / "parts.parquet").num_row_groups == 3
    (a, ea, ma), (b, eb, mb) = read_table(tmp_path / "one.parquet"), read_table(tmp_path / "parts.parquet")
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(ea, eb)
    assert ma == mb == {"m": 1}
    with pytest.raises(RuntimeError, match="boom"), TableWriter(tmp_path / "bad.parquet") as w:
        w.write(df, emb)
        raise RuntimeError("boom")
    with pytest.raises(ValueError, match="nothing was written"), TableWriter(tmp_path / "empty.parquet"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.parquet", "parts.parquet"]


def _stores(tmp_path, bad_row=None):
    """An image store (ids only, no paths), a prompt store and prepare's locator; row ``bad_row`` NaN."""
    ids = [f"{i:064x}" for i in range(6)]
    img = pd.DataFrame({"image_id": ids, "domain": ["photo", "sketch"] * 3, "class": "dog", "label": 0,
                        "split": "test"})
    X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    if bad_row is not None:
        X[bad_row, 2] = np.nan
    meta = {"model": "m", "weight_sha256": "w"}
    write_table(tmp_path / "features" / "images.parquet", img, X, meta)
    txt = pd.DataFrame({"text": ["a photo", "a sketch"], "kind": "domain", "domain": ["photo", "sketch"], "class": None})
    write_table(tmp_path / "features" / "prompts.parquet", txt, np.ones((2, 4), np.float32), meta)
    write_table(tmp_path / "data" / "paths.parquet", pd.DataFrame({"image_id": ids, "path": [f"/data/{i}.jpg" for i in range(6)]}))
    write_json(tmp_path / "data" / "domains.json", {"domains": ["photo", "sketch"],
                                                   "descriptions": {"photo": "a photo", "sketch": "a sketch"}})
    write_json(tmp_path / "data" / "classes.json", {"classes": ["dog"], "names": ["dog"]})
    return tmp_path


def test_a_non_finite_embedding_is_refused_naming_the_store_row_and_image_path(tmp_path):
    root = _stores(tmp_path, bad_row=4)
    with pytest.raises(NonFiniteError, match=r"features/images.parquet: row 4 \(image_id=0{63}4, domain=photo"):
        read_table(root / "features" / "images.parquet")
    with pytest.raises(NonFiniteError, match="image file: /data/4.jpg"):
        read_feature_stores(root / "features" / "images.parquet", root / "features" / "prompts.parquet",
                            root / "data" / "paths.parquet")


@pytest.mark.parametrize("stage", ["similarity", "domain_gap", "diagnostics", "evaluate"])
def test_every_feature_stage_stops_on_a_nan_with_one_line(stage, tmp_path):
    """Each stage that reads the image store refuses it (rc 1, one line naming the path), before any output."""
    import os
    import subprocess
    import sys

    root = _stores(tmp_path, bad_row=1)
    (root / "params.yaml").write_text("data: {domains: [photo, sketch]}\n")
    r = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py")], cwd=root, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, DVC_ROOT=str(root)))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: features/images.parquet: row 1 (image_id=" + "0" * 63 + "1"), last
    assert last.endswith("image file: /data/1.jpg")
    assert not (root / "reports").exists()
