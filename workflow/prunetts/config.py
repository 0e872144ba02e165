"""Typed views of the validated workflow config and the variant ids.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks shapes and enums; ``check`` adds the rules a schema
cannot express (sorted budgets, ...). Variant ids are self-describing slugs, one ``variant`` wildcard for every
pruning knob: ``dense``, ``wanda-owl-s0.20``, ``magnitude-uniform-s0.10``, ``shortgpt-s0.20`` (n = round(S*L)
layers), ``shortgpt-n3`` (exactly 3 layers).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from prunetts.calibration import hub_texts, text_field_problem
from prunetts.checkpoint import context_length, is_commit, looks_local, one_spelling, split_ref

UNSTRUCTURED_METHODS = ("magnitude", "wanda")
STRUCTURED_METHODS = ("shortgpt",)
ALLOCATIONS = ("uniform", "owl", "layerif")
DENSE = "dense"
# rules whose Slurm time limit stays the first attempt's on a retry: generate resumes from its journal (it needs only
# the time left; with `generation.journal: false` it starts over, so its limit grows as the others'), grade is bounded
# by its per-answer timeouts, and the Slurm profile's group runs the two as one job whose limit is the sum,
# which must stay within the partition's maximum (a larger request is refused or pends forever)
FIXED_RUNTIME_RULES = ("generate", "grade")


def rule_resources(config: dict, rule: str) -> dict:
    """Snakemake resources of one rule, from config["resources"] (on clusters gpu, mem_mb, runtime, ...).

    Numeric mem_mb and mem_mib are the first attempt's: a retry (--retries) gets attempt x as much, as the profiles'
    default-resources do; so does runtime, except for FIXED_RUNTIME_RULES. A profile's set-resources overrides these
    (README, Running on a cluster). The GPU rules ask for ``gpu: 1`` unless the config sets their ``gpu``, ``gpus``
    or ``gres`` or runs their stage on the CPU (``device: cpu``); ``gpus`` is passed on as ``gpu``.
    """
    resources = dict(config.get("resources", {}).get(rule, {}))
    if "gpus" in resources and "gpu" not in resources:
        # the Slurm executor plugin turns only gpu (or a gres) into sbatch --gpus, and the local profile's pool counts
        # only gpu: a bare gpus reached neither, and the job got no GPU
        resources["gpu"] = resources.pop("gpus")
    if rule in GPU_RULES and not _asks_for_gpu_setting(resources) and _stage_on_gpu(config, rule):
        # a GPU rule whose stage may run on a GPU gets one unless the config says otherwise: a job on a node without
        # one would crawl through a 7B model on the CPU (a job given a GPU refuses that: jobs.job_logging)
        resources["gpu"] = 1
        if rule == "prune" and config.get("capture", {}).get("device", "auto") == "auto":
            # only sequential Wanda runs forward passes; magnitude, one-pass Wanda and ShortGPT read and write files,
            # and on the CPU under auto (a job given gpu: 0); an explicit cuda device is every prune job's, so each
            # keeps its GPU
            wanda = config["pruning"].get("wanda", {})
            resources["gpu"] = lambda wildcards: int(prune_needs_gpu(wildcards.variant, wanda))
    resumes = rule != "generate" or config.get("generation", {}).get("journal", True)
    fixed = rule in FIXED_RUNTIME_RULES and resumes
    scaled = ("mem_mb", "mem_mib") if fixed else ("mem_mb", "mem_mib", "runtime")
    for key in scaled:
        if isinstance(resources.get(key), (int, float)):
            resources[key] = lambda wildcards, attempt, v=resources[key]: int(v * attempt)
    return resources


DEMO_TEST_PROBLEMS = 100  # benchmarks/demo.py samples this many test problems

# the rules that compute on a GPU, and the config section whose ``device`` each one runs on
GPU_RULES = {"capture": "capture", "prune": "capture", "influence": "influence", "generate": "generation"}


def prune_needs_gpu(variant_id: str, wanda: dict) -> bool:
    """Whether pruning ``variant_id`` computes on its device: only sequential Wanda runs the model (its layer-by-layer
    calibration passes); the other methods score and zero weights, work dominated by reading and writing files."""
    v = parse_variant(variant_id)
    return v.method == "wanda" and wanda_setting(wanda, v.allocation)["mode"] == "sequential"


def _asks_for_gpu_setting(resources: dict) -> bool:
    return "gpu" in resources or "gpus" in resources or "gres" in resources


def _stage_on_gpu(config: dict, rule: str) -> bool:
    section = config.get(GPU_RULES[rule], {})
    if rule == "generate" and section.get("backend", "transformers") == "vllm":
        return True  # vLLM runs on GPUs only
    return section.get("device", "auto") != "cpu"


def gpu_count(resources) -> int | None:
    """The GPUs a rule's or a job's resources (a mapping) ask for: the most of ``gpu``, ``gpus`` and the count ending
    a gpu ``gres`` entry ("gpu:a100:2,lscratch:10"), as any of them makes Slurm allocate GPUs; 0 for none, None when
    only a ``gpu``/``gpus`` that is not a number asks. Read by the config check (vLLM's parallelism) and by each job
    (jobs.job_logging: a job given a GPU refuses to run ``device: auto`` on the CPU)."""
    if not resources:
        return 0
    counts, unreadable = [], False
    for key in ("gpu", "gpus"):
        value = resources.get(key)
        if isinstance(value, str) and value.strip().isdigit():  # a profile's "2"
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            counts.append(value)
        elif value is not None:
            unreadable = True
    for entry in str(resources.get("gres") or "").split(","):
        parts = entry.strip().split(":")
        if parts[0] == "gpu":
            counts.append(int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1)
    return max(counts) if counts else None if unreadable else 0


# vllm.LLM arguments prunetts passes itself (generation/vllm_backend.py)
VLLM_SET_BY_PRUNETTS = ("model", "dtype", "trust_remote_code")
# vLLM load formats that read safetensors files only (its LoadConfig): its default, "auto", falls back to pickled
# .bin weights where a checkpoint has no safetensors, and "pt" / "npcache" read them; prunetts passes "safetensors"
VLLM_SAFETENSORS_FORMATS = ("safetensors", "fastsafetensors", "runai_streamer", "runai_streamer_sharded")
# generation settings the samples do not depend on (every sequence draws from its own seeded stream): neither a
# rerun trigger of the generate rule nor part of a generation journal's fingerprint
GENERATION_RUN_SETTINGS = ("batch_size", "journal")
# vllm.LLM arguments that place and schedule the work, as batch_size does for the transformers backend: lowering
# gpu_memory_utilization after an out-of-memory error must neither rerun finished jobs nor discard a journal
VLLM_RUN_SETTINGS = (
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "cpu_offload_gb",
    "enforce_eager",
    "block_size",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "disable_log_stats",
    "distributed_executor_backend",
    "load_format",  # how the same safetensors weights are read (VLLM_SAFETENSORS_FORMATS)
)


def generation_trigger(generation: dict) -> dict:
    """The generation settings the samples depend on: the generate rule's rerun trigger and the journal's
    fingerprint. Not the budgets and seeds (a param and a wildcard of their own), nor the run settings above; with
    the vLLM backend not ``device`` either (vLLM ignores it), and ``dtype: auto`` as the bf16 it means there; with
    the transformers backend not the ``vllm`` options (only the vLLM backend reads them)."""
    vllm = generation.get("backend", "transformers") == "vllm"
    out = {}
    for key, value in generation.items():
        if key in ("budgets", "seeds", *GENERATION_RUN_SETTINGS) or key == ("device" if vllm else "vllm"):
            continue
        if vllm and key == "dtype" and value == "auto":
            value = "bfloat16"  # what vLLM computes in for auto (vllm_backend.load_engine)
        if key == "vllm" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in VLLM_RUN_SETTINGS}
            if not value:  # only run settings: the same as none (the schema's default {})
                continue
        out[key] = value
    return out


def canonical(value):
    """``value`` with the keys of every mapping in it sorted, recursively. Snakemake compares params by their repr,
    which shows a dict's key order: a config must rerun nothing because its keys were written in another order or a
    default was written out (the schema appends the defaults it fills in)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


_VARIANT_RE = re.compile(r"^(?P<method>[a-z]+)-(?P<allocation>[a-z]+)-s(?P<sparsity>0\.\d{2,4})$")
_SHORTGPT_RE = re.compile(r"^shortgpt-(?:s(?P<sparsity>0\.\d{2,4})|n(?P<n>[1-9]\d*))$")


class ConfigError(ValueError):
    """A user mistake in the config: the message is one line naming the key and the fix."""


@dataclass(frozen=True)
class Variant:
    method: str  # "dense" or a pruning method
    allocation: str | None = None  # layer-wise allocation; "shortgpt" for layer removal
    sparsity: float = 0.0
    n_layers: int | None = None  # ShortGPT with an explicit layer count

    @property
    def id(self) -> str:
        if self.method == DENSE:
            return DENSE
        if self.method == "shortgpt":
            return f"shortgpt-n{self.n_layers}" if self.n_layers else f"shortgpt-s{format_sparsity(self.sparsity)}"
        return f"{self.method}-{self.allocation}-s{format_sparsity(self.sparsity)}"

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE

    @property
    def scorer(self) -> str | None:
        """The layer score the allocation needs."""
        return {"owl": "owl", "layerif": "layerif", "shortgpt": "bi"}.get(self.allocation)


def format_sparsity(s: float) -> str:
    text = f"{s:.4f}".rstrip("0")
    head, _, frac = text.partition(".")
    return f"{head}.{frac.ljust(2, '0')}"


def fits_variant_id(s: float) -> bool:
    """A sparsity a variant id names exactly: at most 4 decimals, within [0.0001, 0.9999] (the config's and the CLI's
    rule)."""
    return abs(round(s, 4) - s) <= 1e-12 and 0.0001 <= round(s, 4) <= 0.9999


def parse_variant(slug: str) -> Variant:
    if slug == DENSE:
        return Variant(DENSE)
    m = _SHORTGPT_RE.match(slug)
    if m:
        if m["n"]:
            return Variant("shortgpt", "shortgpt", n_layers=int(m["n"]))
        return Variant("shortgpt", "shortgpt", float(m["sparsity"]))
    m = _VARIANT_RE.match(slug)
    if not m or m["method"] not in UNSTRUCTURED_METHODS or m["allocation"] not in ALLOCATIONS:
        raise ConfigError(
            f"variant {slug!r}: not a known variant id (e.g. 'dense', 'wanda-owl-s0.20', 'shortgpt-s0.20')"
        )
    return Variant(m["method"], m["allocation"], float(m["sparsity"]))


def variants(config: dict, model: str | None = None) -> list[str]:
    """The variant ids of ``model``'s pruning grid, dense first; without ``model``, every model's (the union, in
    grid order). Models differ only in their ShortGPT layer-count variants (``shortgpt_layers_of``)."""
    if model is None:
        out: list[str] = []
        for name in config["models"]:
            out += [v for v in variants(config, name) if v not in out]
        return out or variants(config, "")  # no model: the shared grid, for the emptiness check
    p = config["pruning"]
    out = [DENSE] if p.get("include_dense", True) else []
    methods = p.get("methods", [])
    for method in methods:
        if method in STRUCTURED_METHODS:
            continue
        for allocation in p.get("allocations", []):
            for s in p.get("sparsities", []):
                out.append(Variant(method, allocation, s).id)
    if "shortgpt" in methods:
        out += [Variant("shortgpt", "shortgpt", s).id for s in p.get("sparsities", [])]
        out += [Variant("shortgpt", "shortgpt", n_layers=n).id for n in shortgpt_layers_of(config, model)]
    return out


# values of settings that nothing reads in the rest of the config, as the jobs' params hold them: the schema's
# default (which validated configs already hold), so that editing an inert setting reruns nothing and existing
# results keep their params and between-workflow cache keys
INERT_AS = {"ignore_str": "Wait", "text_field": "text"}


def generation_settings(model: dict) -> dict:
    """A model's config entry as its generate jobs see it (a rerun trigger): without ``shortgpt_layers``, which
    only adds variants, so listing another layer count reruns no generation of the model's existing variants;
    ``path`` in one spelling (``checkpoint.one_spelling``); and ``ignore_str`` as its default while ``num_ignore``
    is 0 (the "Wait" extension off: the string is never written; editing it reran every generation)."""
    out = {key: one_spelling(v) if key == "path" else v for key, v in model.items() if key != "shortgpt_layers"}
    if not out.get("num_ignore") and "ignore_str" in out:
        out["ignore_str"] = INERT_AS["ignore_str"]
    return out


def calibration_settings(calibration: dict) -> dict:
    """The ``calibration`` section as its jobs see it (a rerun trigger and a cache key): ``source`` in one spelling
    (``checkpoint.one_spelling``), and ``text_field`` as its default for the ``demo`` source, which reads no file
    (editing it reran the calibration and every job after it)."""
    out = {key: one_spelling(v) if key == "source" else v for key, v in calibration.items()}
    if out.get("source", "c4") == "demo" and "text_field" in out:
        out["text_field"] = INERT_AS["text_field"]
    return out


def influence_settings(influence: dict) -> dict:
    """The ``influence`` section as its job sees it: the sources in one spelling, and ``text_field`` as its default
    when neither ``train_source`` nor ``val_source`` is set (it names their files' column only; the calibration
    pool's is ``calibration.text_field``)."""
    sources = ("train_source", "val_source")
    out = {key: one_spelling(v) if key in sources else v for key, v in influence.items()}
    if not any(out.get(k) for k in sources) and "text_field" in out:
        out["text_field"] = INERT_AS["text_field"]
    return out


def shortgpt_layers_of(config: dict, model: str) -> list[int]:
    """The layer counts of ``model``'s ``shortgpt-n{k}`` variants: its own ``shortgpt_layers`` if set (one list per
    model, since a count can equal what a sparsity removes from one model and not another), else the grid's."""
    own = config["models"].get(model, {}).get("shortgpt_layers")
    return list(own if own is not None else config["pruning"].get("shortgpt_layers", []))


def scorers(config: dict) -> list[str]:
    """Layer scorers the grid needs."""
    needed = {parse_variant(v).scorer for v in variants(config)}
    return [s for s in ("owl", "bi", "layerif") if s in needed]


def wanda_setting(wanda: dict, allocation: str | None) -> dict:
    """Mode and comparison group of Wanda under one allocation: ``pruning.wanda`` with the allocation's entry of
    ``pruning.wanda.by_allocation`` on top (the paper's code prunes LayerIF allocations one-pass with the matrix as
    the comparison group)."""
    over = wanda.get("by_allocation", {}).get(allocation, {})
    return {key: over.get(key, wanda.get(key, default)) for key, default in (("mode", "sequential"), ("group", "row"))}


def allocation_knobs(config: dict, allocation: str | None) -> dict:
    """The config knobs an allocation reads (``pruning.owl`` / ``pruning.layerif``); none for the others, so editing
    them reruns only the variants they apply to."""
    return config["pruning"].get(allocation, {}) if allocation in ("owl", "layerif") else {}


def prune_settings(config: dict, variant: str) -> dict:
    """The settings behind a pruned checkpoint beyond its variant id, as ``prunetts_prune.json`` records them (a
    ``prunetts prune`` checkpoint records its flags): the allocation's knobs (OWL; LayerIF with its influence
    settings) and, where the method or the allocation read data derived from the calibration windows, the calibration
    and capture settings. Read from the config when the checkpoint is written: the rules' params already rerun every
    job that depends on them, so they are the settings the checkpoint's inputs were made with."""
    v = parse_variant(variant)
    out: dict = {}
    if v.allocation in ("owl", "layerif"):
        out[v.allocation] = allocation_knobs(config, v.allocation)
    influence = influence_settings(config.get("influence", {}))
    if v.scorer == "layerif":
        out["influence"] = influence
    # Wanda reads the windows (sequential) or the dense capture (one-pass); OWL's and BI's scores come from the capture
    reads_capture = v.method == "wanda" or v.scorer in ("owl", "bi")
    if reads_capture or (v.scorer == "layerif" and not influence.get("train_source")):  # influence texts: that pool
        out["calibration"] = calibration_settings(config["calibration"])
    if reads_capture:
        # the dense capture's settings (its dtype rounds the statistics), or those sequential Wanda's passes ran with
        out["capture"] = config["capture"]
    return out


def check(config: dict) -> None:
    """Semantic checks beyond the JSON schema (run after it, on a config with defaults filled in); raises
    ``ConfigError`` with one line per problem."""
    problems = config_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))


