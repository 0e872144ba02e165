from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from prunetts.config import ConfigError, check, format_sparsity, parse_variant, scorers, variants

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def demo_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_demo_config_validates_and_grid():
    cfg = demo_config()
    validate(cfg, SCHEMA)
    check(cfg)
    assert variants(cfg) == ["dense"] + [
        f"{m}-{a}-s{s}" for m in ("magnitude", "wanda") for a in ("uniform", "owl", "layerif") for s in ("0.30", "0.50")
    ] + ["shortgpt-s0.30", "shortgpt-s0.50"]
    assert scorers(cfg) == ["owl", "bi", "layerif"]


@pytest.mark.parametrize(
    "slug",
    ["dense", "wanda-uniform-s0.20", "magnitude-owl-s0.05", "wanda-layerif-s0.125", "shortgpt-s0.20", "shortgpt-n3"],
)
def test_variant_round_trip(slug):
    assert parse_variant(slug).id == slug


@pytest.mark.parametrize("slug", ["shortgpt-n0", "shortgpt-n01", "shortgpt-n"])
def test_a_shortgpt_layer_count_id_names_one_or_more_layers_without_leading_zeros(slug):
    """``shortgpt-n{k}`` names k >= 1 removed layers in one spelling: n0 removes nothing, n01 would be a second id of
    shortgpt-n1."""
    with pytest.raises(ConfigError, match="not a known variant id"):
        parse_variant(slug)


def test_format_sparsity():
    assert format_sparsity(0.2) == "0.20"
    assert format_sparsity(0.125) == "0.125"


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(typo_key=1),
        lambda c: c["pruning"].update(methods=["sparsegpt"]),
        lambda c: c["pruning"].update(allocations=["owl-typo"]),
        lambda c: c["benchmarks"].update(aime25={}),
        lambda c: c["pruning"].update(sparsities=[1.2]),
        lambda c: c["generation"].update(budgets=[0, 16]),
        lambda c: c["generation"].update(temprature=0.5),
        lambda c: c.setdefault("calibration", {}).update(seed=-1),  # as the CLI's --seed
        lambda c: c.setdefault("influence", {}).update(seed=-1),
    ],
)
def test_schema_rejects(edit):
    cfg = demo_config()
    edit(cfg)
    with pytest.raises(WorkflowError):
        validate(cfg, SCHEMA)


def test_shortgpt_layers_need_the_method():
    cfg = demo_config()
    cfg["pruning"].update(methods=["wanda"], shortgpt_layers=[2])
    with pytest.raises(ConfigError, match="shortgpt_layers"):
        check(cfg)


def test_check_rejects_unsorted_budgets():
    cfg = demo_config()
    cfg["generation"]["budgets"] = [64, 16]
    with pytest.raises(ConfigError, match="generation.budgets"):
        check(cfg)


def test_wanda_setting_applies_the_allocations_override_on_top_of_the_global_knobs():
    from prunetts.config import wanda_setting

    wanda = {
        "mode": "sequential",
        "group": "row",
        "by_allocation": {"layerif": {"mode": "one_pass", "group": "matrix"}},
    }
    assert wanda_setting(wanda, "uniform") == {"mode": "sequential", "group": "row"}
    assert wanda_setting(wanda, "layerif") == {"mode": "one_pass", "group": "matrix"}
    assert wanda_setting({"mode": "one_pass", "by_allocation": {"owl": {"group": "matrix"}}}, "owl") == {
        "mode": "one_pass",
        "group": "matrix",
    }
    assert wanda_setting({}, "owl") == {"mode": "sequential", "group": "row"}


def test_check_rejects_an_even_savitzky_golay_window():
    cfg = demo_config()
    cfg["pruning"]["layerif"] = {"window": 4, "polyorder": 2}
    with pytest.raises(ConfigError, match=r"pruning.layerif.window: 4 is even"):
        check(cfg)


def test_unpinned_hub_sources_are_named_in_one_warning(tmp_path):
    """The paper config reads two models and four benchmarks from the hub unpinned: one line names all six; a branch
    or a short sha does not count as pinned; full commit shas (or local paths and files, as in the demo) silence it."""
    from prunetts.config import unpinned_sources

    assert unpinned_sources(demo_config()) is None
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(paper, SCHEMA)
    check(paper)
    line = unpinned_sources(paper)
    expected = (
        "models s1.1-7B, Qwen3-8B; benchmarks math500, aime24, amc23, gpqa_diamond; texts: c4 in calibration, s1k in "
        "influence.train_source."
    )
    assert "\n" not in line and expected in line
    assert "revision: <commit sha>" in line and "c4@<commit sha>" in line
    paper["models"]["s1.1-7B"]["revision"] = "0" * 40
    paper["models"]["Qwen3-8B"]["revision"] = "main"
    paper["benchmarks"]["aime24"]["revision"] = "abc1234"
    line = unpinned_sources(paper)
    expected = "models Qwen3-8B (revision 'main' is not a 40-character commit sha); benchmarks math500, aime24 ("
    assert expected in line
    assert "s1.1-7B" not in line and "'abc1234' is not" in line
    paper["models"]["Qwen3-8B"]["revision"] = "f" * 40
    paper["calibration"]["source"] = "c4@" + "c" * 40
    paper["influence"]["train_source"] = "s1k@" + "d" * 40
    paper["influence"]["val_source"] = "c4@main"
    assert unpinned_sources(paper).endswith(
        "texts: c4 in influence.val_source (revision 'main' is not a 40-character commit sha). Each job loads what "
        "the hub serves when it downloads (job logs name the commit), and --cache keys do not change when the hub "
        "does; for reproducible runs set revision: <commit sha> on each, and source: c4@<commit sha> (s1k@<commit "
        "sha>; config/README.md)"
    )
    paper["influence"]["val_source"] = None
    local = tmp_path / "math500.jsonl"
    local.write_text('{"problem": "1+1?", "answer": "2"}\n')
    paper["benchmarks"]["math500"]["source"] = str(local)  # a local file: nothing to pin
    for name in ("aime24", "amc23", "gpqa_diamond"):
        paper["benchmarks"][name]["revision"] = "0" * 40
    check(paper)
    assert unpinned_sources(paper) is None
    paper["calibration"]["source"] = "c4"
    paper["influence"]["train_source"] = "s1k"
    assert "texts: c4 in calibration, s1k in influence.train_source." in unpinned_sources(paper)
    paper["pruning"]["allocations"] = ["uniform"]  # LayerIF's texts are no longer read
    line = unpinned_sources(paper)
    assert "texts: c4 in calibration. " in line and "influence.train_source" not in line
    paper["pruning"].update(methods=[], sparsities=[])  # dense only: no texts read at all
    assert unpinned_sources(paper) is None


