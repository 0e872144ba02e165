# Validation, wildcard constraints and input functions. No other logic lives in .smk files.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from prunetts.benchmarks import with_defaults
from prunetts.checkpoint import model_ref
from prunetts.config import (
    ConfigError,
    allocation_knobs,
    calibration_settings,
    canonical,
    check,
    error_lines,
    generation_settings,
    generation_trigger,
    influence_settings,
    parse_variant,
    schema_check,
)
from prunetts.config import rule_resources as config_rule_resources
from prunetts.config import (
    one_of,
    owl_range_warnings,
    scorers,
    shortgpt_duplicates,
    unpinned_sources,
    variants,
)
from prunetts.config import vllm_option_problems, wanda_setting
from prunetts.pruning.pruner import needs_calibration, needs_capture
from prunetts.versions import IMPL_VERSION

# A bad config stops here, before any job: one line per problem (key, what is allowed, the fix), no traceback.
SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
try:
    schema_check(config, SCHEMA)
    validate(config, SCHEMA)  # passes now; fills in the schema's defaults
    check(config)
except ConfigError as e:
    sys.exit(error_lines(e))
# the params below are slices of the config: key order must not be a rerun trigger
_sorted = canonical(config)
config.clear()
config.update(_sorted)
# once, in the invocation the user runs (not again in each job's own parse of the workflow)
if not (workflow.remote_exec or workflow.subprocess_exec):
    # misspelt vLLM options, when vLLM is importable here (else the generate job checks them)
    if problems := vllm_option_problems(config):
        sys.exit(error_lines(ConfigError("\n".join(problems))))
    for warning in [
        unpinned_sources(config),
        *shortgpt_duplicates(config),
        *owl_range_warnings(config),
    ]:
        if warning:
            print(warning, file=sys.stderr)

MODELS = list(config["models"])
BENCHES = list(config["benchmarks"])
SEEDS = config["generation"]["seeds"]
VARIANTS = variants(config)
# models with a pruned variant (they differ only when a model's shortgpt_layers is the grid's only source of variants)
PRUNED_MODELS = [m for m in MODELS if set(variants(config, m)) - {"dense"}]
SCORERS = scorers(config)
ENV = "../../envs/prunetts.yaml"
# rule generate runs in the vLLM environment when that backend is chosen (GPU only)
GEN_ENV = (
    "../../envs/vllm.yaml"
    if config["generation"].get("backend", "transformers") == "vllm"
    else ENV
)


# only what the config names: a target outside the grid is Snakemake's "no rule to produce", not an input function's
# KeyError traceback
wildcard_constraints:
    model=one_of(MODELS),
    variant=one_of(VARIANTS),
    bench=one_of(BENCHES),
    seed=one_of(SEEDS),
    scorer="owl|bi|layerif",


def rule_resources(rule):
    return config_rule_resources(config, rule)


def model_cfg(wildcards):
    return config["models"][wildcards.model]


def model_generation_cfg(wildcards):
    return generation_settings(model_cfg(wildcards))


def model_variants(wildcards):
    return variants(config, wildcards.model)


def sparsity_of(wildcards):
    """The realized-sparsity tables of one model's pruned variants."""
    return expand(
        "results/sparsity/model~{model}/variant~{variant}.parquet",
        model=wildcards.model,
        variant=[v for v in model_variants(wildcards) if v != "dense"],
    )


def base_model_path(wildcards):
    """The dense model as jobs receive it: a local directory, a hub id, or ``hub-id@revision`` when pinned. As the
    model_path param, a new revision reruns the model's jobs and keys new between-workflow cache entries, while an
    unpinned model's params stay what they were."""
    m = model_cfg(wildcards)
    return model_ref(m["path"], m.get("revision"))


def base_model_input(wildcards):
    """The dense checkpoint's files as inputs when it is a local directory (a hub id is not a file).

    Its files, not the directory: the between-workflow cache (--cache) hashes each input file's content and cannot
    hash a folder.
    """
    path = Path(base_model_path(wildcards))
    if not path.is_dir():
        return []
    return sorted(
        str(f) for f in path.iterdir() if f.is_file() and not f.name.startswith(".")
    )


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".gguf")


def base_model_tokenizer_input(wildcards):
    """The dense checkpoint's files without the weights, for the jobs that read only its tokenizer: new weights do
    not rerun them, and --cache does not hash 16 GB of weights to key them."""
    return [f for f in base_model_input(wildcards) if not f.endswith(WEIGHT_SUFFIXES)]


