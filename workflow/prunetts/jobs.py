"""Job entry points: one function per workflow rule, taking plain paths and values.

The adapters in ``scripts/`` unpack ``snakemake.input/output/params`` and call exactly one of these; the
tests call them directly. No Snakemake import here.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from prunetts import artifacts
from prunetts.versions import IMPL_VERSION

log = logging.getLogger("prunetts")


def user_errors() -> tuple[type[Exception], ...]:
    """The library's errors about a user's files or settings: each message is one line (what, where, the fix)."""
    from prunetts.artifacts import ArtifactError
    from prunetts.calibration import CalibrationError
    from prunetts.checkpoint import CheckpointError
    from prunetts.config import ConfigError
    from prunetts.models import ModelError
    from prunetts.records import InputFileError

    return (ArtifactError, CalibrationError, CheckpointError, ConfigError, InputFileError, ModelError)


@contextlib.contextmanager
def _one_line_errors():
    """A user-facing error ends the job with its one line (in the log and on the console), without a traceback."""
    import sys

    try:
        yield
    except user_errors() as e:
        log.error("%s", e)
        print(f"prunetts error: {e}", file=sys.__stderr__, flush=True)
        raise SystemExit(1) from None


@contextlib.contextmanager
def job_logging(log_path: str | None, threads: int | None = None, resources=None):
    """Send logging, stdout and stderr (tqdm progress) of a job to its log file. A job whose ``resources`` ask for a
    GPU refuses to fall back to the CPU, and one whose ``gpu`` is 0 (prune's magnitude, one-pass Wanda and ShortGPT
    variants) runs ``device: auto`` on the CPU even where torch sees a GPU: the local profile's GPU pool lets it run
    beside a GPU job that holds that device (models.resolve_device)."""
    import os

    from prunetts.config import gpu_count
    from prunetts.models import REQUIRE_GPU_ENV

    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    before = os.environ.get(REQUIRE_GPU_ENV)
    if gpu_count(resources):  # None (not a number) asks for nothing Slurm would allocate
        os.environ[REQUIRE_GPU_ENV] = "1"
    elif resources and resources.get("gpu") == 0:
        os.environ[REQUIRE_GPU_ENV] = "0"
    try:
        with _job_log(log_path):
            yield
    finally:
        if before is None:
            os.environ.pop(REQUIRE_GPU_ENV, None)
        else:
            os.environ[REQUIRE_GPU_ENV] = before


@contextlib.contextmanager
def _job_log(log_path: str | None):
    if not log_path:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        with _one_line_errors():
            yield
        return
    import datetime
    import os
    import socket

    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    # appended: Snakemake removes a job's log before each attempt, so this is the attempt's own log; a retry's
    # replaces it, and on Slurm each attempt's stderr (with the one-line error below) stays in the plugin's log
    with open(log_path, "a", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        slurm = f", Slurm job {os.environ['SLURM_JOB_ID']}" if os.environ.get("SLURM_JOB_ID") else ""
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        print(f"==== prunetts job started {started} on {socket.gethostname()}{slurm}, pid {os.getpid()} ====", file=f)
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with _one_line_errors():
                yield
        except Exception:  # any other error: its traceback in the log Snakemake points at, not only on the console
            import traceback

            traceback.print_exc(file=f)
            raise
        finally:
            root.removeHandler(handler)


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def local_model(ref: str, weights: bool = True) -> str:
    """The checkpoint a job reads: a local directory as given, a hub id (``hub-id@revision`` when pinned) as its
    cached snapshot, without the weights for ``weights=False``. The log names the commit, so even an unpinned run
    records which weights it used."""
    from prunetts.checkpoint import hub_commit, resolve, split_ref

    path, revision = split_ref(ref)
    local = resolve(path, revision, weights)
    commit = hub_commit(path, local)
    if commit:
        log.info("%s%s: hub commit %s (%s)", path, f" at revision {revision}" if revision else "", commit, local)
    return str(local)


def prepare_benchmark(out: str, *, bench: str, options: dict) -> None:
    from prunetts import benchmarks

    extra = {k: v for k, v in options.items() if k not in ("source", "limit")}  # e.g. gpqa_diamond's shuffle_seed
    records = benchmarks.load(bench, options.get("source"), options.get("limit"), **extra)
    artifacts.write("benchmark", benchmarks.rows(bench, records, IMPL_VERSION["prepare_benchmark"]), out)
    log.info("%s: %d problems", bench, len(records))


def prepare_calibration(model_path: str, out: str, *, model: str, calibration: dict, trust_remote_code: bool) -> None:
    from prunetts.calibration import build_rows
    from prunetts.models import load_tokenizer

    # the tokenizer alone: a hub id's weights are not fetched for this
    tok = load_tokenizer(local_model(model_path, weights=False), trust_remote_code=trust_remote_code)
    rows = build_rows(
        model,
        tok,
        calibration["source"],
        calibration["mode"],
        calibration["n_samples"],
        calibration["seqlen"],
        calibration["seed"],
        calibration.get("text_field", "text"),
        IMPL_VERSION["prepare_calibration"],
    )
    artifacts.write("calibration", rows, out)
    log.info("%d windows x %d tokens", len(rows), calibration["seqlen"])


def capture(
    model_path: str,
    calibration_path: str,
    linear_out: str,
    layer_out: str,
    *,
    model: str,
    batch_size: int,
    dtype: str,
    device: str,
    trust_remote_code: bool,
    threads: int | None = None,
) -> None:
    from prunetts import capture as cap

    set_threads(threads)
    model_path = local_model(model_path)
    windows = artifacts.read("calibration", calibration_path).column("input_ids").to_pylist()
    linear, layers = cap.capture(model_path, windows, batch_size, device, dtype, trust_remote_code)
    artifacts.write("capture", cap.linear_rows(model, linear, IMPL_VERSION["capture"]), linear_out)
    artifacts.write("capture_layers", cap.layer_rows(model, layers, IMPL_VERSION["capture"]), layer_out)


def influence(
    model_path: str,
    out: str,
    *,
    model: str,
    influence: dict,
    calibration: dict | None,
    trust_remote_code: bool,
    threads: int | None = None,
) -> None:
    """``calibration``: the calibration texts' ``source`` and ``text_field``, the training pool when
    ``influence.train_source`` is null (else None)."""
    from prunetts.influence import check_texts, compute_influence, influence_texts
    from prunetts.models import load_model, load_tokenizer

    set_threads(threads)
    cfg = influence
    # the texts before the checkpoint: a wrong file or field is one line before a hub id's weights are fetched
    train, val = influence_texts(
        cfg.get("train_source"),
        cfg.get("val_source"),
        cfg.get("text_field", "text"),
        cfg["n_train"],
        cfg["n_val"],
        cfg["seed"],
        calibration=(calibration["source"], calibration.get("text_field", "text")) if calibration else None,
    )
    model_path = local_model(model_path)
    tok = load_tokenizer(model_path, trust_remote_code=trust_remote_code)
    check_texts(tok, train, val, cfg["max_len"])
    lm = load_model(model_path, dtype=cfg["dtype"], device=cfg["device"], trust_remote_code=trust_remote_code)
    rows = compute_influence(lm, tok, train, val, cfg["max_len"], cfg["projection_dim"], cfg["seed"])
    artifacts.write("influence", [dict(model=model, impl_version=IMPL_VERSION["influence"], **r) for r in rows], out)
    log.info("influence of %d training texts against %d validation texts", len(train), len(val))


def layer_scores(
    model_path: str, inputs: str, out: str, *, model: str, scorer: str, owl_m: float, threads: int | None = None
) -> None:
    from prunetts import scores

    if scorer == "owl":
        from prunetts.capture import stats_from_table

        set_threads(threads)
        stats = stats_from_table(artifacts.read("capture", inputs))
        values = scores.owl_outlier_ratios(local_model(model_path), stats, owl_m)
    elif scorer == "bi":
        values = scores.bi_scores(artifacts.read("capture_layers", inputs).to_pylist())
    elif scorer == "layerif":
        from prunetts.influence import aggregate_positive

        values = aggregate_positive(artifacts.read("influence", inputs).to_pylist())
    else:
        raise ValueError(f"unknown scorer {scorer!r}")
    artifacts.write("layer_scores", scores.rows(model, scorer, values, IMPL_VERSION["layer_scores"]), out)


def allocate(model_path: str, scores_path: str | None, out: str, *, model: str, variant: str, options: dict) -> None:
    """``options``: the allocation's own config slice (``pruning.owl`` / ``pruning.layerif``), else empty."""
    import json

    from prunetts.checkpoint import num_layers, prunable_modules_from_shapes, tensor_shapes
    from prunetts.config import parse_variant
    from prunetts.pruning.allocation import for_variant
    from prunetts.scores import from_rows

    v = parse_variant(variant)
    model_path = local_model(model_path)
    modules = prunable_modules_from_shapes(tensor_shapes(model_path))
    layer_scores = from_rows(artifacts.read("layer_scores", scores_path).to_pylist()) if scores_path else None
    n_layers = num_layers(json.loads((Path(model_path) / "config.json").read_text()))
    targets = for_variant(v, modules, layer_scores, options, n_layers)
    rows = [
        dict(
            model=model,
            variant=variant,
            impl_version=IMPL_VERSION["allocate"],
            layer=layer,
            module=name,
            sparsity=targets[layer, name],
        )
        for layer, name, _ in modules
    ]
    artifacts.write("allocation", rows, out)