def test_retries_grow_memory_and_time_but_not_the_eval_groups_time():
    """A retry gets attempt x the memory everywhere and attempt x the time except for generate (it resumes from its
    journal) and grade: the Slurm profile runs the two as one job asking for the sum, which on the paper grid stays at
    24 h on every attempt."""
    from prunetts.config import rule_resources

    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    at = {  # the third attempt
        rule: {k: v(None, 3) if callable(v) else v for k, v in rule_resources(cfg, rule).items()}
        for rule in ("capture", "generate", "grade")
    }
    assert at["capture"] == {"gpu": 1, "mem_mb": 3 * 64000, "runtime": 3 * 120}
    assert at["generate"] == {"gpu": 1, "mem_mb": 3 * 64000, "runtime": 1380}
    assert at["grade"] == {"mem_mb": 3 * 16000, "runtime": 60}
    for attempt in (1, 2, 3):
        group = [rule_resources(cfg, r)["runtime"] for r in ("generate", "grade")]
        assert sum(v(None, attempt) if callable(v) else v for v in group) == 24 * 60
    assert rule_resources({}, "generate") == {"gpu": 1}  # the workflow's default for a GPU rule (device auto)
    assert rule_resources({}, "grade") == {}
    # without the journal a retry starts over: it needs the first attempt's time again and more (every attempt timed
    # out at the same limit)
    no_journal = {**cfg, "generation": {**cfg["generation"], "journal": False}}
    assert rule_resources(no_journal, "generate")["runtime"](None, 3) == 3 * 1380
    # mem_mib (as mem_mb, in mebibytes) grows on a retry of every rule, generate and grade too
    mib = {"resources": {r: {"mem_mib": 1000, "runtime": 60} for r in ("capture", "generate", "grade")}}
    for rule in ("capture", "generate", "grade"):
        assert rule_resources(mib, rule)["mem_mib"](None, 3) == 3000, rule


def validated_demo() -> dict:
    """The demo config with the schema's defaults filled in and its model path absolute."""
    cfg = demo_config()
    validate(cfg, SCHEMA)
    cfg["models"]["demo"]["path"] = str(REPO / cfg["models"]["demo"]["path"])
    return cfg


def test_prune_settings_name_what_each_variant_read():
    """A workflow checkpoint's prunetts_prune.json records the settings beyond its variant id: the allocation's
    knobs, LayerIF's influence settings, and the calibration / capture settings only where the method or allocation
    read data made from the calibration windows (magnitude-uniform reads none)."""
    from prunetts.config import calibration_settings, prune_settings

    cfg = validated_demo()
    calibration, capture = calibration_settings(cfg["calibration"]), cfg["capture"]
    assert prune_settings(cfg, "magnitude-uniform-s0.30") == {}
    assert prune_settings(cfg, "magnitude-owl-s0.30") == {
        "owl": cfg["pruning"]["owl"],
        "calibration": calibration,
        "capture": capture,
    }
    assert prune_settings(cfg, "wanda-uniform-s0.30") == {"calibration": calibration, "capture": capture}
    for shortgpt in ("shortgpt-n2", "shortgpt-s0.30"):
        assert prune_settings(cfg, shortgpt) == {"calibration": calibration, "capture": capture}
    layerif = prune_settings(cfg, "magnitude-layerif-s0.30")
    assert layerif["layerif"] == cfg["pruning"]["layerif"] and layerif["influence"]["n_train"] == 64
    assert layerif["calibration"] == calibration and "capture" not in layerif  # the texts, not the capture
    cfg["influence"]["train_source"] = "texts.jsonl"  # LayerIF's texts from their own file: no calibration
    assert set(prune_settings(cfg, "magnitude-layerif-s0.30")) == {"layerif", "influence"}
    assert prune_settings(cfg, "magnitude-layerif-s0.30")["influence"]["train_source"] == "texts.jsonl"


def test_canonical_sorts_every_mapping_and_keeps_lists():
    from prunetts.config import canonical

    cfg = {"b": {"y": 1, "x": [{"q": 1, "p": 2}, 3]}, "a": 0}
    out = canonical(cfg)
    assert list(out) == ["a", "b"] and list(out["b"]) == ["x", "y"] and list(out["b"]["x"][0]) == ["p", "q"]
    assert out == cfg and repr(canonical({"x": 1, "y": 2})) == repr(canonical({"y": 2, "x": 1}))