def local_files(*sources):
    """Config values naming local data files (benchmark sources, calibration and influence texts) as inputs: editing
    such a file reruns its readers, and the between-workflow cache hashes its content. A local dataset folder (a
    benchmark source, read by datasets.load_dataset) counts by the files in it, hidden ones aside. demo, c4 and hub
    ids are not files."""
    files = set()
    for s in sources:
        if not s:
            continue
        path = Path(s)
        if path.is_file():
            files.add(str(path))
        elif path.is_dir():
            files.update(
                str(f)
                for f in path.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
    return sorted(files)


def benchmark_options(wildcards):
    """The benchmark's options with its loader's defaults written in: shuffle_seed: 0 written out or left out is the
    same benchmark, so neither reruns prepare_benchmark (and every generation of it) nor misses the cache.
    """
    return canonical(
        with_defaults(wildcards.bench, config["benchmarks"][wildcards.bench])
    )


def benchmark_source_input(wildcards):
    return local_files(config["benchmarks"][wildcards.bench].get("source"))


def calibration_source_input(wildcards):
    return local_files(config["calibration"]["source"])


def influence_source_input(wildcards):
    """LayerIF reads its training source (the calibration texts when none is given) and its validation source."""
    i = config["influence"]
    return local_files(
        i.get("train_source") or config["calibration"]["source"], i.get("val_source")
    )


def influence_calibration(wildcards):
    """The calibration texts LayerIF reads when it has no training source, else None: only these two keys, so that
    editing the windows (n_samples, seqlen, mode, seed) neither reruns the influence job nor changes its cache key.
    """
    if config["influence"].get("train_source"):
        return None
    calibration = calibration_settings(config["calibration"])
    return {k: calibration[k] for k in ("source", "text_field")}


def checkpoint_output(path):
    """A pruned checkpoint directory as an output: temp() unless pruning.keep_checkpoints (then Snakemake deletes it
    once every job that reads it has finished)."""
    out = directory(path)
    return out if config["pruning"].get("keep_checkpoints", True) else temp(out)


def variant_model_path(wildcards):
    if wildcards.variant == "dense":
        return base_model_path(wildcards)
    return f"results/models/model~{wildcards.model}/variant~{wildcards.variant}"


def variant_model_input(wildcards):
    if wildcards.variant == "dense":
        return base_model_input(wildcards)
    return [variant_model_path(wildcards)]


def trust_remote_code(wildcards):
    return model_cfg(wildcards).get("trust_remote_code", False)


def layer_scores_input(wildcards):
    """owl: dense capture statistics; bi: capture per-layer cosines; layerif: influence scores."""
    capture = f"results/capture/model~{wildcards.model}"
    return {
        "owl": f"{capture}/linear_stats.parquet",
        "bi": f"{capture}/layer_stats.parquet",
        "layerif": f"results/influence/model~{wildcards.model}.parquet",
    }[wildcards.scorer]


def allocate_scores_input(wildcards):
    if wildcards.variant not in model_variants(wildcards):
        # the variant constraint is the union of the models' grids: another model's ShortGPT layer count
        raise WorkflowError(
            f"variant {wildcards.variant} is not in model {wildcards.model}'s grid "
            f"(models.{wildcards.model}.shortgpt_layers); request one of its variants or add it there"
        )
    scorer = parse_variant(wildcards.variant).scorer
    if scorer is None:
        return {}
    return {"scores": f"results/scores/model~{wildcards.model}/scorer~{scorer}.parquet"}


def allocation_options(wildcards):
    """Only OWL / LayerIF variants depend on their knobs (editing them reruns nothing else)."""
    return allocation_knobs(config, parse_variant(wildcards.variant).allocation)


def wanda_params(wildcards):
    """Only Wanda variants depend on the Wanda knobs, and each only on its own allocation's setting (editing them
    reruns nothing else)."""
    v = parse_variant(wildcards.variant)
    if v.method != "wanda":
        return {"mode": "sequential", "group": "row"}
    return wanda_setting(config["pruning"]["wanda"], v.allocation)


def prune_method_mode(wildcards):
    """The variant's method and its Wanda mode (the config's setting for its allocation)."""
    v = parse_variant(wildcards.variant)
    return v.method, wanda_setting(config["pruning"]["wanda"], v.allocation)["mode"]


def prune_inputs(wildcards):
    """Sequential Wanda reads calibration windows; one-pass Wanda the dense capture; magnitude/ShortGPT neither."""
    method, mode = prune_method_mode(wildcards)
    if needs_calibration(method, mode):
        return {"calibration": f"results/calibration/model~{wildcards.model}.parquet"}
    if needs_capture(method, mode):
        return {
            "capture": f"results/capture/model~{wildcards.model}/linear_stats.parquet"
        }
    return {}


def prune_capture_params(wildcards):
    """The capture settings as a rerun trigger of prune: only sequential Wanda's result depends on them (its
    calibration passes); the other methods score and write the stored values, so editing the batch size, device or
    dtype reruns only sequential Wanda. The script reads the run settings from config["capture"].
    """
    return config["capture"] if needs_calibration(*prune_method_mode(wildcards)) else {}


def generation_params(wildcards):
    """The generation settings as a rerun trigger: not the budgets and seeds (the generate job's params and
    wildcard), nor the run settings the samples do not depend on (a smaller batch or GPU memory share after an
    out-of-memory error reruns nothing; the script reads the settings from config["generation"]).
    """
    return generation_trigger(config["generation"])


def model_grades(model, benches):
    """The grades of one model on ``benches``: every variant of its grid (models differ in their ShortGPT layer
    counts) and seed."""
    return expand(
        "results/grades/model~{model}/variant~{variant}/bench~{bench}/seed~{seed}.parquet",
        model=model,
        variant=variants(config, model),
        bench=benches,
        seed=SEEDS,
    )


def grades_of(wildcards):
    """The grades of one (model, bench)."""
    return model_grades(wildcards.model, wildcards.bench)


def all_grades(wildcards):
    """The grades of the whole grid."""
    return [f for model in MODELS for f in model_grades(model, BENCHES)]