def config_problems(config: dict) -> list[str]:
    """Every semantic problem, one line each: ``<key>: <what is wrong>; <how to fix it>``."""
    out = []
    budgets = config["generation"]["budgets"]
    if list(budgets) != sorted(set(budgets)):
        out.append(f"generation.budgets: {budgets} is not strictly increasing; sort it, drop repeats (e.g. [16, 32])")
    p = config["pruning"]
    sparsities = p.get("sparsities", [])
    if len({format_sparsity(s) for s in sparsities}) != len(sparsities):
        out.append(f"pruning.sparsities: {sparsities} has duplicates (after rounding to 4 decimals); list each once")
    for s in sparsities:
        if not fits_variant_id(s):
            out.append(f"pruning.sparsities: {s} has more than 4 decimals (variant ids keep 4); round it, e.g. 0.125")
    out += _silent_method_problems(p, [shortgpt_layers_of(config, name) for name in config["models"]])
    taken = sorted(set(config["generation"].get("vllm") or {}) & set(VLLM_SET_BY_PRUNETTS))
    if taken:
        out.append(
            f"generation.vllm: {', '.join(taken)} is set by prunetts (the model's path and trust_remote_code, "
            "generation.dtype); remove it"
        )
    out += _resource_name_problems(config.get("resources") or {})
    vllm = config["generation"].get("vllm") or {}
    load_format = vllm.get("load_format", "safetensors")
    if load_format not in VLLM_SAFETENSORS_FORMATS:
        out.append(
            f"generation.vllm.load_format: {load_format!r} may load pickled weights (prunetts loads safetensors "
            f"only); use one of {', '.join(VLLM_SAFETENSORS_FORMATS)}, or leave it out (safetensors)"
        )
    temperature = config["generation"].get("temperature", 1.0)
    if config["generation"].get("backend") == "vllm" and temperature > 2:
        # vLLM's SamplingParams refuses it: every generate job would fail after loading its model
        out.append(
            f"generation.temperature: {temperature} is above 2, which vLLM refuses (its range is [0, 2]); "
            "lower it or use backend: transformers"
        )
    elif config["generation"].get("backend") == "vllm" and 0 < temperature < 0.01:
        # vLLM's SamplingParams raises it to 0.01 with a log line: the artifacts would record a temperature that
        # did not run
        out.append(
            f"generation.temperature: {temperature} would run at 0.01 under vLLM (it raises any temperature in "
            "(0, 0.01) to 0.01); set 0.01, or 0 for greedy decoding"
        )
    if config["generation"].get("backend") == "vllm" and isinstance(vllm, dict):
        need = 1
        for key in ("tensor_parallel_size", "pipeline_parallel_size"):
            need *= vllm.get(key, 1) if isinstance(vllm.get(key, 1), int) else 1
        have = gpu_count(rule_resources(config, "generate"))
        if have is not None and need > have:
            out.append(
                f"generation.vllm: tensor_parallel_size x pipeline_parallel_size = {need} GPUs, but the generate rule "
                f"asks for {have}; set resources.generate.gpu: {need} (a profile's set-resources overrides it)"
            )
    if not out and not variants(config):
        out.append("pruning: the grid is empty; set include_dense: true or list methods and sparsities")
    elif not out:
        # models differ only in their ShortGPT layer counts: one can be left with nothing (its results silently empty)
        out += [
            f"models.{name}: its grid is empty (no dense, no pruned variant); list models.{name}.shortgpt_layers, "
            "set pruning.include_dense: true or list sparsities"
            for name in config["models"]
            if not variants(config, name)
        ]
    if "shortgpt" not in p.get("methods", []):
        keys = ["pruning"] * bool(p.get("shortgpt_layers"))
        keys += [f"models.{name}" for name, m in config["models"].items() if m.get("shortgpt_layers")]
        out += [f"{key}.shortgpt_layers: set, but 'shortgpt' is not in pruning.methods; add it" for key in keys]
    layerif = p.get("layerif", {})
    if "layerif" in p.get("allocations", []):
        problem = layerif_range_problem(layerif.get("e1", 0.05), layerif.get("e2", 0.40))
        if problem:
            out.append(f"pruning.layerif: {problem}")
    if layerif.get("window", 5) % 2 == 0:
        out.append(
            f"pruning.layerif.window: {layerif.get('window')} is even; Savitzky-Golay needs an odd window "
            "(the paper's code silently skips smoothing for an even one), e.g. 5"
        )
    if layerif.get("polyorder", 2) >= layerif.get("window", 5):
        out.append(
            f"pruning.layerif.polyorder: {layerif.get('polyorder')} must be below window = {layerif.get('window')} "
            "(Savitzky-Golay); lower polyorder or widen the window"
        )
    from prunetts.benchmarks import options_of

    for name, opts in config["benchmarks"].items():
        extra = sorted(set(opts or {}) - {"source", "limit", *options_of(name)})
        if extra:
            known = ("limit",) if name == "demo" else ("source", "limit", *options_of(name))  # demo: no source
            out.append(
                f"benchmarks.{name}: {', '.join(extra)} is not an option of {name} (its options: {', '.join(known)});"
                " remove it"
            )
        source = (opts or {}).get("source")
        if name == "demo" and source is not None:
            # the demo task is generated (benchmarks/demo.py): a source would be silently ignored
            out.append(
                f"benchmarks.demo.source: {source}, but the demo task is built in and reads no source; remove it, or "
                "give the file to a real benchmark (math500, aime24, amc23, gpqa_diamond)"
            )
            source = None
        problems = _source_problems(f"benchmarks.{name}.source", source, hub_ok=True)
        if not problems and not extra and source and Path(source).is_file():
            problems = _benchmark_file_problems(name, source, opts)
        out += problems
        if "revision" not in extra and (opts or {}).get("revision") and _local_source(source):
            out.append(f"benchmarks.{name}.revision: pins a hub dataset, but source {source} is local; drop revision")
        limit = (opts or {}).get("limit")  # null (the schema's default) = all
        if name == "demo" and limit is not None and limit > DEMO_TEST_PROBLEMS:
            out.append(
                f"benchmarks.demo.limit: {opts['limit']}, but the demo task has {DEMO_TEST_PROBLEMS} test problems; "
                f"use at most {DEMO_TEST_PROBLEMS}"
            )
    cal, influence = config["calibration"], config.get("influence", {})
    # the calibration texts: the windows, and LayerIF's pool without a training source
    windows, layerif = _text_uses(config)
    sources = [("calibration.source", cal.get("source", "c4"), cal.get("text_field", "text"), windows or (
        layerif and not influence.get("train_source")))]  # fmt: skip
    sources += [(f"influence.{k}", influence.get(k), influence.get("text_field", "text"), layerif) for k in (
        "train_source", "val_source")]  # fmt: skip
    for key, source, field, used in sources:
        problems = _source_problems(key, source, hub_ok=False)
        if not problems and used and source and Path(source).is_file():
            # a wrong text field or an empty file: one line now, not in the job while others run beside it
            setting = key.split(".")[0] + ".text_field"
            problems = [f"{key}: {x}" for x in [text_field_problem(source, field, setting)] if x]
        out += problems
    for name, m in config["models"].items():
        # a model that cannot be read blocks the rest; a grid that does not fit it does not hide its context checks
        out += _model_problems(name, m, p) or (_context_problems(name, m, config) + _grid_fit_problems(name, m, p))
    return out


