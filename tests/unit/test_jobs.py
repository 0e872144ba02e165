"""Job plumbing: a workflow job given a GPU never quietly runs ``device: auto`` on the CPU."""

from __future__ import annotations

import pytest


def test_a_job_given_a_gpu_refuses_to_run_auto_on_the_cpu(monkeypatch, tmp_path):
    import torch

    from prunetts import jobs
    from prunetts.models import ModelError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a node whose driver or torch build sees no GPU
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # job_logging sets it for the job's process: keep it in this test
    assert resolve_device("auto") == "cpu"
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit), jobs.job_logging(str(log), 1, {"gpu": 1, "mem_mb": 64000}):
        resolve_device("auto")
    (line,) = [x for x in log.read_text().splitlines() if "ERROR" in x]
    assert "device auto: this job was given a GPU but torch" in line and "device: cpu" in line
    with jobs.job_logging(None, 1, {"gres": "gpu:a100:1", "gpu": 0}):
        with pytest.raises(ModelError, match="given a GPU"):
            resolve_device("auto")
        assert resolve_device("cpu") == "cpu"  # asked for by name: the user's choice
    for resources in (None, {}, {"gpu": 0}, {"gres": "", "mem_mb": 8000}):
        with jobs.job_logging(None, 1, resources):
            assert resolve_device("auto") == "cpu"
    assert resolve_device("auto") == "cpu"  # the job's setting does not outlive it
    # a job given no GPU (gpu: 0: prune's magnitude, one-pass Wanda and ShortGPT) keeps off a GPU that torch sees:
    # the local profile's pool gave it to another job
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with jobs.job_logging(None, 1, {"gpu": 0, "mem_mb": 8000}):
        assert resolve_device("auto") == "cpu"
    with jobs.job_logging(None, 1, {"mem_mb": 8000}):  # a rule without a gpu resource: auto as anywhere
        assert resolve_device("auto") == "cuda"


def test_an_unexpected_error_leaves_its_traceback_in_the_job_log(tmp_path, monkeypatch):
    """Snakemake says "check log file(s) for error details": a bug's traceback must be there too, not only on the
    console (where a Slurm job's stderr is another file)."""
    from prunetts import jobs

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError, match="in-place update"), jobs.job_logging(str(log), 1):
        raise RuntimeError("in-place update of an inference tensor")
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: in-place update of an inference tensor" in text


def test_a_retry_appends_to_the_job_log_under_its_own_header(tmp_path, monkeypatch):
    """The job log is appended to under a header per start: Snakemake 9.27 removes a job's log before each attempt,
    so two headers mean two starts in one attempt's log (a library caller, or a Snakemake that keeps logs), and
    neither start's lines are lost."""
    import logging

    from prunetts import jobs

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    log = tmp_path / "logs" / "generate.log"
    with jobs.job_logging(str(log)):
        logging.getLogger("prunetts").info("attempt one: 84 of 100 problems")
    monkeypatch.delenv("SLURM_JOB_ID")
    with jobs.job_logging(str(log)):
        logging.getLogger("prunetts").info("attempt two: resumed")
    lines = log.read_text().splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("==== prunetts job started ")]
    assert len(headers) == 2 and headers[0] == 0 and "Slurm job 4242" in lines[0] and "Slurm" not in lines[headers[1]]
    assert "attempt one" in "\n".join(lines[: headers[1]]) and "attempt two" in "\n".join(lines[headers[1] :])


def test_auto_dtype_and_exact_casts():
    """auto = bfloat16 on a GPU, float32 on the CPU (bf16 matmuls are slow there); a stored dtype is kept aside for
    writing back unless the compute dtype holds every value (bf16 -> fp16 does not: range; fp32 -> bf16: precision)."""
    import torch

    from prunetts.layerwise import exact_cast
    from prunetts.models import resolve_dtype

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16 and resolve_dtype("auto", "cuda:1") is torch.bfloat16
    assert resolve_dtype("float16", "cpu") is torch.float16
    bf, fp16, fp32, fp64 = torch.bfloat16, torch.float16, torch.float32, torch.float64
    assert [exact_cast(bf, d) for d in (bf, fp16, fp32, fp64)] == [True, False, True, True]
    assert [exact_cast(fp16, d) for d in (bf, fp16, fp32, fp64)] == [False, True, True, True]
    assert [exact_cast(fp32, d) for d in (bf, fp16, fp32, fp64)] == [False, False, True, True]