def test_generation_trigger_leaves_out_the_run_settings():
    from prunetts.config import generation_trigger

    g = {"budgets": [1], "seeds": [7], "temperature": 0.6, "batch_size": 8, "journal": True, "device": "cuda"}
    assert generation_trigger(g) == {"temperature": 0.6, "device": "cuda"}  # transformers: the device sets the dtype
    engine = {"gpu_memory_utilization": 0.8, "tensor_parallel_size": 2, "quantization": "fp8"}
    vllm = {**g, "backend": "vllm", "vllm": engine}
    # vLLM ignores generation.device; its memory share and parallelism place the work, quantization changes results
    assert generation_trigger(vllm) == {"temperature": 0.6, "backend": "vllm", "vllm": {"quantization": "fp8"}}
    only_run_settings = {"temperature": 0.6, "backend": "vllm"}  # the same as no vllm options at all
    assert generation_trigger({**vllm, "vllm": {"gpu_memory_utilization": 0.5}}) == only_run_settings
    assert generation_trigger({**vllm, "vllm": {}}) == only_run_settings
    # how the same safetensors are read and what is offloaded to the CPU: run settings too, a change reruns nothing
    # (vLLM 0.33 has no swap_space any more: an EngineArgs field no longer, it is one line at the engine's load)
    read = {"load_format": "fastsafetensors", "cpu_offload_gb": 8, "enforce_eager": True}
    assert generation_trigger({**vllm, "vllm": read}) == only_run_settings
    # the transformers backend reads no vLLM option: editing one (max_model_len, quantization) reruns no generation
    assert generation_trigger({**g, "vllm": {"max_model_len": 100, "quantization": "fp8"}}) == generation_trigger(g)
    transformers = {**g, "backend": "transformers"}
    assert generation_trigger({**transformers, "vllm": engine}) == generation_trigger(transformers)


def test_gpu_rules_ask_for_a_gpu_by_default_and_vllm_parallelism_must_fit():
    from prunetts.config import ConfigError, check, gpu_count, rule_resources

    cfg = validated_demo()  # the demo computes on the CPU: no GPU anywhere
    assert all("gpu" not in rule_resources(cfg, r) for r in ("capture", "prune", "influence", "generate", "grade"))
    for section in ("capture", "influence", "generation"):
        cfg[section]["device"] = "auto"
    assert all(rule_resources(cfg, r)["gpu"] == 1 for r in ("capture", "influence", "generate"))
    # prune: only sequential Wanda runs the model (magnitude, one-pass Wanda and ShortGPT read and write files)
    prune_gpu = rule_resources(cfg, "prune")["gpu"]
    by_variant = {v: prune_gpu(SimpleNamespace(variant=v)) for v in ("wanda-owl-s0.20", "magnitude-owl-s0.20")}
    assert by_variant == {"wanda-owl-s0.20": 1, "magnitude-owl-s0.20": 0}
    cfg["pruning"]["wanda"] = {"mode": "sequential", "by_allocation": {"layerif": {"mode": "one_pass"}}}
    prune_gpu = rule_resources(cfg, "prune")["gpu"]
    assert [prune_gpu(SimpleNamespace(variant=f"wanda-{a}-s0.20")) for a in ("uniform", "layerif")] == [1, 0]
    assert prune_gpu(SimpleNamespace(variant="shortgpt-n2")) == 0
    # an explicit cuda device is every prune job's (a job given none would fail on it, or share another's GPU)
    cfg["capture"]["device"] = "cuda:0"
    assert rule_resources(cfg, "prune")["gpu"] == 1
    assert "gpu" not in rule_resources(cfg, "grade")
    cfg["resources"] = {"generate": {"gres": "gpu:a100:2"}, "capture": {"gpu": 0}}
    assert "gpu" not in rule_resources(cfg, "generate") and rule_resources(cfg, "capture")["gpu"] == 0
    assert gpu_count(rule_resources(cfg, "generate")) == 2 and gpu_count({"gres": "gpu:1"}) == 1
    assert gpu_count({"gres": "gpu:2"}) == 2  # a count without a GPU type
    cfg["resources"] = {"generate": {"gpus": 2}}  # the name the executors read: gpu
    assert rule_resources(cfg, "generate") == {"gpu": 2}
    assert gpu_count({"gpu": "x"}) is None and gpu_count({}) == 0
    cfg["generation"].update(backend="vllm", vllm={"tensor_parallel_size": 4})
    with pytest.raises(ConfigError, match=r"tensor_parallel_size x pipeline_parallel_size = 4 GPUs, but the generate "):
        check(cfg)
    cfg["resources"]["generate"] = {"gpu": 4}
    check(cfg)


def test_a_temperature_vllm_refuses_or_changes_is_one_line_before_any_job():
    """vLLM's SamplingParams takes a temperature in [0, 2]: above it, under backend vllm, every generate job would
    fail after loading its model; below 0.01 (and above 0) it runs at 0.01. The transformers backend samples at any
    temperature."""
    from prunetts.config import ConfigError, check

    cfg = validated_demo()
    cfg["generation"].update(backend="vllm", temperature=2.5)
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "generation.temperature: 2.5 is above 2, which vLLM refuses (its range is [0, 2])" in str(e.value)
    assert "\n" not in str(e.value)
    # vLLM raises a temperature in (0, 0.01) to 0.01: the results would record one that did not run
    cfg["generation"].update(temperature=0.005)
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "generation.temperature: 0.005 would run at 0.01 under vLLM" in str(e.value)
    for backend, temperature in (
        ("vllm", 2.0),
        ("vllm", 0.01),
        ("vllm", 0),
        ("transformers", 2.5),
        ("transformers", 0.005),
    ):
        cfg["generation"].update(backend=backend, temperature=temperature)
        check(cfg)


def test_misspelt_vllm_options_are_caught_when_vllm_is_importable(monkeypatch):
    import dataclasses
    import sys
    from types import SimpleNamespace

    from prunetts.config import vllm_option_problems

    @dataclasses.dataclass
    class EngineArgs:  # a stand-in for vllm.engine.arg_utils.EngineArgs (vLLM needs a GPU build)
        gpu_memory_utilization: float = 0.9
        max_model_len: int | None = None

    cfg = validated_demo()
    cfg["generation"].update(backend="vllm", vllm={"gpu_memory_utilisation": 0.8, "max_model_len": 4096})
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", None)
    assert vllm_option_problems(cfg) == []  # not importable here: the generate job checks them
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", SimpleNamespace(EngineArgs=EngineArgs))
    assert vllm_option_problems(cfg) == [
        "generation.vllm.gpu_memory_utilisation: not an option of vllm.EngineArgs; did you mean "
        "'gpu_memory_utilization'? use its field names"
    ]