# resource names Snakemake, its local scheduler or the Slurm executor plugin read (others pass through unread)
KNOWN_RESOURCES = (
    "mem", "mem_mb", "mem_mib", "disk", "disk_mb", "disk_mib", "runtime", "tmpdir", "gpu", "gpus", "gres",
    "gpu_model", "cpus_per_task", "cpus_per_gpu", "tasks", "tasks_per_gpu", "nodes", "mem_mb_per_cpu",
    "mem_mib_per_cpu", "slurm_partition", "slurm_account", "slurm_extra", "constraint", "qos", "clusters",
    "cluster", "slurm_cluster", "tasks_per_node", "mpi",
)  # fmt: skip


def _resource_name_problems(resources: dict) -> list[str]:
    """A resource name one typo away from a known one (mem_mbb, runtim, slurm_partiton): Snakemake passes it on
    unread, and the job gets the profile's default (8 GB) instead, to be killed once its model is loaded."""
    import difflib

    out = []
    for rule, res in resources.items():
        for name in res if isinstance(res, dict) else ():
            close = [k for k in KNOWN_RESOURCES if k == name.lower()] or difflib.get_close_matches(
                name, KNOWN_RESOURCES, n=1, cutoff=0.8
            )
            if name not in KNOWN_RESOURCES and close:
                unit = " (in megabytes: 64 GB = 64000)" if close[0].endswith("_mb") else ""
                out.append(
                    f"resources.{rule}.{name}: not a resource Snakemake or the Slurm executor reads; did you mean "
                    f"{close[0]!r}{unit}?"
                )
    return out