def running_workflow_config() -> dict | None:
    """The workflow config of the Snakemake script job this process runs, or None outside one. Snakemake runs a
    ``script:`` as ``__main__`` with its ``snakemake`` object among the globals; reading the config here, not in the
    adapter, keeps the rule's script unchanged: Snakemake's code trigger reruns every job of a rule whose script file
    changed, and a metadata-only change must not rerun a grid's prunes and everything after them."""
    import sys

    config = getattr(getattr(sys.modules.get("__main__"), "snakemake", None), "config", None)
    return config if isinstance(config, dict) else None


def prune(
    model_path: str,
    allocation_path: str,
    calibration_path: str | None,
    capture_path: str | None,
    out_dir: str,
    sparsity_out: str,
    *,
    model: str,
    variant: str,
    wanda: dict,
    batch_size: int,
    dtype: str,
    device: str,
    trust_remote_code: bool,
    threads: int | None = None,
    settings: dict | None = None,
) -> None:
    """``settings``: what else made the checkpoint, recorded in prunetts_prune.json; by default
    ``config.prune_settings`` of the running workflow's config (none outside a workflow job)."""
    import json

    from prunetts.capture import stats_from_table
    from prunetts.checkpoint import hub_commit, split_ref
    from prunetts.config import parse_variant, prune_settings
    from prunetts.pruning.pruner import global_sparsity, prune_checkpoint, sparsity_rows
    from prunetts.versions import package_versions

    set_threads(threads)
    source, revision = split_ref(model_path)
    model_path = local_model(model_path)
    v = parse_variant(variant)
    if settings is None:
        workflow_config = running_workflow_config()
        settings = prune_settings(workflow_config, variant) if workflow_config else {}
    alloc = artifacts.read("allocation", allocation_path).to_pylist()
    allocation = {(r["layer"], r["module"]): r["sparsity"] for r in alloc}
    stats = stats_from_table(artifacts.read("capture", capture_path)) if capture_path else None
    windows = (
        artifacts.read("calibration", calibration_path).column("input_ids").to_pylist() if calibration_path else None
    )
    rows: list[dict] = []

    def side_files(records: list[dict]) -> None:
        """The checkpoint says what it is when copied out of results/, as a ``prunetts prune`` checkpoint does:
        prunetts_sparsity.parquet and prunetts_prune.json, written before config.json (pruner.prune_checkpoint)."""
        rows.extend(sparsity_rows(model, variant, records))
        artifacts.write("sparsity", rows, Path(out_dir) / "prunetts_sparsity.parquet")
        target, realized = global_sparsity(records)
        summary = dict(
            made_by="prunetts workflow, rule prune",
            model=model,
            variant=variant,
            source={"model": source, "revision": revision, "hub_commit": hub_commit(source, Path(model_path))},
            wanda=wanda if v.method == "wanda" else None,
            settings=settings,
            removed_layers=sorted({r["layer"] for r in records if r["target_sparsity"] == 1.0})
            if v.method == "shortgpt"
            else None,
            target_sparsity_prunable_linears=target,
            realized_sparsity_prunable_linears=realized,
            versions=package_versions(),
        )
        (Path(out_dir) / "prunetts_prune.json").write_text(json.dumps(summary, indent=2) + "\n")

    prune_checkpoint(
        model_path,
        out_dir,
        v.method,
        allocation,
        stats=stats,
        windows=windows,
        wanda_mode=wanda["mode"],
        wanda_group=wanda["group"],
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        before_config=side_files,
    )
    artifacts.write("sparsity", rows, sparsity_out)
    log.info("%s: realized sparsity %.4f over %d linears", variant, global_sparsity(rows)[1], len(rows))


