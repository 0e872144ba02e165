"""Broken configs fail before any job: `snakemake -n` on each exits non-zero and prints exactly one line that names the
key and the fix (no traceback, no job). Table-driven: (id, edit of the micro config, words the line must contain)."""

from __future__ import annotations

import copy
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import BENCH_DATA
from tests.workflow.helpers import DEMO_MODEL, REPO, micro_config, snakemake, write_config

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")

pytestmark = pytest.mark.workflow


def _set(path: str, value):
    """An edit that sets one key (dotted path) of the micro config; value None deletes it."""

    def edit(cfg, work):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            del node[last]
        else:
            node[last] = value(work) if callable(value) else value

    return edit


def _edits(*edits):
    def edit(cfg, work):
        for e in edits:
            e(cfg, work)

    return edit


def _bin_only_checkpoint(work):
    """A checkpoint directory holding pickled weights only (pytorch_model.bin): refused, never unpickled."""
    ckpt = work / "bin-only"
    ckpt.mkdir(exist_ok=True)
    shutil.copy(DEMO_MODEL / "config.json", ckpt / "config.json")
    (ckpt / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    return str(ckpt)


def _mistral_checkpoint(work):
    """The demo checkpoint under another model_type: a layout prunetts.models.Arch does not know."""
    ckpt = work / "mistral"
    ckpt.mkdir(exist_ok=True)
    config = json.loads((DEMO_MODEL / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(dict(config, model_type="mistral")))
    (ckpt / "model.safetensors").symlink_to(DEMO_MODEL / "model.safetensors")
    return str(ckpt)


def _demo_but(work, name: str, own: str):
    """A checkpoint folder ``name`` linking every file of the demo checkpoint but ``own``, which the caller writes."""
    ckpt = work / name
    ckpt.mkdir(exist_ok=True)
    for f in DEMO_MODEL.iterdir():
        if f.name != own:
            (ckpt / f.name).symlink_to(f)
    return ckpt


def _truncated_checkpoint(work):
    """The demo checkpoint with its weights cut short (a copy interrupted, a full disk)."""
    ckpt = _demo_but(work, "truncated", "model.safetensors")
    data = (DEMO_MODEL / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    return str(ckpt)


def _layer_count_config_checkpoint(work, delta: int):
    """The demo checkpoint with a config.json of ``delta`` layers more (or fewer) than its weights hold (another model
    size's config)."""
    ckpt = _demo_but(work, f"layers{delta:+d}", "config.json")
    config = json.loads((DEMO_MODEL / "config.json").read_text())
    n = config["num_hidden_layers"] + delta
    config["num_hidden_layers"] = n
    if "layer_types" in config:
        config["layer_types"] = (config["layer_types"] + config["layer_types"][-1:] * max(delta, 0))[:n]
    (ckpt / "config.json").write_text(json.dumps(config))
    return str(ckpt)


def _no_im_start_checkpoint(work):
    """The demo checkpoint with a tokenizer that has no ``<|im_start|>`` token (s1's thinking stop) but ``</think>``."""
    ckpt = _demo_but(work, "no-im-start", "tokenizer.json")
    text = (DEMO_MODEL / "tokenizer.json").read_text()
    (ckpt / "tokenizer.json").write_text(text.replace('"<|im_start|>"', '"<|im_begin|>"'))
    return str(ckpt)


def _no_tokenizer_checkpoint(work):
    """The demo checkpoint without its tokenizer files (config.json and weights only)."""
    ckpt = work / "no-tokenizer"
    ckpt.mkdir(exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        (ckpt / f).symlink_to(DEMO_MODEL / f)
    return str(ckpt)


def _texts_file(name: str, lines: list[str]):
    """A local text file (JSON Lines, Parquet) written into the case's directory."""

    def make(work):
        path = work / name
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"body": lines}), path)
        else:
            path.write_text("".join(line + "\n" for line in lines))
        return str(path)

    return make


def _rename_bench(name: str):
    """The micro config's one benchmark under another name."""

    def edit(cfg, work):
        (options,) = cfg["benchmarks"].values()
        cfg["benchmarks"] = {name: options}

    return edit


def _replace(key: str, value):
    def edit(cfg, work):
        cfg[key] = value(work) if callable(value) else value

    return edit


def _rename_top(old: str, new: str):
    def edit(cfg, work):
        cfg[new] = cfg.pop(old)

    return edit


SHORTGPT = {"methods": ["shortgpt"], "allocations": ["uniform"]}

# (id, edit, substrings of the one error line: the key, the offending value or the fix)
CASES = [
    ("unknown-method", _set("pruning.methods", ["sparsegpt"]), ["pruning.methods[0]", "sparsegpt", "one of"]),
    ("unknown-allocation", _set("pruning.allocations", ["uniforn"]), ["pruning.allocations[0]", "'uniform'"]),
    ("unknown-benchmark", _replace("benchmarks", {"aime25": {}}), ["benchmarks", "aime25", "'aime24'"]),
    ("sparsity-one", _set("pruning.sparsities", [1.0]), ["pruning.sparsities[0]", "> 0 and < 1"]),
    ("sparsity-zero", _set("pruning.sparsities", [0]), ["pruning.sparsities[0]", "> 0 and < 1"]),
    ("sparsity-negative", _set("pruning.sparsities", [-0.2]), ["pruning.sparsities[0]", "> 0"]),
    ("sparsity-5-decimals", _set("pruning.sparsities", [0.12345]), ["pruning.sparsities", "4 decimals", "round"]),
    # NaN passes JSON Schema's bounds (every comparison is false): a NaN OWL lambda allocated sparsity 0 everywhere
    ("owl-lambda-nan", _set("pruning.owl.lambda", float("nan")), ["pruning.owl.lambda", "nan", "not a finite number"]),
    ("sparsity-nan", _set("pruning.sparsities", [float("nan")]), ["pruning.sparsities[0]", "nan", "finite"]),
    ("layerif-e1-nan", _set("pruning.layerif.e1", float("nan")), ["pruning.layerif.e1", "nan", "finite"]),
    ("temperature-inf", _set("generation.temperature", float("inf")), ["generation.temperature", "inf", "finite"]),
    ("budget-zero", _set("generation.budgets", [0, 16]), ["generation.budgets[0]", ">= 1"]),
    ("budgets-unsorted", _set("generation.budgets", [64, 16]), ["generation.budgets", "not strictly increasing"]),
    ("budgets-repeated", _set("generation.budgets", [16, 16]), ["generation.budgets", "not strictly increasing"]),
    ("budgets-empty", _set("generation.budgets", []), ["generation.budgets", "at least 1"]),
    ("duplicate-method", _set("pruning.methods", ["wanda", "wanda"]), ["pruning.methods", "duplicates"]),
    ("duplicate-sparsity", _set("pruning.sparsities", [0.5, 0.5]), ["pruning.sparsities", "duplicates"]),
    (
        "duplicate-shortgpt-variant",
        _replace("pruning", {**SHORTGPT, "sparsities": [0.5], "shortgpt_layers": [3]}),
        ["pruning.shortgpt_layers", "duplicates variant shortgpt-s0.50"],
    ),
    ("unknown-top-key", _set("typo_key", 1), ["typo_key", "unknown key", "allowed keys"]),
    ("top-key-typo", _rename_top("generation", "generaton"), ["generaton", "did you mean 'generation'"]),
    ("nested-key-typo", _set("generation.temprature", 0.5), ["generation.temprature", "did you mean 'temperature'"]),
    ("model-key-typo", _set("models.demo.delimeters", "s1"), ["models.demo.delimeters", "'delimiters'"]),
    ("wanda-mode-typo", _set("pruning.wanda", {"mode": "sequental"}), ["pruning.wanda.mode", "'sequential'"]),
    (
        "wanda-override-allocation-typo",
        _set("pruning.wanda", {"by_allocation": {"layrif": {"mode": "one_pass"}}}),
        ["pruning.wanda.by_allocation", "layrif", "'layerif'"],
    ),
    (
        "wanda-override-group-typo",
        _set("pruning.wanda", {"by_allocation": {"layerif": {"group": "matrx"}}}),
        ["pruning.wanda.by_allocation.layerif.group", "'matrix'"],
    ),
    ("resources-rule-typo", _set("resources", {"generat": {"mem_mb": 1}}), ["resources", "'generate'"]),
    ("model-path-missing", _set("models.demo.path", None), ["models.demo.path", "missing required key"]),
    ("model-path-absent", _set("models.demo.path", "/nonexistent/ckpt"), ["models.demo.path", "does not exist"]),
    (
        "model-path-pickle-only",
        _set("models.demo.path", _bin_only_checkpoint),
        ["models.demo.path", "no *.safetensors", "convert"],
    ),
    (
        "model-weights-truncated",
        _set("models.demo.path", _truncated_checkpoint),
        ["models.demo.path", "model.safetensors: truncated", "restore it"],
    ),
    (
        "model-config-other-size",
        _set("models.demo.path", lambda work: _layer_count_config_checkpoint(work, -1)),
        ["models.demo.path", "num_hidden_layers 5", "hold 6 decoder layers", "restore the checkpoint's own config"],
    ),
    (
        "model-config-more-layers",
        _set("models.demo.path", lambda work: _layer_count_config_checkpoint(work, 1)),
        ["models.demo.path", "num_hidden_layers 7", "hold 6 decoder layers", "restore the checkpoint's own config"],
    ),
    (
        "model-type-unsupported",
        _set("models.demo.path", _mistral_checkpoint),
        ["models.demo.path", "'mistral'", "qwen2, qwen3, llama"],
    ),
    (
        "model-stop-token-absent",
        _set("models.demo.path", _no_im_start_checkpoint),
        ["models.demo.delimiters", "'<|im_start|>'", "no single token", "use delimiters: qwen3"],
    ),
    ("model-name-escapes", _replace("models", {"../x": {"path": str(DEMO_MODEL)}}), ["models", "'../x'", "rename"]),
    ("model-name-hidden", _replace("models", {".x": {"path": str(DEMO_MODEL)}}), ["models", "'.x'", "rename"]),
    ("models-empty", _replace("models", {}), ["models", "empty"]),
    ("seed-float", _set("generation.seeds", [7.5]), ["generation.seeds[0]", "whole number"]),
    ("seed-integral-float", _set("generation.seeds", [7.0]), ["generation.seeds[0]", "without a decimal point"]),
    ("seed-bool", _set("generation.seeds", [True]), ["generation.seeds[0]", "True is not a whole number"]),
    ("seed-string", _set("generation.seeds", ["seven"]), ["generation.seeds[0]", "whole number"]),
    ("temperature-negative", _set("generation.temperature", -0.6), ["generation.temperature", ">= 0"]),
    ("max-gen-toks-string", _set("generation.max_gen_toks", "32"), ["generation.max_gen_toks", "whole number"]),
    (
        "shortgpt-removes-every-layer",
        _replace("pruning", {**SHORTGPT, "sparsities": [0.95]}),
        ["pruning.sparsities", "remove 6 of model demo's 6 layers", "at most 0.91"],
    ),
    (
        "shortgpt-layers-all",
        _replace("pruning", {**SHORTGPT, "shortgpt_layers": [6]}),
        ["pruning.shortgpt_layers", "every layer", "1..5"],
    ),
    (
        "model-shortgpt-layers-duplicate",
        _edits(_replace("pruning", {**SHORTGPT, "sparsities": [0.5]}), _set("models.demo.shortgpt_layers", [3])),
        ["models.demo.shortgpt_layers", "duplicates variant shortgpt-s0.50", "drop it"],
    ),
    (
        "model-shortgpt-layers-zero",
        _set("models.demo.shortgpt_layers", [0]),
        ["models.demo.shortgpt_layers[0]", "must be >= 1"],
    ),
    (
        "shortgpt-layers-without-method",
        _replace("pruning", {"methods": ["magnitude"], "sparsities": [0.5], "shortgpt_layers": [2]}),
        ["pruning.shortgpt_layers", "add it"],
    ),
    (
        "methods-without-sparsities",
        _replace("pruning", {"methods": ["magnitude", "wanda"], "allocations": ["owl"]}),
        ["pruning.sparsities", "magnitude, wanda give no variant", "list sparsities"],
    ),
    (
        "methods-without-allocations",
        _replace("pruning", {"methods": ["wanda"], "allocations": [], "sparsities": [0.5]}),
        ["pruning.allocations", "wanda give no variant"],
    ),
    (
        "shortgpt-without-sizes",
        _replace("pruning", {"methods": ["shortgpt"]}),
        ["pruning.methods", "shortgpt gives no variant", "shortgpt_layers"],
    ),
    (
        "sparsities-without-methods",
        _replace("pruning", {"sparsities": [0.5]}),
        ["pruning.sparsities", "pruning.methods is empty"],
    ),
    (
        "vllm-option-prunetts-sets",
        _set("generation.vllm", {"dtype": "bfloat16", "gpu_memory_utilization": 0.9}),
        ["generation.vllm", "dtype is set by prunetts", "remove it"],
    ),
    (
        "vllm-load-format-pickle",
        _set("generation.vllm", {"load_format": "pt"}),
        ["generation.vllm.load_format", "'pt' may load pickled weights", "safetensors"],
    ),
    (
        "empty-grid",
        _replace("pruning", {"include_dense": False, "methods": []}),
        ["pruning", "grid is empty"],
    ),
    ("bench-limit-zero", _set("benchmarks.demo.limit", 0), ["benchmarks.demo.limit", ">= 1"]),
    ("bench-option-of-other", _set("benchmarks.demo.shuffle_seed", 3), ["benchmarks.demo", "shuffle_seed"]),
    ("bench-revision-demo", _set("benchmarks.demo.revision", "abc"), ["benchmarks.demo", "revision", "options"]),
    (
        "bench-revision-local-file",
        _replace("benchmarks", {"math500": {"source": str(BENCH_DATA / "math500.jsonl"), "revision": "abc"}}),
        ["benchmarks.math500.revision", "is local", "drop revision"],
    ),
    ("model-revision-local", _set("models.demo.revision", "abc"), ["models.demo.revision", "is local", "drop"]),
    ("model-revision-blank", _set("models.demo.revision", "a b"), ["models.demo.revision"]),
    (
        "bench-source-absent",
        _replace("benchmarks", {"math500": {"source": "/nonexistent/math500.jsonl"}}),
        ["benchmarks.math500.source", "does not exist"],
    ),
    (
        "calibration-source-absent",
        _set("calibration.source", "data/calib.jsonl"),
        ["calibration.source", "does not exist"],
    ),
    ("layerif-range-reversed", _set("pruning.layerif", {"e1": 0.4, "e2": 0.1}), ["pruning.layerif", "below e2"]),
    ("grading-workers-zero", _set("grading.workers", 0), ["grading.workers", ">= 1"]),
    # past threading.TIMEOUT_MAX (~292 years) the grade job's pool wait raised OverflowError, after the generation
    ("timeout-huge", _set("grading.timeout_s", 5_000_000_000), ["grading.timeout_s", "<= 86400"]),
    # a value in another case gets the suggestion too (spelling-close matching alone missed 'OWL' and 'MATH500')
    ("allocation-upper-case", _set("pruning.allocations", ["OWL"]), ["'OWL'", "did you mean 'owl'"]),
    ("benchmark-upper-case", _rename_bench("MATH500"), ["'MATH500'", "did you mean 'math500'"]),
    # passed on unread: the job got the profile's 8 GB and was killed once its model was loaded
    (
        "resource-name-typo",
        _set("resources", {"generate": {"mem_mbb": 64000}}),
        ["resources.generate.mem_mbb", "did you mean 'mem_mb'"],
    ),
    # text files the jobs would refuse, while other jobs ran beside them: now before any job
    (
        "calibration-field-missing",
        _set("calibration.source", _texts_file("body.jsonl", ['{"body": "a text"}'])),
        ["calibration.source", "body.jsonl: no 'text' field", "(fields: 'body')", "calibration.text_field"],
    ),
    (
        "calibration-parquet-field-missing",
        _set("calibration.source", _texts_file("t.parquet", ["a text"])),
        ["calibration.source", "t.parquet: no 'text' field", "calibration.text_field"],
    ),
    (
        "influence-file-empty",
        _set("influence.train_source", _texts_file("empty.jsonl", [])),
        ["influence.train_source", "no records in the file"],
    ),
    # a tokenizer-less folder failed in the first generate job, after the pruning, naming the pruned copy
    (
        "model-without-tokenizer",
        _set("models.demo.path", _no_tokenizer_checkpoint),
        ["models.demo.path", "no tokenizer"],
    ),
    # beyond the demo model's 512 positions: capture / influence ran there silently, generate warned after pruning
    ("budget-beyond-context", _set("generation.budgets", [16, 64, 512]), ["generation.budgets", "context of 512"]),
    ("seqlen-beyond-context", _set("calibration.seqlen", 1024), ["calibration.seqlen", "context of 512"]),
    ("influence-len-beyond-context", _set("influence.max_len", 600), ["influence.max_len", "context of 512"]),
    ("top-p-zero", _set("generation.top_p", 0), ["generation.top_p", "> 0"]),
    ("bench-limit-demo-beyond", _set("benchmarks.demo.limit", 200), ["benchmarks.demo.limit", "100 test problems"]),
    ("device-typo", _set("capture.device", "gpu"), ["capture.device", "'gpu'", "cuda:N"]),
    ("resources-mem-string", _set("resources", {"generate": {"mem_mb": "64G"}}), ["mem_mb", "whole number"]),
    ("timeout-float", _set("grading.timeout_s", 0.5), ["grading.timeout_s", "whole number"]),  # not also a range
    (
        "vllm-parallel-beyond-gpus",
        _edits(_set("generation.backend", "vllm"), _set("generation.vllm", {"tensor_parallel_size": 2})),
        ["generation.vllm", "= 2 GPUs", "resources.generate.gpu: 2"],
    ),
]


# checked in-process only (the same checks, without a Snakemake start each): near-twins of end-to-end cases
IN_PROCESS_ONLY = {
    "bench-limit-demo-beyond",
    "resources-mem-string",
    "timeout-float",
    "sparsity-negative",
    "budgets-repeated",
    "seed-string",
    "top-p-zero",
    "grading-workers-zero",
    "allocation-upper-case",
    "benchmark-upper-case",
    "resource-name-typo",
    "calibration-parquet-field-missing",
    "seqlen-beyond-context",
    "influence-len-beyond-context",
    "bench-limit-zero",
    "max-gen-toks-string",
    "model-key-typo",
    "model-name-hidden",
    "duplicate-sparsity",
    "budget-zero",
    "sparsity-nan",
    "layerif-e1-nan",
    "temperature-inf",
    "resources-rule-typo",
    "seed-float",
    "sparsity-zero",
    "budgets-empty",
    "layerif-range-reversed",
    "bench-option-of-other",
    "wanda-override-allocation-typo",
    "wanda-override-group-typo",
    "model-type-unsupported",
    "model-stop-token-absent",
    "model-config-other-size",
    "model-config-more-layers",
    "seed-bool",
}
E2E = [c for c in CASES if c[0] not in IN_PROCESS_ONLY]


def _broken(case, work):
    name, edit, _ = case
    cfg = copy.deepcopy(micro_config())
    edit(cfg, work)
    return cfg


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The end-to-end cases' dry runs, two at a time (each is one Snakemake start, ~2 s of CPU)."""

    def run(case):
        work = tmp_path_factory.mktemp(case[0])
        proc = snakemake(work, "-n", configfile=write_config(work, _broken(case, work)), check=False, timeout=120)
        return case[0], (work, proc)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, E2E))