def _context_problems(name, m: dict, config: dict) -> list[str]:
    """Lengths beyond a local checkpoint's context (``max_position_embeddings``), which its jobs would otherwise run
    at positions the model was never trained on (calibration, LayerIF), or stop on after the pruning (budgets)."""
    if not _is_local(str(m["path"])):
        return []
    ctx = context_length(_local_config(str(m["path"])) or {})
    if ctx is None:
        return []
    out = []
    largest = config["generation"]["budgets"][-1]
    where = f"model {name}'s context of {ctx} tokens (config.json: max_position_embeddings, RoPE scaling)"
    gen = config["generation"]
    engine_len = (gen.get("vllm") or {}).get("max_model_len") if gen.get("backend") == "vllm" else None
    if isinstance(engine_len, int) and not isinstance(engine_len, bool) and engine_len > 0:
        # the engine's own context is where generation stops (vLLM checks it against the model's)
        limit, limit_where = engine_len, f"generation.vllm.max_model_len = {engine_len}"
    else:
        limit, limit_where = ctx, where
    if largest >= limit:
        out.append(
            f"generation.budgets: the largest budget {largest} leaves no room for the prompt and an answer in "
            f"{limit_where}; use budgets below it"
        )
    windows, layerif = _text_uses(config)
    lengths = [("calibration.seqlen", config["calibration"].get("seqlen", 2048))] if windows else []
    lengths += [("influence.max_len", config.get("influence", {}).get("max_len", 512))] if layerif else []
    for key, n in lengths:
        if n > ctx:
            out.append(f"{key}: {n} tokens exceed {where}; use at most {ctx}")
    return out