@pytest.mark.parametrize(
    "error",
    [
        "prunetts.artifacts.ArtifactError",
        "prunetts.calibration.CalibrationError",
        "prunetts.checkpoint.CheckpointError",
        "prunetts.config.ConfigError",
        "prunetts.records.InputFileError",
        "prunetts.models.ModelError",
    ],
)
def test_every_user_error_ends_a_job_with_its_one_line(tmp_path, monkeypatch, error):
    import importlib

    from prunetts import jobs

    module, name = error.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as e, jobs.job_logging(str(log), 1):
        raise cls("data/x.jsonl: line 3 is not JSON; fix the file")
    assert e.value.code == 1
    text = log.read_text()
    assert "ERROR data/x.jsonl: line 3 is not JSON; fix the file" in text and "Traceback" not in text


def test_a_job_restores_the_gpu_requirement_it_found(monkeypatch):
    import os

    from prunetts import jobs
    from prunetts.models import REQUIRE_GPU_ENV

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv(REQUIRE_GPU_ENV, "1")  # e.g. set by the job that runs this one in-process
    with jobs.job_logging(None, 1, {"gpu": 0}):
        pass
    assert os.environ[REQUIRE_GPU_ENV] == "1"


def test_the_prune_job_writes_what_made_the_checkpoint_beside_it(tiny_qwen3_dir, tmp_path):
    import json

    from prunetts import artifacts, jobs
    from prunetts.versions import package_versions

    variant, wanda = "magnitude-uniform-s0.30", {"mode": "sequential", "group": "row"}
    jobs.allocate(str(tiny_qwen3_dir), None, str(tmp_path / "a.parquet"), model="t", variant=variant, options={})
    out = tmp_path / "ckpt"
    jobs.prune(
        str(tiny_qwen3_dir), str(tmp_path / "a.parquet"), None, None, str(out), str(tmp_path / "s.parquet"),
        model="t", variant=variant, wanda=wanda, batch_size=1, dtype="float32", device="cpu", trust_remote_code=False,
    )  # fmt: skip
    summary = json.loads((out / "prunetts_prune.json").read_text())
    assert summary["wanda"] is None and summary["removed_layers"] is None  # magnitude reads no Wanda settings
    assert summary["settings"] == {}  # outside a workflow job: no config to read them from
    assert summary["target_sparsity_prunable_linears"] == pytest.approx(0.3)
    assert summary["versions"] == package_versions()
    rows = artifacts.read("sparsity", tmp_path / "s.parquet").to_pylist()
    assert rows == artifacts.read("sparsity", out / "prunetts_sparsity.parquet").to_pylist()


def test_the_prune_job_records_given_or_workflow_settings_and_a_hub_ids_revision(tiny_qwen3_dir, tmp_path, monkeypatch):
    """prunetts_prune.json records the ``settings`` a caller passes; without them, ``prune_settings`` of the running
    workflow's config; and a pinned hub id's revision beside the commit it resolved to."""
    import json
    import sys
    from types import SimpleNamespace

    from prunetts import checkpoint, config, jobs

    variant = "magnitude-uniform-s0.30"
    jobs.allocate(str(tiny_qwen3_dir), None, str(tmp_path / "a.parquet"), model="t", variant=variant, options={})
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(jobs, "local_model", lambda ref, weights=True: str(tiny_qwen3_dir))
    monkeypatch.setattr(checkpoint, "hub_commit", lambda path, resolved: commit)
    monkeypatch.setattr(config, "prune_settings", lambda cfg, v: {"from": cfg["tag"], "variant": v})
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(snakemake=SimpleNamespace(config={"tag": "wf"})))

    def summary(name, **kwargs) -> dict:
        out = tmp_path / name
        jobs.prune(
            f"org/tiny@{commit[:8]}", str(tmp_path / "a.parquet"), None, None, str(out), str(tmp_path / "s.parquet"),
            model="t", variant=variant, wanda={"mode": "sequential", "group": "row"}, batch_size=1, dtype="float32",
            device="cpu", trust_remote_code=False, **kwargs,
        )  # fmt: skip
        return json.loads((out / "prunetts_prune.json").read_text())

    given = summary("given", settings={"given": 1})
    assert given["settings"] == {"given": 1}
    assert given["source"] == {"model": "org/tiny", "revision": commit[:8], "hub_commit": commit}
    assert summary("workflow")["settings"] == {"from": "wf", "variant": variant}


def test_the_shortgpt_prune_job_records_the_layers_it_removed(tiny_qwen3_dir, tmp_path):
    import json

    from prunetts import artifacts, jobs

    magnitude = str(tmp_path / "m.parquet")
    jobs.allocate(str(tiny_qwen3_dir), None, magnitude, model="t", variant="magnitude-uniform-s0.30", options={})
    rows = artifacts.read("allocation", magnitude).to_pylist()
    rows = [dict(r, variant="shortgpt-n1", sparsity=float(r["layer"] == 1)) for r in rows]
    artifacts.write("allocation", rows, tmp_path / "a.parquet")
    out = tmp_path / "ckpt"
    jobs.prune(
        str(tiny_qwen3_dir), str(tmp_path / "a.parquet"), None, None, str(out), str(tmp_path / "s.parquet"),
        model="t", variant="shortgpt-n1", wanda={"mode": "sequential", "group": "row"}, batch_size=1,
        dtype="float32", device="cpu", trust_remote_code=False,
    )  # fmt: skip
    summary = json.loads((out / "prunetts_prune.json").read_text())
    assert summary["removed_layers"] == [1] and summary["wanda"] is None