def test_sparsities_that_remove_the_same_shortgpt_layers_are_warned():
    from prunetts.config import shortgpt_duplicates

    cfg = validated_demo()  # the demo model has 6 layers
    cfg["pruning"].update(methods=["shortgpt"], sparsities=[0.1, 0.2, 0.5])
    assert shortgpt_duplicates(cfg) == [
        "warning: shortgpt-s0.10 and shortgpt-s0.20 remove the same 1 of model demo's 6 layers: the same model, "
        "pruned and evaluated 2 times"
    ]
    cfg["pruning"]["sparsities"] = [0.2, 0.5]
    assert shortgpt_duplicates(cfg) == []
    cfg["pruning"]["sparsities"] = [0.05, 0.5]  # round(0.3) = 0: ShortGPT still removes one layer, a sixth of them
    assert shortgpt_duplicates(cfg) == [
        "warning: model demo: ShortGPT at sparsity 0.05 removes 1 of the 6 layers (17% of them), not none: "
        "round(0.05 x 6) = 0, and a variant removing none would be the dense model"
    ]


def test_config_edge_cases_of_the_new_checks():
    from prunetts.config import generation_trigger, gpu_count, load_schema, schema_problems

    cfg = demo_config()
    cfg["benchmarks"] = {"demo": {}}  # limit null (the schema's default): all 100 problems, no error
    validate(cfg, SCHEMA)
    cfg["models"]["demo"]["path"] = str(REPO / cfg["models"]["demo"]["path"])
    check(cfg)
    assert gpu_count({"gres": "gpu:a100:2,lscratch:10"}) == 2 and gpu_count({"gres": "lscratch:10"}) == 0
    assert gpu_count({"gres": "tmpfs:1,gpu"}) == 1
    # any of the keys makes Slurm allocate GPUs: the most of them counts (a profile's gpu: 0 beside a gres of 2)
    assert gpu_count({"gpu": 0, "gres": "gpu:a100:2"}) == 2 and gpu_count({"gpus": "2"}) == 2
    assert gpu_count({"gpu": True}) is None and gpu_count({"gpu": "x", "gres": "gpu:1"}) == 1 and gpu_count(None) == 0
    # under vLLM, dtype auto is the bf16 it computes in: the change from vLLM's own auto reruns vLLM generations
    assert generation_trigger({"backend": "vllm", "dtype": "auto"}) == {"backend": "vllm", "dtype": "bfloat16"}
    assert generation_trigger({"dtype": "auto", "device": "auto"}) == {"dtype": "auto", "device": "auto"}
    cfg["resources"] = {"generate": {"runtime": "23h", "mem_mb": 64000}}  # Snakemake reads a runtime with a unit
    assert schema_problems(cfg, load_schema(SCHEMA)) == []


def test_semantic_checks_at_their_boundaries():
    """Each check of ``config_problems`` lets its last valid value through and names the first invalid one (the demo
    model has 6 layers: ShortGPT may remove at most 5; the demo task has 100 test problems)."""
    from prunetts.config import config_problems

    def problems(edit) -> list[str]:
        cfg = validated_demo()
        edit(cfg)
        return config_problems(cfg)

    assert problems(lambda c: None) == []
    assert problems(lambda c: c["generation"].update(budgets=[16, 16, 32])) == [
        "generation.budgets: [16, 16, 32] is not strictly increasing; sort it, drop repeats (e.g. [16, 32])"
    ]
    assert problems(lambda c: c["pruning"]["layerif"].update(e1=0.2, e2=0.2))[0].startswith(
        "pruning.layerif: e1 = 0.2 must be below e2 = 0.2"
    )
    assert problems(lambda c: c["pruning"]["layerif"].update(window=5, polyorder=4)) == []
    assert problems(lambda c: c["pruning"]["layerif"].update(window=5, polyorder=5))[0].startswith(
        "pruning.layerif.polyorder: 5 must be below window = 5"
    )
    assert problems(lambda c: c["benchmarks"]["demo"].update(limit=100)) == []
    assert problems(lambda c: c["benchmarks"]["demo"].update(source=None)) == []
    # the loader's internal sample size is no config key: the message lists only what the config may set
    assert problems(lambda c: c["benchmarks"]["demo"].update(revision="abc")) == [
        "benchmarks.demo: revision is not an option of demo (its options: limit); remove it"
    ]
    assert problems(lambda c: c["benchmarks"]["demo"].update(source="HuggingFaceH4/MATH-500")) == [
        "benchmarks.demo.source: HuggingFaceH4/MATH-500, but the demo task is built in and reads no source; remove "
        "it, or give the file to a real benchmark (math500, aime24, amc23, gpqa_diamond)"
    ]
    assert problems(lambda c: c["benchmarks"]["demo"].update(limit=101))[0].startswith(
        "benchmarks.demo.limit: 101, but the demo task has 100 test problems"
    )
    assert problems(lambda c: c["pruning"].update(sparsities=[0.91])) == []  # round(0.91 x 6) = 5 of 6
    assert problems(lambda c: c["pruning"].update(sparsities=[0.92])) == [
        "pruning.sparsities: 0.92 makes ShortGPT remove 6 of model demo's 6 layers (at most 5: the last layer stays); "
        "use a sparsity of at most 0.91 or drop shortgpt"
    ]
    assert problems(lambda c: c["pruning"].update(shortgpt_layers=[5])) == []
    assert problems(lambda c: c["pruning"].update(shortgpt_layers=[6]))[0].startswith(
        "pruning.shortgpt_layers: 6 would remove every layer of model demo (6 layers, at most 5 can go)"
    )


