import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.store import TableWriter, atomic_path, check_same_model, read_metadata, read_table, write_table


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
    with pytest.raises(ValueError, match="do not match"):
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