def _random_capture(ckpt, out) -> str:
    """A capture artifact of positive input statistics for every prunable linear of ``ckpt`` (as the capture job
    writes), seeded."""
    import torch

    from prunetts import artifacts
    from prunetts.capture import linear_rows
    from prunetts.checkpoint import prunable_modules_from_shapes, tensor_shapes

    shapes = tensor_shapes(ckpt)
    gen = torch.Generator().manual_seed(0)
    stats = {
        (li, name): (torch.rand(shapes[f"model.layers.{li}.{name}.weight"][1], generator=gen, dtype=torch.float64), 4)
        for li, name, _ in prunable_modules_from_shapes(shapes)
    }
    return str(artifacts.write("capture", linear_rows("t", stats, 1), out))


def test_the_owl_score_job_applies_its_outlier_multiple(tiny_qwen3_dir, tmp_path):
    """The layer-score job passes pruning.owl.M on: its OWL scores equal a direct computation with that M."""
    from prunetts import artifacts, jobs, scores
    from prunetts.capture import stats_from_table

    capture = _random_capture(tiny_qwen3_dir, tmp_path / "c.parquet")
    got = {}
    for m in (1.0, 5.0):
        out = tmp_path / f"owl-{m}.parquet"
        jobs.layer_scores(str(tiny_qwen3_dir), capture, str(out), model="t", scorer="owl", owl_m=m)
        got[m] = scores.from_rows(artifacts.read("layer_scores", out).to_pylist())
        direct = scores.owl_outlier_ratios(str(tiny_qwen3_dir), stats_from_table(artifacts.read("capture", capture)), m)
        assert got[m] == pytest.approx(direct)
    assert got[1.0] != got[5.0]


def test_the_prune_job_applies_the_wanda_comparison_group(tiny_qwen3_dir, tmp_path):
    """Wanda's comparison group reaches the pruner: ``row`` prunes the same count in every row of a linear,
    ``matrix`` compares the whole matrix (the rows' counts differ), at the same sparsity."""
    from prunetts import jobs
    from prunetts.checkpoint import Reader

    variant = "wanda-uniform-s0.30"
    jobs.allocate(str(tiny_qwen3_dir), None, str(tmp_path / "a.parquet"), model="t", variant=variant, options={})
    capture = _random_capture(tiny_qwen3_dir, tmp_path / "c.parquet")
    counts = {}
    for group in ("row", "matrix"):
        out = tmp_path / group
        jobs.prune(
            str(tiny_qwen3_dir), str(tmp_path / "a.parquet"), None, capture, str(out), str(out) + ".parquet",
            model="t", variant=variant, wanda={"mode": "one_pass", "group": group}, batch_size=1, dtype="float32",
            device="cpu", trust_remote_code=False,
        )  # fmt: skip
        weight = Reader(out).load(["model.layers.0.mlp.up_proj.weight"])["model.layers.0.mlp.up_proj.weight"]
        counts[group] = set((weight == 0).sum(dim=1).tolist())
    assert len(counts["row"]) == 1 and len(counts["matrix"]) > 1


def test_a_script_job_finds_its_workflow_config(monkeypatch):
    """Snakemake runs a rule's script as __main__ with a ``snakemake`` object among its globals: the prune job reads
    the config from there (editing the script would rerun every prune job of existing results), and outside a
    workflow job there is none."""
    import sys
    from types import SimpleNamespace

    from prunetts import jobs

    main = SimpleNamespace()
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert jobs.running_workflow_config() is None
    main.snakemake = SimpleNamespace(config={"pruning": {}})
    assert jobs.running_workflow_config() == {"pruning": {}}
    main.snakemake = SimpleNamespace(config="config.yaml")  # a `snakemake` that is not Snakemake's script object
    assert jobs.running_workflow_config() is None


def test_a_job_sets_its_thread_count_for_openmp_unless_the_environment_does(monkeypatch):
    import os

    from prunetts import jobs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with jobs.job_logging(None, 3):
        assert os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's (or Slurm's) setting wins
    with jobs.job_logging(None, 3):
        assert os.environ["OMP_NUM_THREADS"] == "2"