def _text_uses(config: dict) -> tuple[bool, bool]:
    """(calibration windows, LayerIF texts): whether the grid reads them. Windows: Wanda, and the dense capture of
    OWL and ShortGPT; LayerIF: an unstructured method under the layerif allocation."""
    p = config["pruning"]
    methods, allocations = p.get("methods", []), p.get("allocations", [])
    windows = "wanda" in methods or "shortgpt" in methods or ("owl" in allocations and bool(methods))
    return windows, "layerif" in allocations and any(m in UNSTRUCTURED_METHODS for m in methods)


def one_of(names) -> str:
    """A regular expression matching exactly one of ``names`` (a wildcard constraint)."""
    return "|".join(re.escape(str(n)) for n in names)


def _silent_method_problems(p: dict, layer_lists: list[list[int]]) -> list[str]:
    """A listed method that yields no variant, and sparsities no method uses: the grid would silently lack them
    (``layer_lists``: each model's ShortGPT layer counts)."""
    methods, sparsities = p.get("methods", []), p.get("sparsities", [])
    unstructured = ", ".join(m for m in methods if m in UNSTRUCTURED_METHODS)
    out = []
    if unstructured and not sparsities:
        out.append(f"pruning.sparsities: empty, so {unstructured} give no variant; list sparsities, e.g. [0.1, 0.2]")
    if unstructured and not p.get("allocations", ["uniform"]):
        out.append(f"pruning.allocations: empty, so {unstructured} give no variant; list e.g. [uniform, owl, layerif]")
    if "shortgpt" in methods and not sparsities and not any(layer_lists):
        out.append(
            "pruning.methods: shortgpt gives no variant; list pruning.sparsities, pruning.shortgpt_layers or a model's "
            "shortgpt_layers"
        )
    if sparsities and not methods:
        out.append("pruning.sparsities: set, but pruning.methods is empty; list methods (e.g. [wanda]) or drop them")
    return out


def shortgpt_duplicates(config: dict) -> list[str]:
    """Warning lines for sparsities that make ShortGPT remove the same number of a local model's layers (one model
    pruned and evaluated under two names; the sparsities also serve the unstructured methods, so no error), and for
    those whose round(S x L) is 0, so that ShortGPT removes one layer, far more than S."""
    from prunetts.pruning.shortgpt import rounded_up_note

    p = config["pruning"]
    if "shortgpt" not in p.get("methods", []):
        return []
    out = []
    for name, m in config["models"].items():
        n_layers = local_layer_count(str(m["path"]))
        if n_layers is None:
            continue
        by_n = _shortgpt_variants_by_layers(p.get("sparsities", []), n_layers)
        out += [
            f"warning: {' and '.join(vs)} remove the same {n} of model {name}'s {n_layers} layers: the same model, "
            f"pruned and evaluated {len(vs)} times"
            for n, vs in by_n.items()
            if len(vs) > 1
        ]
        out += [
            f"warning: model {name}: {note}" for s in p.get("sparsities", []) if (note := rounded_up_note(s, n_layers))
        ]
    return out


def _owl_ranges(pruning: dict, n_layers: int) -> list[tuple[str | None, str | None]]:
    """``owl_range_problem`` of each sparsity the grid prunes with OWL allocation (none without OWL or unstructured
    methods)."""
    from prunetts.pruning.allocation import owl_range_problem

    if "owl" not in pruning.get("allocations", ["uniform"]) or not {"magnitude", "wanda"} & set(pruning["methods"]):
        return []
    lam = pruning.get("owl", {}).get("lambda", 0.08)
    return [owl_range_problem(s, lam, n_layers) for s in pruning.get("sparsities", [])]


