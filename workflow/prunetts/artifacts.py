"""One pyarrow schema per Parquet artifact kind, and the only way the project reads and writes them.

Every row carries the provenance columns that apply to its artifact (model, variant, bench, seed, budget and the
stage's ``impl_version``), so any file is self-describing when copied out of ``results/``. Writes are atomic (temp
file + rename, so a killed job never leaves a half-written Parquet that looks complete) and byte-deterministic (no
pandas metadata, fixed row order given by the caller). Pages carry CRC checksums that ``read`` verifies, so a garbled
file is an error naming it rather than silently different data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_PROV = {
    "model": pa.string(),
    "variant": pa.string(),
    "bench": pa.string(),
    "seed": pa.int64(),
    "budget": pa.int64(),
    "impl_version": pa.int32(),
}


def _schema(provenance: list[str], fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema([(name, _PROV[name]) for name in provenance] + fields)


SCHEMAS: dict[str, pa.Schema] = {
    # normalised benchmark: the user turn to send and the gold answer
    "benchmark": _schema(
        ["bench", "impl_version"],
        [("problem_id", pa.string()), ("prompt", pa.string()), ("gold", pa.string()), ("metadata", pa.string())],
    ),
    # calibration windows (token ids), one row per window
    "calibration": _schema(
        ["model", "impl_version"],
        [("source", pa.string()), ("seed", pa.int64()), ("sample", pa.int32()), ("input_ids", pa.list_(pa.int32()))],
    ),
    # dense activation statistics, one row per prunable linear: sum over all calibration tokens of x_j^2
    "capture": _schema(
        ["model", "impl_version"],
        [
            ("layer", pa.int32()),
            ("module", pa.string()),
            ("n_tokens", pa.int64()),
            ("sq_norm_sum", pa.list_(pa.float64())),
        ],
    ),
    # dense per-layer statistics: mean cosine between a decoder layer's input and output (ShortGPT BI = 1 - cos)
    "capture_layers": _schema(
        ["model", "impl_version"],
        [("layer", pa.int32()), ("cos_mean", pa.float64()), ("n_tokens", pa.int64())],
    ),
    # per-layer importance scores: OWL outlier ratio, ShortGPT BI (component "layer"); LayerIF positive influence
    # sums (component "attention" / "mlp")
    "layer_scores": _schema(
        ["model", "impl_version"],
        [("scorer", pa.string()), ("layer", pa.int32()), ("component", pa.string()), ("score", pa.float64())],
    ),
    # LayerIF / DataInf influence of each training example per (layer, component); positive = beneficial
    "influence": _schema(
        ["model", "impl_version"],
        [("layer", pa.int32()), ("component", pa.string()), ("example", pa.int32()), ("influence", pa.float64())],
    ),
    # target sparsity per prunable linear of one variant
    "allocation": _schema(
        ["model", "variant", "impl_version"],
        [("layer", pa.int32()), ("module", pa.string()), ("sparsity", pa.float64())],
    ),
    # realized sparsity per prunable linear of a pruned checkpoint
    "sparsity": _schema(
        ["model", "variant", "impl_version"],
        [
            ("layer", pa.int32()),
            ("module", pa.string()),
            ("numel", pa.int64()),
            ("target_sparsity", pa.float64()),
            ("n_pruned", pa.int64()),
            ("n_zero", pa.int64()),
            ("realized_sparsity", pa.float64()),
        ],
    ),
    # one row per problem x budget of one (model, variant, bench, seed)
    "generations": _schema(
        ["model", "variant", "bench", "seed", "budget", "impl_version"],
        [
            ("problem_id", pa.string()),
            ("thinking_tokens", pa.int32()),
            ("hit_budget", pa.bool_()),
            ("waits", pa.int32()),  # "Wait" insertions within this budget's thinking
            ("answer_tokens", pa.int32()),
            # the answer ended on an end token; false: cut at max_gen_toks or where the model's context ends
            ("answer_stopped", pa.bool_()),
            ("thinking_text", pa.string()),
            ("answer_text", pa.string()),
            ("full_text", pa.string()),
            # wall-clock seconds in a shared batch (the thinking is shared by all budgets of a problem); they are
            # measurements, so they are the only columns that differ between two runs; on vLLM each is its whole
            # phase's call (generation/vllm_backend.py)
            ("think_seconds", pa.float64()),
            ("answer_seconds", pa.float64()),
        ],
    ),
    "grades": _schema(
        ["model", "variant", "bench", "seed", "budget", "impl_version"],
        [
            ("problem_id", pa.string()),
            ("thinking_tokens", pa.int32()),
            ("hit_budget", pa.bool_()),
            ("answer_stopped", pa.bool_()),  # the answer ended on an end token (false: cut, graded as it stands)
            ("gold", pa.string()),
            ("extracted", pa.string()),
            ("verdict", pa.string()),
            ("correct", pa.bool_()),
        ],
    ),
    # one row per model x variant x bench x seed x budget
    "scores": _schema(
        ["model", "variant", "bench", "seed", "budget", "impl_version"],
        [
            ("n_problems", pa.int32()),
            ("n_correct", pa.int32()),
            ("accuracy", pa.float64()),
            ("mean_thinking_tokens", pa.float64()),
            ("budget_hit_rate", pa.float64()),
        ],
    ),
    # one row per model x variant x bench x budget, over seeds and problems (definitions: prunetts/stats.py);
    # n_seeds / n_problems are provenance too; diff_* and n_paired are null for dense and without a dense model
    "stats": _schema(
        ["model", "variant", "bench", "budget", "impl_version"],
        [
            ("n_seeds", pa.int32()),
            ("n_problems", pa.int32()),
            ("accuracy_mean", pa.float64()),
            ("accuracy_std", pa.float64()),  # over seeds, ddof 1; null with one seed
            ("accuracy_ci_low", pa.float64()),  # 95 % Wilson interval, problems as the sample (stats.py)
            ("accuracy_ci_high", pa.float64()),
            ("pass_at_k", pa.list_(pa.float64())),  # entry k-1, k = 1..n_seeds
            ("maj_at_k", pa.list_(pa.float64())),
            ("diff_vs_dense", pa.float64()),  # variant - dense accuracy on the same (problem, seed) pairs
            ("diff_ci_low", pa.float64()),  # 95 % paired bootstrap interval over problems
            ("diff_ci_high", pa.float64()),
            ("diff_p_value", pa.float64()),  # two-sided exact sign-flip test over problems (stats.py)
            ("diff_p_holm", pa.float64()),  # Holm-adjusted over the (model, bench)'s variant x budget tests
            ("diff_significant", pa.bool_()),  # diff_p_holm < 0.05
            ("n_paired", pa.int32()),
            ("mean_thinking_tokens", pa.float64()),
            ("budget_hit_rate", pa.float64()),
            ("grader_failure_rate", pa.float64()),  # traces graded timeout or error (counted wrong)
            ("answer_cut_rate", pa.float64()),  # answers cut at max_gen_toks or the context, graded as they stand
        ],
    ),
}


class ArtifactError(ValueError):
    """An artifact file is missing, unreadable or does not match its schema."""


def table(kind: str, rows: list[dict]) -> pa.Table:
    """Build a table of ``kind`` from row dicts; every schema column must be present, no others."""
    schema = SCHEMAS[kind]
    expected = set(schema.names)
    for i, row in enumerate(rows):
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise ArtifactError(f"{kind} row {i}: missing columns {missing}, unexpected columns {extra}")
    return pa.Table.from_pylist(rows, schema=schema)


def write(kind: str, rows: list[dict] | pa.Table, path: str | os.PathLike) -> Path:
    """Validate and write atomically: a temporary file, flushed to disk, then renamed (a crash leaves the old file or
    the new one, never an empty or partial one under the final name)."""
    tbl = rows if isinstance(rows, pa.Table) else table(kind, rows)
    if not tbl.schema.equals(SCHEMAS[kind]):
        tbl = tbl.select(SCHEMAS[kind].names).cast(SCHEMAS[kind])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(tbl, tmp, compression="zstd", write_page_checksum=True)  # read() verifies the checksums
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data, before the rename makes it the artifact
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read(kind: str, path: str | os.PathLike) -> pa.Table:
    """Read and check the schema; errors name the file."""
    path = Path(path)
    try:
        tbl = pq.read_table(path, page_checksum_verification=True)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {kind} artifact not found") from None
    except Exception as e:  # noqa: BLE001 - a truncated or garbled file raises many types; all mean the same
        reason = " ".join(str(e).split())[:200]
        raise ArtifactError(
            f"{path}: unreadable {kind} artifact ({type(e).__name__}: {reason}); delete it and rerun to regenerate"
        ) from None
    want = SCHEMAS[kind]
    if not tbl.schema.remove_metadata().equals(want):
        raise ArtifactError(
            f"{path}: schema does not match the {kind} artifact (got {tbl.schema.names}); "
            "it was written by another version, delete it and rerun"
        )
    return tbl


def read_many(kind: str, paths, require_rows: bool = False) -> pa.Table:
    """The artifacts concatenated; ``require_rows``: an empty one is an error naming it."""
    paths = list(paths)
    tables = [read(kind, p) for p in paths]
    if require_rows and (empty := [p for p, t in zip(paths, tables, strict=True) if t.num_rows == 0]):
        raise ArtifactError(
            f"{empty[0]}: {kind} artifact without rows ({len(empty)} of {len(paths)} empty); delete it and rerun"
        )
    return pa.concat_tables(tables) if tables else SCHEMAS[kind].empty_table()