def test_there_are_enough_cases():
    assert len(E2E) >= 25 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "words"), [(c[0], c[2]) for c in E2E], ids=[c[0] for c in E2E])
def test_broken_config_fails_before_any_job_with_one_clear_line(results, name, words):
    work, proc = results[name]
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert proc.returncode != 0, out
    assert "Traceback" not in out and 'File "' not in out, out
    assert len(lines) == 1 and lines[0].startswith("config error: "), out
    assert ";" in lines[0], f"no fix after the problem: {lines[0]}"
    for word in words:
        assert word in lines[0], f"{word!r} missing from: {lines[0]}"
    assert not (work / "results").exists()  # no job ran


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_case_gives_one_line_in_process(case, tmp_path, monkeypatch):
    """What common.smk runs (schema_check, Snakemake's validate for the defaults, check), for every case."""
    from snakemake.utils import validate

    from prunetts.config import ConfigError, check, schema_check

    monkeypatch.chdir(tmp_path)  # relative paths in a config start at the working directory
    cfg = json.loads(json.dumps(_broken(case, tmp_path)))  # plain types, as from YAML
    with pytest.raises(ConfigError) as err:
        schema_check(cfg, SCHEMA)
        validate(cfg, SCHEMA)
        check(cfg)
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and ";" in lines[0], lines
    for word in case[2]:
        assert word in lines[0], f"{word!r} missing from: {lines[0]}"