def owl_range_warnings(config: dict) -> list[str]:
    """Warning lines for OWL sparsities that may give a local model's layer a sparsity above 1 (known only once its
    outlier ratios are: the allocate job then stops; those certain to are config errors)."""
    out = []
    for name, m in config["models"].items():
        n_layers = local_layer_count(str(m["path"]))
        if n_layers is not None:
            out += [
                f"warning: model {name}: {w}; set pruning.owl.lambda"
                for _, w in _owl_ranges(config["pruning"], n_layers)
                if w
            ]
    return out


def _shortgpt_variants_by_layers(sparsities, n_layers: int) -> dict[int, list[str]]:
    """The ShortGPT sparsity variants of a model with ``n_layers`` layers, by the number of layers each removes."""
    from prunetts.pruning.shortgpt import n_for_sparsity

    by_n: dict[int, list[str]] = {}
    for s in sparsities:
        by_n.setdefault(n_for_sparsity(s, n_layers), []).append(f"shortgpt-s{format_sparsity(s)}")
    return by_n


def local_layer_count(path: str, config: dict | None = None) -> int | None:
    """``num_hidden_layers`` from a local checkpoint's config.json (``config``: that file, already read); None when
    it cannot be read."""
    try:
        return int((config if config is not None else _local_config(path))["num_hidden_layers"])
    except (ValueError, KeyError, TypeError):
        return None


def _local_config(path: str) -> dict | None:
    """A local checkpoint's config.json; None when it cannot be read."""
    import json
    from pathlib import Path

    try:
        return json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return None


def vllm_option_problems(config: dict) -> list[str]:
    """One line per ``generation.vllm`` key that is no ``vllm.EngineArgs`` field, when vLLM is importable here (the
    Snakemake process); otherwise the generate job checks them (``vllm_backend.load_engine``)."""
    import dataclasses
    import difflib

    g = config["generation"]
    options = g.get("vllm") or {}
    if g.get("backend") != "vllm" or not options:
        return []
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return []
    fields = [f.name for f in dataclasses.fields(EngineArgs)]
    out = []
    for key in sorted(set(options) - set(fields)):
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        out.append(f"generation.vllm.{key}: not an option of vllm.EngineArgs; {hint}use its field names")
    return out


def unpinned_sources(config: dict) -> str | None:
    """One warning line naming the models and benchmarks read from the hub without a full commit sha (a branch, tag
    or short sha moves or resolves only online), or None."""
    from prunetts.benchmarks import options_of

    def name(key: str, opts: dict) -> str | None:
        revision = opts.get("revision")
        if is_commit(revision):
            return None
        return f"{key} (revision {revision!r} is not a 40-character commit sha)" if revision else key

    models = [name(key, m) for key, m in config["models"].items() if not _is_local(m["path"])]
    benches = [
        name(key, opts or {})
        for key, opts in config["benchmarks"].items()
        if "revision" in options_of(key)  # the loaders that read a hub dataset by default
        and not _local_source((opts or {}).get("source"))
    ]
    windows, layerif = _text_uses(config)  # a dense-only grid reads no texts
    train = config.get("influence", {}).get("train_source")
    texts = [
        f"{hub_texts(source)} in {entry}" if entry else None
        for key, source, read in (
            # LayerIF's training texts default to the calibration texts
            ("calibration", config["calibration"].get("source", "c4"), windows or (layerif and not train)),
            ("influence.train_source", config.get("influence", {}).get("train_source"), layerif),
            ("influence.val_source", config.get("influence", {}).get("val_source"), layerif),
        )
        if read and hub_texts(source)
        for entry in [name(key, {"revision": split_ref(source)[1]})]
    ]
    named = (("models", models), ("benchmarks", benches), ("texts:", texts))
    groups = [(kind, [n for n in names if n]) for kind, names in named]
    if not any(names for _, names in groups):
        return None
    what = "; ".join(f"{kind} {', '.join(names)}" for kind, names in groups if names)
    return (
        f"prunetts warning: read from the Hugging Face hub without a pinned commit: {what}. Each job loads what the "
        "hub serves when it downloads (job logs name the commit), and --cache keys do not change when the hub does; "
        "for reproducible runs set revision: <commit sha> on each, and source: c4@<commit sha> (s1k@<commit sha>; "
        "config/README.md)"
    )


def layerif_range_problem(e1: float, e2: float) -> str | None:
    """The LayerIF range rule (shared by the workflow config and the CLI)."""
    if e1 >= e2:
        return (
            f"e1 = {e1} must be below e2 = {e2} (the per-layer sparsity range [e1, e2]); swap them "
            "(direction: layerif_paper reverses the mapping)"
        )
    return None


# ---- user-facing validation: schema errors as one line each, paths ------------------------------------------------
SLUG_HINT = "letters, digits, '_', '.', '-', starting with a letter or digit"
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def _is_local(path: str) -> bool:
    """A path that exists here or is meant as one (not a hub id)."""
    return os.path.exists(path) or looks_local(path)


def _local_source(source: str | None) -> bool:
    """A benchmark source that is a local file or folder (None: the benchmark's default hub dataset)."""
    return bool(source) and (_is_local(source) or source.endswith(_FILE_SUFFIXES))


def _benchmark_file_problems(name: str, source: str, opts: dict) -> list[str]:
    """A local benchmark file its loader cannot read (a field missing or null, a bad line, no records, a repeated id):
    the prepare_benchmark job's own line, now, before any job runs (on Slurm that job may start after GPU jobs).
    Benchmark files are small (MATH500: 500 records), so the whole file is read, as the job reads it."""
    from prunetts import benchmarks
    from prunetts.records import InputFileError

    options = {k: v for k, v in opts.items() if k not in ("source", "limit", "revision")}
    try:
        benchmarks.load(name, source, **options)
    except InputFileError as e:
        text = str(e)
        return [text if text.startswith(f"benchmarks.{name}") else f"benchmarks.{name}.source: {text}"]
    return []