def test_a_models_own_shortgpt_layers():
    """``models.<name>.shortgpt_layers`` replaces the grid's list for that model: a layer count that a sparsity
    already removes from one model (3 of 28 at S = 0.1) can still be run on another."""
    from prunetts.config import config_problems, generation_settings

    cfg = validated_demo()  # the demo model has 6 layers: ShortGPT at 0.3 removes round(1.8) = 2, at 0.5 3
    demo = cfg["models"]["demo"]
    cfg["models"]["other"] = {"path": "org/other", "shortgpt_layers": [2, 4]}
    cfg["pruning"]["shortgpt_layers"] = [1]
    assert [v for v in variants(cfg, "demo") if v.startswith("shortgpt")] == [
        "shortgpt-s0.30",
        "shortgpt-s0.50",
        "shortgpt-n1",
    ]
    assert variants(cfg, "other")[-3:] == ["shortgpt-s0.50", "shortgpt-n2", "shortgpt-n4"]
    assert variants(cfg)[-4:] == ["shortgpt-s0.50", "shortgpt-n1", "shortgpt-n2", "shortgpt-n4"]  # the union
    assert config_problems(cfg) == []
    # a local checkpoint's duplicate: the message names the key that lists it and the fix that fits it
    cfg["pruning"]["shortgpt_layers"] = [2]
    assert config_problems(cfg) == [
        "pruning.shortgpt_layers: 2 duplicates variant shortgpt-s0.30 on model demo (both remove 2 of 6 layers); "
        "drop one, or give model demo its own list (models.demo.shortgpt_layers)"
    ]
    demo["shortgpt_layers"] = [1, 2, 6]
    assert config_problems(cfg) == [
        "models.demo.shortgpt_layers: 2 duplicates variant shortgpt-s0.30 on model demo (both remove 2 of 6 layers); "
        "drop it",
        "models.demo.shortgpt_layers: 6 would remove every layer of model demo (6 layers, at most 5 can go); use 1..5",
    ]
    demo["shortgpt_layers"] = []  # none for this model, whatever the grid's list
    assert "shortgpt-n2" not in variants(cfg, "demo") and config_problems(cfg) == []
    # without the method the lists give nothing: each one set is named
    cfg["pruning"]["methods"] = ["wanda"]
    demo["shortgpt_layers"] = [1]
    assert config_problems(cfg) == [
        "pruning.shortgpt_layers: set, but 'shortgpt' is not in pruning.methods; add it",
        "models.demo.shortgpt_layers: set, but 'shortgpt' is not in pruning.methods; add it",
        "models.other.shortgpt_layers: set, but 'shortgpt' is not in pruning.methods; add it",
    ]
    # a model's own list alone gives ShortGPT variants: no "gives no variant" error
    cfg["pruning"].update(methods=["shortgpt"], sparsities=[], shortgpt_layers=[])
    del cfg["models"]["other"]
    assert config_problems(cfg) == [] and variants(cfg) == ["dense", "shortgpt-n1"]
    # a model left with no variant at all is named (its results would be silently empty)
    cfg["models"]["other"] = {"path": "org/other"}
    cfg["pruning"]["include_dense"] = False
    assert config_problems(cfg) == [
        "models.other: its grid is empty (no dense, no pruned variant); list models.other.shortgpt_layers, set "
        "pruning.include_dense: true or list sparsities"
    ]
    # the generate jobs see the model without it: a new count reruns none of the model's generations
    assert generation_settings(demo) == {k: v for k, v in demo.items() if k != "shortgpt_layers"}


def test_sections_whose_keys_all_have_defaults_may_be_left_out():
    """calibration, capture, influence, grading and resources default to {} filled with their keys' defaults (a
    magnitude-uniform grid reads no calibration, yet the schema used to require the section)."""
    cfg = {
        "models": {"m": {"path": "org/model"}},
        "benchmarks": {"demo": {}},
        "pruning": {"methods": ["magnitude"], "allocations": ["uniform"], "sparsities": [0.5]},
        "generation": {"budgets": [16], "seeds": [7]},
    }
    validate(cfg, SCHEMA)
    assert cfg["calibration"]["n_samples"] == 128 and cfg["capture"]["batch_size"] == 8
    assert cfg["grading"]["timeout_s"] > 0 and cfg["influence"]["n_train"] > 0 and cfg["resources"] == {}


def test_context_length_follows_rope_scaling_as_vllm_derives_it():
    """The context the config checks hold budgets and window lengths to: a YaRN / linear / dynamic RoPE scaling
    extends max_position_embeddings (Qwen2.5's YaRN recipe: 32768 -> 131072); Llama 3.1's llama3 type is in it."""
    from prunetts.checkpoint import context_length

    assert context_length({"max_position_embeddings": 32768}) == 32768
    yarn = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert context_length({"max_position_embeddings": 32768, "rope_scaling": yarn}) == 131072
    assert (
        context_length({"max_position_embeddings": 4096, "rope_parameters": {"rope_type": "linear", "factor": 2}})
        == 8192
    )
    llama3 = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert context_length({"max_position_embeddings": 131072, "rope_scaling": llama3}) == 131072
    assert context_length({"max_position_embeddings": 40960, "rope_scaling": None}) == 40960
    assert context_length({}) is None and context_length({"max_position_embeddings": "4k"}) is None


def test_configs_the_new_checks_must_still_accept(tmp_path):
    """Valid setups near the length, tokenizer, text-file and resource checks: no config error."""
    import csv
    import json
    import shutil

    from snakemake.utils import validate

    from prunetts.config import check, schema_check
    from tests.workflow.helpers import DEMO_MODEL, micro_config

    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")

    def ok(cfg):
        cfg = json.loads(json.dumps(cfg))
        schema_check(cfg, schema)
        validate(cfg, schema)
        check(cfg)

    # magnitude / uniform reads no calibration windows: the default 2048-token seqlen beyond the demo's 512 is moot
    ok(micro_config(pruning={"methods": ["magnitude"], "allocations": ["uniform"]}, calibration={"seqlen": 2048}))
    # YaRN scaling serves 4 x 512 positions; vLLM's own max_model_len is where generation stops
    yarn = tmp_path / "yarn"
    shutil.copytree(DEMO_MODEL, yarn)
    cfg = json.loads((yarn / "config.json").read_text())
    scaling = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}
    (yarn / "config.json").write_text(json.dumps({**cfg, "rope_scaling": scaling}))
    ok(micro_config(models={"demo": {"path": str(yarn)}}, generation={"budgets": [16, 64, 1024]}))
    gen = {"budgets": [16, 64, 1024], "backend": "vllm", "vllm": {"max_model_len": 2048}}
    ok(micro_config(generation=gen))
    # a tokenizer that only tokenizer_config.json names (remote code, another vocabulary file name), as load_tokenizer
    # accepts
    remote = tmp_path / "remote-tok"
    remote.mkdir()
    for f in DEMO_MODEL.iterdir():
        if f.name not in ("tokenizer.json",):
            (remote / f.name).symlink_to(f)
    ok(micro_config(models={"demo": {"path": str(remote)}}, pruning={"methods": [], "sparsities": []}))
    # a CSV text past the csv module's default 128 KiB field limit; Slurm resource names the plugin reads
    texts = tmp_path / "long.csv"
    with texts.open("w", newline="") as f:
        csv.writer(f).writerows([["text"], ["word " * 40_000], ["a second text"]])
    resources = {"generate": {"cluster": "gpu-cluster", "tasks_per_node": 1, "mpi": "pmix", "slurm_cluster": "c"}}
    ok(micro_config(calibration={"source": str(texts)}, resources=resources))