def test_the_micro_config_itself_is_valid(tmp_path):
    """The control: the unedited config of the table passes the same checks."""
    proc = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, micro_config()), timeout=120)
    assert "config error" not in proc.stdout + proc.stderr


def test_schema_problems_lists_every_problem_at_once():
    """Several mistakes in one file: one line each, so a user fixes them in one go (library call, no Snakemake)."""
    from prunetts.config import load_schema, schema_problems

    cfg = micro_config(generation={"temperature": -1, "seeds": [1.5]}, grading={"wrkers": 2})
    lines = schema_problems(json.loads(json.dumps(cfg)), load_schema(SCHEMA))
    assert len(lines) == 3, lines
    assert [line.split(":")[0] for line in lines] == ["generation.seeds[0]", "generation.temperature", "grading.wrkers"]


def test_every_output_and_log_of_the_dag_stays_under_results(tmp_path):
    """Output paths come from the rules' patterns plus config names (model slugs, benchmark enum, variant ids built
    from validated numbers, integer seeds): a dry run with a second, oddly named model lists only paths in results/."""
    cfg = micro_config(models={"s1.1-7B..v2": {"path": str(DEMO_MODEL)}})
    proc = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, cfg), timeout=120)
    paths = [
        p.strip()
        for line in proc.stdout.splitlines()
        if line.strip().startswith(("output:", "log:"))
        for p in line.split(":", 1)[1].split(",")
    ]
    assert len(paths) > 50 and any("model~s1.1-7B..v2" in p for p in paths)
    results = (tmp_path / "results").resolve()
    for p in paths:
        assert (tmp_path / p).resolve().is_relative_to(results), p