def _source_problems(key: str, source, hub_ok: bool) -> list[str]:
    """A data source: 'demo', 'c4', 's1k', a dataset id (``hub_ok``) or an existing file."""
    from pathlib import Path

    if source is None or source == "demo":
        return []
    if name := hub_texts(source):
        return (
            [] if source != f"{name}@" else [f"{key}: {name}@ names no revision; write {name}@<commit sha>, or {name}"]
        )
    if source.startswith("~"):
        return [f"{key}: {source}: '~' is not expanded here; write the full path"]
    p = Path(source)
    if p.is_file():
        if p.suffix not in _FILE_SUFFIXES:
            return [f"{key}: {source} is not a {'/'.join(_FILE_SUFFIXES)} file; convert it to JSON Lines"]
        return []
    if p.is_dir():
        if hub_ok:
            return []  # a local dataset folder, read by datasets.load_dataset
        return [f"{key}: {source} is a directory; point it at a {'/'.join(_FILE_SUFFIXES)} file"]
    if hub_ok and p.suffix not in _FILE_SUFFIXES and not looks_local(source):
        return []  # a Hugging Face dataset id
    files = "/".join(_FILE_SUFFIXES)
    allowed = (
        f"an existing {files} file or a dataset id like org/name"
        if hub_ok
        else f"'demo', 'c4', 's1k' or a {files} file"
    )
    return [f"{key}: {source} does not exist; give {allowed} (relative paths start at the working directory)"]


def _model_problems(name, m: dict, pruning: dict) -> list[str]:
    from pathlib import Path

    key = f"models.{name}.path"
    path = str(m["path"])
    if path.startswith("~"):
        return [f"{key}: {path}: '~' is not expanded here; write the full path"]
    p = Path(path)
    if m.get("revision") and _is_local(path):
        return [
            f"models.{name}.revision: {m['revision']} pins a hub id, but path {path} is local (its files are what "
            "gets loaded); drop revision, or give the hub id as path"
        ]
    if not p.exists():
        if looks_local(path):
            return [f"{key}: {path} does not exist; give a local checkpoint directory or a hub id like org/name"]
        return []  # a hub id: resolved (and checked) by the first job that loads it
    if not p.is_dir():
        return [f"{key}: {path} is a file; give the checkpoint directory (config.json + *.safetensors)"]
    if not (p / "config.json").is_file():
        return [f"{key}: {path} has no config.json; point it at a Hugging Face checkpoint directory"]
    if not any(p.glob("*.safetensors")):
        return [
            f"{key}: {path} has no *.safetensors weights (pickled .bin/.pt files are never loaded); convert it "
            "with save_pretrained(..., safe_serialization=True)"
        ]
    model_config = _local_config(path)
    if not isinstance(model_config, dict):
        return [f"{key}: {path}/config.json is unreadable or not a JSON object; restore the checkpoint's config"]
    from prunetts.checkpoint import LAYER_RE, CheckpointError, tensor_shapes

    try:  # the safetensors headers only (no torch): a missing or truncated shard now, not in every job that loads it
        shapes = tensor_shapes(p)
    except CheckpointError as e:
        return [f"{key}: {e}"]
    if pruning.get("methods"):  # every capture / prune job reads the layers through prunetts.models.Arch
        from prunetts.models import SUPPORTED_MODEL_TYPES

        model_type = model_config.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:  # before the layer count, which GPT-2 e.g. calls n_layer
            return [
                f"{key}: {path} is model_type {model_type!r}; pruning supports {', '.join(SUPPORTED_MODEL_TYPES)} "
                "(pruning.methods: [] evaluates it dense only)"
            ]
        n_layers = local_layer_count(path, model_config)
        if n_layers is None or n_layers < 1:
            return [f"{key}: {path}/config.json has no num_hidden_layers >= 1; restore the checkpoint's config"]
        stored = {int(match[1]) for name in shapes if (match := LAYER_RE.match(name))}
        if stored and len(stored) != n_layers:  # the rest of a size mismatch is checked by the first job (torch)
            return [
                f"{key}: {path}/config.json has num_hidden_layers {n_layers}, the weights hold {len(stored)} decoder "
                "layers; the config does not match the weights: restore the checkpoint's own config.json"
            ]
    from prunetts.models import TOKENIZER_FILES  # what load_tokenizer asks for

    if not any((p / f).is_file() for f in TOKENIZER_FILES):  # every generation job loads it, after the pruning
        return [
            f"{key}: {path} has no tokenizer ({' / '.join(TOKENIZER_FILES)}); save the model's tokenizer there "
            "(tokenizer.save_pretrained)"
        ]
    from prunetts.generation.prompts import chat_template_problem, stop_token_problem

    if no_template := chat_template_problem(p):  # every generation job would stop on it
        return [f"{key}: {no_template}"]
    if no_stop := stop_token_problem(p, m.get("delimiters", "s1")):  # so would they on this, after the pruning
        return [f"models.{name}.delimiters: {no_stop}"]
    return []


def _grid_fit_problems(name, m: dict, pruning: dict) -> list[str]:
    """Pruning settings a readable local model's layer count rules out: OWL sparsities past 1, ShortGPT removing
    every layer or duplicating a variant (none for a hub id, whose config the first job reads)."""
    import math

    n_layers = local_layer_count(str(m["path"])) if pruning.get("methods") else None
    if n_layers is None or n_layers < 1:
        return []
    out = [f"pruning.owl.lambda: {e} (model {name})" for e, _ in _owl_ranges(pruning, n_layers) if e]
    if "shortgpt" not in pruning.get("methods", []):
        return out
    from prunetts.pruning.shortgpt import n_for_sparsity

    most = n_layers - 1  # ShortGPT never removes the last layer
    top = math.floor((most + 0.5) / n_layers * 100 - 1e-9) / 100  # the largest 2-decimal S with round(S*L) <= most
    for s in pruning.get("sparsities", []):
        n = n_for_sparsity(s, n_layers)
        if n > most:
            out.append(
                f"pruning.sparsities: {s} makes ShortGPT remove {n} of model {name}'s {n_layers} layers (at most "
                f"{most}: the last layer stays); use a sparsity of at most {top:.2f} or drop shortgpt"
            )
    by_n = _shortgpt_variants_by_layers(pruning.get("sparsities", []), n_layers)
    own = m.get("shortgpt_layers") is not None
    key = f"models.{name}.shortgpt_layers" if own else "pruning.shortgpt_layers"
    for n in m["shortgpt_layers"] if own else pruning.get("shortgpt_layers", []):
        if n > most:
            out.append(
                f"{key}: {n} would remove every layer of model {name} ({n_layers} layers, at most {most} can go); "
                f"use 1..{most}"
            )
        elif n in by_n:
            out.append(
                f"{key}: {n} duplicates variant {by_n[n][0]} on model {name} (both remove {n} of {n_layers} layers); "
                + ("drop it" if own else f"drop one, or give model {name} its own list (models.{name}.shortgpt_layers)")
            )
    return out