def test_four_decimal_sparsities_up_to_the_range_ends_name_variants():
    """The 4-decimal rule (``fits_variant_id``, the config's and the CLI's) takes every 4-decimal sparsity, the
    range ends 0.0001 and 0.9999 included; a fifth decimal is refused."""
    from prunetts.config import config_problems, fits_variant_id

    assert all(fits_variant_id(s) for s in (0.0001, 0.1234, 0.0625, 0.9999))
    assert not any(fits_variant_id(s) for s in (0.00001, 0.12345, 0.99999))
    # within 1e-12 of a 4-decimal number, but that number is 0 or 1: the ids would read s0.00 and s1.00
    assert not any(fits_variant_id(s) for s in (1e-13, 1 - 1e-13))
    cfg = validated_demo()
    cfg["pruning"].update(methods=["magnitude"], allocations=["uniform"], sparsities=[0.0001, 0.1234, 0.9999])
    assert config_problems(cfg) == []
    assert variants(cfg) == [
        "dense",
        "magnitude-uniform-s0.0001",
        "magnitude-uniform-s0.1234",
        "magnitude-uniform-s0.9999",
    ]


def test_resource_names_a_typo_or_a_case_away_are_named_and_the_read_ones_pass():
    """A resource name one typo away from a read one (spelling, or only its case) gets the name meant, with the unit
    of a megabyte resource; the names Snakemake and the Slurm plugin read, and a custom resource that is no near miss
    (a pool the local scheduler counts), pass."""
    from prunetts.config import config_problems

    cfg = validated_demo()
    cfg["resources"] = {"generate": {"MEM_MB": 64000, "runtim": 60}, "prune": {"mem_gb": 64}}
    unread = "not a resource Snakemake or the Slurm executor reads; did you mean"
    assert config_problems(cfg) == [
        f"resources.generate.MEM_MB: {unread} 'mem_mb' (in megabytes: 64 GB = 64000)?",
        f"resources.generate.runtim: {unread} 'runtime'?",
        f"resources.prune.mem_gb: {unread} 'mem_mb' (in megabytes: 64 GB = 64000)?",
    ]
    read = {"clusters": "c1", "cluster": "c2", "qos": "high", "constraint": "a100", "gpu_model": "a100"}
    cfg["resources"] = {"generate": {**read, "gpu_mem": 1}}  # gpu_mem: 0.75 alike to gpu_model, below the cutoff
    assert config_problems(cfg) == []


def _checked(cfg: dict) -> str | None:
    """The config error of ``cfg`` after the schema's defaults (what common.smk runs), or None."""
    import json

    from prunetts.config import schema_check

    cfg = json.loads(json.dumps(cfg))
    try:
        schema_check(cfg, SCHEMA)
        validate(cfg, SCHEMA)
        check(cfg)
    except ConfigError as e:
        return str(e)
    return None


def test_lengths_are_held_to_the_context_only_where_the_grid_reads_them():
    """The demo model serves 512 positions: a calibration seqlen or LayerIF max_len up to 512 fits; beyond, it is an
    error where the grid reads calibration windows (Wanda, and OWL's or ShortGPT's dense capture) or LayerIF texts
    (an unstructured method under layerif), and moot elsewhere; budgets are held to the model's context under
    transformers, which reads no generation.vllm option."""
    from tests.workflow.helpers import micro_config

    assert _checked(micro_config(calibration={"seqlen": 512}, influence={"max_len": 512})) is None
    assert "calibration.seqlen: 513 tokens exceed" in _checked(micro_config(calibration={"seqlen": 513}))
    shortgpt = {"methods": ["shortgpt"], "allocations": ["uniform"]}
    assert "calibration.seqlen: 1024" in _checked(micro_config(pruning=shortgpt, calibration={"seqlen": 1024}))
    owl = {"methods": ["magnitude"], "allocations": ["owl"]}
    assert "calibration.seqlen: 1024" in _checked(micro_config(pruning=owl, calibration={"seqlen": 1024}))
    # a dense-only grid reads no windows, whatever allocations it lists
    dense_only = {"methods": [], "sparsities": [], "allocations": ["uniform", "owl", "layerif"]}
    assert _checked(micro_config(pruning=dense_only, calibration={"seqlen": 1024})) is None
    # LayerIF texts: only an unstructured method under layerif reads them
    uniform = {"methods": ["magnitude"], "allocations": ["uniform"]}
    assert _checked(micro_config(pruning=uniform, influence={"max_len": 600})) is None
    shortgpt_layerif = {"methods": ["shortgpt"], "allocations": ["uniform", "layerif"]}
    assert _checked(micro_config(pruning=shortgpt_layerif, influence={"max_len": 600})) is None
    # generation.vllm.max_model_len is the engine's context only under vLLM
    gen = {"budgets": [16, 64, 1024], "backend": "transformers", "vllm": {"max_model_len": 2048}}
    assert "generation.budgets: the largest budget 1024" in _checked(micro_config(generation=gen))