def generate(model_path: str, bench_path: str, out: str, *, threads: int | None = None, **kwargs) -> None:
    from prunetts.generation.run import generate as run

    set_threads(threads)
    run(local_model(model_path), bench_path, out, impl_version=IMPL_VERSION["generate"], **kwargs)


def grade(
    generations_path: str,
    bench_path: str,
    out: str,
    *,
    bench: str,
    workers: int,
    timeout_s: int,
    delimiters: str = "s1",
) -> None:
    """``bench``: the benchmark's name, which decides the grading kind (math or choice)."""
    from collections import Counter

    from prunetts import benchmarks
    from prunetts.generation.budget_forcing import DELIMITERS
    from prunetts.grading import GRADER_FAILURES, VERDICTS, grade_rows

    gen = artifacts.read("generations", generations_path).to_pylist()
    table = artifacts.read("benchmark", bench_path).to_pydict()
    if set(table["bench"]) - {bench}:
        raise ValueError(f"{bench_path} holds benchmark {sorted(set(table['bench']))}, not {bench!r}")
    gold = dict(zip(table["problem_id"], table["gold"], strict=True))
    marker = DELIMITERS[delimiters].answer_marker
    kind = benchmarks.kind(bench)
    rows = grade_rows(gen, gold, IMPL_VERSION["grade"], workers, timeout_s, marker, kind)
    artifacts.write("grades", rows, out)
    counts = Counter(r["verdict"] for r in rows)
    others = ", ".join(f"{v} {counts[v]}" for v in VERDICTS[1:] if counts[v])
    log.info("%d/%d correct%s", counts["correct"], len(rows), f" ({others})" if others else "")
    failed = sum(counts[v] for v in GRADER_FAILURES)
    if failed:
        log.warning(
            "%d of %d traces could not be graded (timeout or error; counted wrong): raise grading.timeout_s (now %d s)"
            " and rerun grade",
            failed,
            len(rows),
            timeout_s,
        )


