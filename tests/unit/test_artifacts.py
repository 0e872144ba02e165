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