def _strict_validator(schema: dict):
    """The schema's validator with ``integer`` meaning a whole number written without a decimal point (jsonschema
    accepts 7.0, which would become the path ``seed~7.0``)."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)(schema)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


_TYPE_WORDS = {  # JSON type -> (what it is, how to write it)
    "integer": ("a whole number", "digits without a decimal point, e.g. 7"),
    "number": ("a number", "e.g. 0.5"),
    "string": ("a string", 'text, e.g. "name"'),
    "boolean": ("true or false", "true or false"),
    "array": ("a list", "a list, e.g. [a, b]"),
    "object": ("a mapping", "a mapping, e.g. {key: value}"),
    "null": ("null", "null"),
}


def _bounds(schema: dict) -> str:
    parts = []
    for word, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if word in schema:
            parts.append(f"{sym} {schema[word]}")
    return " and ".join(parts)


def _describe(schema: dict) -> str:
    d = schema.get("description")
    return f" ({d})" if d else ""


def _close(value, allowed) -> list[str]:
    """The allowed value ``value`` was probably meant as: ignoring case first ('OWL', 'MATH500'), then by spelling."""
    import difflib

    by_case = [str(a) for a in allowed if str(a).lower() == str(value).lower()]
    return by_case or difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)


def _schema_message(error, schema_root: dict) -> str | None:
    import difflib

    key, kind, inst, sch = _key(error.absolute_path), error.validator, error.instance, error.schema
    in_names = "propertyNames" in error.relative_schema_path
    if in_names:
        if key == "models":
            return (
                f"models: name {inst!r} is not allowed: model names become output paths "
                f"(results/.../model~NAME/...), so use only {SLUG_HINT}; rename it"
            )
        allowed = error.validator_value if kind == "enum" else []
        close = _close(inst, allowed)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{key}: {inst!r} is not known{hint}; use one of: {', '.join(map(str, allowed))}"
    if kind == "additionalProperties":
        props = list(sch.get("properties", {}))
        lines = []
        for extra in sorted(set(inst) - set(props), key=str):
            close = difflib.get_close_matches(str(extra), props, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            where = f"{key}.{extra}" if error.absolute_path else str(extra)
            lines.append(f"{where}: unknown key; {hint}allowed keys: {', '.join(props)}")
        return "\n".join(lines)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in inst]
        lines = []
        for k in missing:
            where = f"{key}.{k}" if error.absolute_path else k
            close = difflib.get_close_matches(k, [str(x) for x in inst], n=1)
            if close and close[0] not in sch.get("properties", {}):
                continue  # reported as an unknown key with this suggestion
            lines.append(f"{where}: missing required key; add it{_describe(sch['properties'].get(k, {}))}")
        return "\n".join(lines) or None
    if kind == "enum":
        close = _close(inst, error.validator_value)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{key}: {inst!r} is not allowed{hint}; use one of: {', '.join(map(str, error.validator_value))}"
    if kind == "type":
        want = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        what = " or ".join(_TYPE_WORDS.get(w, (w, w))[0] for w in want)
        fix = " or ".join(_TYPE_WORDS.get(w, (w, w))[1] for w in want if w != "null")
        return f"{key}: {inst!r} is not {what}; write {fix}{_describe(sch)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{key}: {inst!r} is out of range; it must be {_bounds(sch)}{_describe(sch)}"
    if kind == "minItems":
        return f"{key}: needs at least {error.validator_value} item(s); list them, e.g. {key.split('.')[-1]}: [...]"
    if kind == "uniqueItems":
        return f"{key}: {inst} has duplicates (each would be the same variant or job); list each value once"
    if kind == "minProperties":
        return f"{key}: is empty; add at least one entry (see config/README.md)"
    if kind == "pattern":
        return f"{key}: {inst!r} does not have the expected form{_describe(sch)}; correct it"
    if kind == "minLength":
        return f"{key}: is empty; give a value{_describe(sch)}"
    return f"{key}: {error.message}"


def _non_finite(value, path=()) -> list[str]:
    """A line for every NaN or infinite number in the config (YAML's ``.nan``, ``.inf``): JSON Schema's bounds compare
    false against NaN and let it through, to the jobs (a NaN OWL lambda allocated sparsity 0 to every layer)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{_key(path)}: {value} is not a finite number; give a number"]
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _non_finite(v, (*path, k))]
    if isinstance(value, list):
        return [line for i, v in enumerate(value) for line in _non_finite(v, (*path, i))]
    return []


def schema_problems(config, schema: dict) -> list[str]:
    """Every JSON-schema violation as one line ``<key>: <what is wrong>; <what is allowed / how to fix>``, and every
    number that is not finite."""
    errors = sorted(
        _strict_validator(schema).iter_errors(config),
        key=lambda e: ([str(x) for x in e.absolute_path], str(e.validator)),
    )
    # a value of the wrong type also fails its range or form: the type is the one problem to name
    typed = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    lines = []
    for e in errors:
        if e.validator != "type" and tuple(e.absolute_path) in typed:
            continue
        msg = _schema_message(e, schema)
        for line in (msg or "").splitlines():
            if line not in lines:
                lines.append(line)
    return lines + _non_finite(config)


def load_schema(path) -> dict:
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


def schema_check(config, schema_path) -> None:
    """Raise ``ConfigError`` with one line per schema problem (call before Snakemake's ``validate``, which then only
    fills in the defaults)."""
    problems = schema_problems(config, load_schema(schema_path))
    if problems:
        raise ConfigError("\n".join(problems))


def error_lines(error: ConfigError) -> str:
    """The text a user sees for a config error: one line per problem, no traceback."""
    return "\n".join(f"config error: {line}" for line in str(error).splitlines())