def aggregate(
    grade_paths: list[str],
    scores_out: str,
    summary_md: str,
    summary_csv: str,
    stats_out: str | None = None,
    summary_html: str | None = None,
) -> None:
    from prunetts import stats

    # an empty file would silently drop its cells from the summary and figures
    grades = artifacts.read_many("grades", grade_paths, require_rows=True).to_pandas()
    # the statistics first: they check the grid (duplicates, gaps) before anything is written
    tbl = artifacts.table("stats", stats.compute_stats(grades, IMPL_VERSION["aggregate"]))
    sc = stats.scores(grades, IMPL_VERSION["aggregate"])
    artifacts.write("scores", artifacts.table("scores", sc.to_dict("records")), scores_out)
    if stats_out:
        artifacts.write("stats", tbl, stats_out)
    st = tbl.to_pandas()
    Path(summary_md).write_text(stats.summary_markdown(st))
    stats.summary_csv(st).to_csv(summary_csv, index=False, float_format="%.6g")
    if summary_html:
        Path(summary_html).write_text(stats.summary_html(st))
    log.info("%d score rows, %d stats rows", len(sc), tbl.num_rows)
    failing = st[st["grader_failure_rate"] > 0]
    if len(failing):
        log.warning(
            "%d of %d cells hold traces the grader could not judge (counted wrong; listed under the summary's tables)",
            len(failing),
            len(st),
        )


def plot(stats_path: str, out: str, *, model: str, bench: str) -> None:
    from prunetts.plots import accuracy_vs_budget

    accuracy_vs_budget(artifacts.read("stats", stats_path).to_pandas(), model, bench, out)


def plot_diff(stats_path: str, out: str, *, model: str, bench: str) -> None:
    from prunetts.plots import diff_heatmap

    diff_heatmap(artifacts.read("stats", stats_path).to_pandas(), model, bench, out)


def plot_thinking(grade_paths: list[str], out: str, *, model: str, bench: str) -> None:
    from prunetts.plots import thinking_lengths

    columns = ["model", "variant", "bench", "seed", "budget", "thinking_tokens", "hit_budget"]
    grades = artifacts.read_many("grades", grade_paths).select(columns).to_pandas()
    thinking_lengths(grades, model, bench, out)


def plot_layers(sparsity_paths: list[str], score_paths: list[str], out: str, *, model: str) -> None:
    from prunetts.plots import layer_sparsity

    sparsity = artifacts.read_many("sparsity", sparsity_paths).to_pandas()
    scores = artifacts.read_many("layer_scores", score_paths).to_pandas()
    layer_sparsity(sparsity, scores, model, out)