def test_text_files_are_looked_at_where_the_grid_reads_them_with_the_field_and_key_that_read_them(tmp_path):
    """The first-record look at a local text file: the calibration texts where the grid reads windows or LayerIF's
    pool (no training source), never where nothing reads them; an influence file with influence.text_field (not the
    calibration's), named as the fix; an unreadable first record is one line too."""
    from tests.workflow.helpers import micro_config

    body = tmp_path / "body.jsonl"
    body.write_text('{"body": "a text"}\n')
    layerif = {"methods": ["magnitude"], "allocations": ["layerif"]}
    problem = _checked(micro_config(pruning=layerif, calibration={"source": str(body)}))
    assert problem.startswith("calibration.source: ") and "no 'text' field" in problem
    uniform = {"methods": ["magnitude"], "allocations": ["uniform"]}
    assert _checked(micro_config(pruning=uniform, calibration={"source": str(body)})) is None
    problem = _checked(micro_config(calibration={"text_field": "body"}, influence={"train_source": str(body)}))
    assert problem.startswith("influence.train_source: ") and "set the text field (influence.text_field)" in problem
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text('{"text": "a text"\n')
    problem = _checked(micro_config(calibration={"source": str(garbled)}))
    assert problem.startswith("calibration.source: ") and "line 1 is not valid JSON" in problem


def test_model_checks_that_depend_on_the_grid_and_the_delimiters(tmp_path):
    """The architecture check is the pruning's (a dense-only grid evaluates any model_type); the stop-token check
    takes the model's own delimiters; an empty per-model ShortGPT list without the method is no error."""
    import json

    from prunetts.config import config_problems
    from tests.workflow.helpers import DEMO_MODEL, micro_config

    other = tmp_path / "mistral"
    other.mkdir()
    for f in DEMO_MODEL.iterdir():
        if f.name != "config.json":
            (other / f.name).symlink_to(f)
    (other / "config.json").write_text(json.dumps({**json.loads((DEMO_MODEL / "config.json").read_text()),
                                                   "model_type": "mistral"}))  # fmt: skip
    dense_only = {"methods": [], "sparsities": []}
    assert _checked(micro_config(models={"demo": {"path": str(other)}}, pruning=dense_only)) is None
    assert "is model_type 'mistral'" in _checked(micro_config(models={"demo": {"path": str(other)}}))
    # GPT-2 counts its layers as n_layer: named as the architecture (not a broken config), and dense-only still runs
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 6, "n_embd": 96}))
    problem = _checked(micro_config(models={"demo": {"path": str(other)}}))
    assert problem == (
        f"models.demo.path: {other} is model_type 'gpt2'; pruning supports qwen2, qwen3, llama (pruning.methods: [] "
        "evaluates it dense only)"
    )
    assert _checked(micro_config(models={"demo": {"path": str(other)}}, pruning=dense_only)) is None
    (other / "config.json").write_text(json.dumps({"model_type": "qwen3", "hidden_size": 96}))
    problem = _checked(micro_config(models={"demo": {"path": str(other)}}))
    assert (
        problem
        == f"models.demo.path: {other}/config.json has no num_hidden_layers >= 1; restore the checkpoint's config"
    )
    no_think = tmp_path / "no-think"
    no_think.mkdir()
    for f in DEMO_MODEL.iterdir():
        if f.name != "tokenizer.json":
            (no_think / f.name).symlink_to(f)
    text = (DEMO_MODEL / "tokenizer.json").read_text()
    (no_think / "tokenizer.json").write_text(text.replace('"</think>"', '"</thinking>"'))
    assert _checked(micro_config(models={"demo": {"path": str(no_think)}})) is None  # s1 stops on <|im_start|>
    problem = _checked(micro_config(models={"demo": {"path": str(no_think), "delimiters": "qwen3"}}))
    assert problem.startswith("models.demo.delimiters: delimiters qwen3") and "use delimiters: s1" in problem
    cfg = validated_demo()
    cfg["pruning"]["methods"] = ["wanda"]
    cfg["models"]["demo"]["shortgpt_layers"] = []
    assert config_problems(cfg) == []


def test_one_line_per_mistake_and_hub_text_revisions_and_the_graders_fixed_time():
    """A grid left empty by another mistake gets that mistake's line only; 's1k@' names no revision as 'c4@' does;
    without the journal only generate's retry time grows (grade's stays bounded by its per-answer timeouts)."""
    from prunetts.config import config_problems, rule_resources

    cfg = validated_demo()
    cfg["pruning"].update(include_dense=False, methods=[])
    assert config_problems(cfg) == [
        "pruning.sparsities: set, but pruning.methods is empty; list methods (e.g. [wanda]) or drop them"
    ]
    cfg = validated_demo()
    cfg["calibration"]["source"] = "s1k@"
    assert config_problems(cfg) == ["calibration.source: s1k@ names no revision; write s1k@<commit sha>, or s1k"]
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    no_journal = {**paper, "generation": {**paper["generation"], "journal": False}}
    assert rule_resources(no_journal, "grade")["runtime"] == rule_resources(paper, "grade")["runtime"] == 60


def test_context_length_of_dynamic_and_linear_scaling_and_a_yarn_config_already_extended():
    """Dynamic scaling extends the context as linear does; linear scales max_position_embeddings even where the
    config also names an original length; YaRN scales its original length, not a max_position_embeddings that
    already holds the extended context."""
    from prunetts.checkpoint import context_length

    assert context_length({"max_position_embeddings": 4096, "rope_scaling": {"type": "dynamic", "factor": 2.0}}) == 8192
    linear = {"rope_type": "linear", "factor": 2.0, "original_max_position_embeddings": 2048}
    assert context_length({"max_position_embeddings": 4096, "rope_scaling": linear}) == 8192
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert context_length({"max_position_embeddings": 131072, "rope_scaling": yarn}) == 131072