def test_local_model_fetches_a_hub_ids_weights_only_when_asked(monkeypatch, tmp_path):
    """A tokenizer-only job (prepare_calibration) passes weights=False: a hub id's safetensors are not downloaded."""
    from prunetts import checkpoint, jobs

    calls = []

    def resolve(path, revision=None, weights=True, hub=False):
        calls.append((path, revision, weights))
        return tmp_path / "a"

    monkeypatch.setattr(checkpoint, "resolve", resolve)
    jobs.local_model("org/model@" + "a" * 40, weights=False)
    jobs.local_model("org/model")
    assert calls == [("org/model", "a" * 40, False), ("org/model", None, True)]


def _texts_file(path, n: int = 24):
    """A JSON Lines file whose texts are in the ``body`` field; ``text`` holds a decoy a job must not read."""
    import json

    texts = [f"Problem {i}: add {i} and {3 * i}; the sum is {4 * i}, which we check twice. " * 3 for i in range(n)]
    path.write_text("".join(json.dumps({"body": t, "text": "decoy"}) + "\n" for t in texts))
    return texts


def test_the_calibration_job_reads_the_configured_text_field(tiny_qwen3_dir, tmp_path):
    from prunetts import artifacts, jobs
    from prunetts.calibration import packed_windows
    from prunetts.models import load_tokenizer

    texts = _texts_file(tmp_path / "texts.jsonl")
    calibration = dict(source=str(tmp_path / "texts.jsonl"), mode="pack", n_samples=3, seqlen=16, seed=0)
    out = tmp_path / "c.parquet"
    jobs.prepare_calibration(
        str(tiny_qwen3_dir), str(out), model="t", calibration={**calibration, "text_field": "body"},
        trust_remote_code=False,
    )  # fmt: skip
    windows = artifacts.read("calibration", out).column("input_ids").to_pylist()
    assert windows == packed_windows(texts, load_tokenizer(str(tiny_qwen3_dir)), 3, 16, 0)


def test_the_influence_job_without_a_training_source_draws_from_the_calibration_texts(tiny_qwen3_dir, tmp_path):
    """``influence.train_source: null``: the training and validation texts are disjoint splits of the calibration
    source, read through the calibration's own text field."""
    from prunetts import artifacts, jobs
    from prunetts.influence import compute_influence, influence_texts
    from prunetts.models import load_model, load_tokenizer

    _texts_file(tmp_path / "texts.jsonl")
    cfg = dict(
        train_source=None, val_source=None, text_field="text", n_train=4, n_val=2, seed=0, max_len=16,
        projection_dim=0, dtype="float32", device="cpu",
    )  # fmt: skip
    calibration = {"source": str(tmp_path / "texts.jsonl"), "text_field": "body"}
    out = tmp_path / "i.parquet"
    jobs.influence(
        str(tiny_qwen3_dir), str(out), model="t", influence=cfg, calibration=calibration, trust_remote_code=False
    )
    got = [
        (r["layer"], r["component"], r["example"], r["influence"]) for r in artifacts.read("influence", out).to_pylist()
    ]
    train, val = influence_texts(None, None, "text", 4, 2, 0, calibration=(calibration["source"], "body"))
    assert "decoy" not in train + val and not set(train) & set(val)
    model = load_model(str(tiny_qwen3_dir), dtype="float32", device="cpu")
    rows = compute_influence(model, load_tokenizer(str(tiny_qwen3_dir)), train, val, 16, 0, 0, progress=False)
    want = [(r["layer"], r["component"], r["example"], r["influence"]) for r in rows]
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert [g[3] for g in got] == pytest.approx([w[3] for w in want], rel=1e-6, abs=1e-12)


def test_the_allocate_job_applies_its_allocations_options(tiny_qwen3_dir, tmp_path):
    """OWL's lambda reaches the allocation: its per-layer sparsities span 2 lambda (no clamp at S = 0.3)."""
    import json

    from prunetts import artifacts, jobs, scores

    n = json.loads((tiny_qwen3_dir / "config.json").read_text())["num_hidden_layers"]
    artifacts.write("layer_scores", scores.rows("t", "owl", {i: float(i) for i in range(n)}, 1), tmp_path / "s.parquet")
    spans = {}
    for lam in (0.02, 0.08):
        out = tmp_path / f"a-{lam}.parquet"
        jobs.allocate(
            str(tiny_qwen3_dir), str(tmp_path / "s.parquet"), str(out), model="t", variant="wanda-owl-s0.30",
            options={"m": 7.0, "lambda": lam},
        )  # fmt: skip
        per_layer = {r["layer"]: r["sparsity"] for r in artifacts.read("allocation", out).to_pylist()}
        assert sum(per_layer.values()) / n == pytest.approx(0.3)
        spans[lam] = max(per_layer.values()) - min(per_layer.values())
    assert spans == pytest.approx({0.02: 0.04, 0.08: 0.16})
