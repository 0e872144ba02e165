import pyarrow.parquet as pq
import pytest

from prunetts import artifacts


def row():
    return dict(
        model="m",
        variant="dense",
        bench="demo",
        seed=7,
        budget=16,
        impl_version=1,
        n_problems=2,
        n_correct=1,
        accuracy=0.5,
        mean_thinking_tokens=3.0,
        budget_hit_rate=0.5,
    )


def test_round_trip_and_determinism(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    artifacts.write("scores", [row()], a)
    artifacts.write("scores", [row()], b)
    assert a.read_bytes() == b.read_bytes()
    assert artifacts.read("scores", a).to_pylist() == [row()]


def test_every_schema_has_impl_version_and_model_or_bench():
    for kind, schema in artifacts.SCHEMAS.items():
        assert "impl_version" in schema.names, kind
        assert {"model", "bench"} & set(schema.names), kind


def test_missing_or_extra_columns_rejected(tmp_path):
    bad = row()
    del bad["budget"]
    with pytest.raises(artifacts.ArtifactError, match="missing columns \\['budget'\\]"):
        artifacts.write("scores", [bad], tmp_path / "x.parquet")


def test_wrong_schema_and_garbage_name_the_file(tmp_path):
    p = tmp_path / "s.parquet"
    artifacts.write("scores", [row()], p)
    with pytest.raises(artifacts.ArtifactError, match=str(p)):
        artifacts.read("grades", p)
    g = tmp_path / "garbage.parquet"
    g.write_bytes(b"not parquet")
    with pytest.raises(artifacts.ArtifactError, match="garbage.parquet"):
        artifacts.read("scores", g)
    assert pq.read_table(p).num_rows == 1


def test_write_fsyncs_the_data_before_the_rename_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Atomic write: the temporary file is fsynced before os.replace makes it the artifact (else a power cut can
    leave an empty file under the final name); a failed write keeps the old artifact and removes the temporary."""
    import os

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    p = tmp_path / "s.parquet"
    artifacts.write("scores", [row()], p)
    assert calls == ["fsync", "replace"]
    assert [f.name for f in tmp_path.iterdir()] == ["s.parquet"]

    def fail(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the temporary file is written, the rename fails
    with pytest.raises(OSError, match="disk full"):
        artifacts.write("scores", [{**row(), "seed": 8}], p)
    assert [f.name for f in tmp_path.iterdir()] == ["s.parquet"]
    assert artifacts.read("scores", p).to_pylist() == [row()]


def test_an_extra_column_is_rejected_not_dropped_and_a_table_is_cast_to_the_schema(tmp_path):
    """A row with a column the schema lacks is an error (pyarrow would silently drop it); a pyarrow Table in another
    column order or with int32 where the schema has int64 is written in the schema's order and types."""
    import pyarrow as pa

    with pytest.raises(artifacts.ArtifactError, match=r"missing columns \[\], unexpected columns \['extra'\]"):
        artifacts.write("scores", [{**row(), "extra": 1}], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
    names = artifacts.SCHEMAS["scores"].names[::-1]
    tbl = pa.table({n: [row()[n]] for n in names})
    tbl = tbl.set_column(names.index("seed"), "seed", pa.array([7], pa.int32()))
    p = artifacts.write("scores", tbl, tmp_path / "t.parquet")
    assert artifacts.read("scores", p).to_pylist() == [row()]


def test_read_many_concatenates_and_gives_an_empty_table_of_the_schema_for_no_files(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    artifacts.write("scores", [row()], a)
    artifacts.write("scores", [{**row(), "seed": 8}], b)
    assert [r["seed"] for r in artifacts.read_many("scores", [a, b]).to_pylist()] == [7, 8]
    empty = artifacts.read_many("scores", [])
    assert empty.num_rows == 0 and empty.schema.equals(artifacts.SCHEMAS["scores"])