def test_owl_settings_that_must_or_may_push_a_layer_past_one():
    """On the demo's 6 layers OWL's most-pruned layer gets S + 2 lambda / 6 to S + 10 lambda / 6 by the outlier
    ratios: beyond 1 at the low end is a config error before any job, at the high end a warning."""
    from prunetts.config import config_problems, owl_range_warnings

    cfg = validated_demo()
    cfg["pruning"].update(methods=["wanda"], allocations=["uniform", "owl"], sparsities=[0.2, 0.9, 0.97])
    cfg["pruning"]["owl"]["lambda"] = 0.1
    assert config_problems(cfg) == [
        "pruning.owl.lambda: OWL at sparsity 0.97 and lambda 0.1 gives some layer of the 6 a sparsity of at least "
        "1.0033 > 1 for any outlier ratios that are not all equal; use a lambda of at most 0.0180 (never above 1) or "
        "a lower sparsity (model demo)"
    ]
    assert owl_range_warnings(cfg) == [
        "warning: model demo: OWL at sparsity 0.9 and lambda 0.1 may give a layer of the 6 a sparsity above 1 (up to "
        "1.0667, by the outlier ratios): the allocation then stops after the capture; a lambda of at most 0.0600 "
        "cannot; set pruning.owl.lambda"
    ]
    cfg["calibration"]["seqlen"] = 1024  # beyond the demo's 512: both mistakes in one pass, not one per rerun
    problems = config_problems(cfg)
    assert len(problems) == 2 and problems[0].startswith("calibration.seqlen: 1024 tokens exceed model demo's")
    assert problems[1].startswith("pruning.owl.lambda: OWL at sparsity 0.97")
    cfg["calibration"]["seqlen"] = 256
    cfg["pruning"]["allocations"] = ["uniform"]
    assert config_problems(cfg) == [] and owl_range_warnings(cfg) == []
    cfg["pruning"].update(methods=["shortgpt"], allocations=["owl"], sparsities=[0.2])
    assert owl_range_warnings(cfg) == []


def test_inert_settings_and_path_spellings_leave_the_jobs_params_as_they_were():
    """From a rerun review: editing a setting nothing reads reran expensive jobs (``ignore_str`` with the "Wait"
    extension off: every generation; ``calibration.text_field`` for the demo source: the calibration, capture and
    every prune; ``influence.text_field`` without influence files: the influence), and "./models/m/" for "models/m"
    reran the whole grid and missed the cache. The params hold the schema's default in place of an inert value, so
    existing results keep their params."""
    from prunetts.benchmarks import with_defaults
    from prunetts.checkpoint import model_ref
    from prunetts.config import INERT_AS, calibration_settings, generation_settings, influence_settings

    cfg = validated_demo()
    props = yaml.safe_load(Path(SCHEMA).read_text())["properties"]
    model_props = props["models"]["additionalProperties"]["properties"]
    assert INERT_AS == {
        "ignore_str": model_props["ignore_str"]["default"],
        "text_field": props["calibration"]["properties"]["text_field"]["default"],
    }
    assert props["influence"]["properties"]["text_field"]["default"] == INERT_AS["text_field"]

    demo = cfg["models"]["demo"]
    assert generation_settings({**demo, "ignore_str": "Hmm"}) == generation_settings(demo)
    assert generation_settings({**demo, "path": "./resources/demo-qwen3/"})["path"] == "resources/demo-qwen3"
    assert generation_settings({**demo, "num_ignore": 2, "ignore_str": "Hmm"})["ignore_str"] == "Hmm"
    cal = cfg["calibration"]
    assert calibration_settings({**cal, "text_field": "body"}) == calibration_settings(cal) == cal
    on_file = {**cal, "source": "./data/texts.jsonl"}
    assert calibration_settings({**on_file, "text_field": "body"}) == {
        **cal,
        "source": "data/texts.jsonl",
        "text_field": "body",
    }
    inf = cfg["influence"]
    assert influence_settings({**inf, "text_field": "trajectory"}) == influence_settings(inf) == inf
    traces = influence_settings({**inf, "train_source": "traces/./t.jsonl", "text_field": "trajectory"})
    assert traces["train_source"] == "traces/t.jsonl" and traces["text_field"] == "trajectory"

    assert (
        model_ref("./resources/demo-qwen3/", None) == model_ref("resources/demo-qwen3", None) == "resources/demo-qwen3"
    )
    assert model_ref("Qwen/Qwen3-8B", "abc") == "Qwen/Qwen3-8B@abc"
    assert with_defaults("math500", {"source": "./data/m.jsonl/"})["source"] == "data/m.jsonl"


def test_a_local_benchmark_file_its_loader_cannot_read_stops_the_config_check(tmp_path):
    """From a rerun review: a MATH500 file with other fields passed the check; the calibration and allocation jobs
    ran, then prepare_benchmark failed (on Slurm, possibly after GPU jobs started). Now its one line comes first."""
    from tests.conftest import bench_file
    from tests.workflow.helpers import micro_config

    other = tmp_path / "math.jsonl"
    other.write_text('{"question": "1+1?", "solution": "2"}\n')
    problem = _checked(micro_config(benchmarks={"math500": {"source": str(other)}}))
    assert problem is not None and problem.startswith("benchmarks.math500: record 0 of ") and "'problem'" in problem
    assert "\n" not in problem and "1+1" not in problem  # field names only, never a value
    real = {"math500": {"source": str(bench_file("math500.jsonl"))}}
    assert _checked(micro_config(benchmarks=real)) is None


def test_a_four_decimal_sparsity_round_trips_through_its_variant_id():
    """The config and the CLI allow sparsities of up to 4 decimals (fits_variant_id): their ids must parse back."""
    from prunetts.config import Variant, parse_variant

    for v in (
        Variant("wanda", "owl", 0.1234),
        Variant("magnitude", "uniform", 0.05),
        Variant("shortgpt", "shortgpt", 0.125),
    ):
        assert parse_variant(v.id) == v, v.id
