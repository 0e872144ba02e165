"""``prunetts`` command line: prune a model without running the workflow (same library code as the workflow).

    prunetts prune --model PATH_OR_HF_ID --method {magnitude,wanda,shortgpt} --allocation {uniform,owl,layerif}
                   --sparsity 0.2 --calibration FILE_OR_c4 --out DIR  [knobs, see --help]

Writes a normal HF checkpoint (safetensors + tokenizer) to DIR, plus ``prunetts_sparsity.parquet`` (target and
realized sparsity per prunable linear) and ``prunetts_prune.json`` (arguments, layer scores, global sparsity).
With no separate influence data, LayerIF scores training and validation texts drawn as disjoint splits of the
calibration texts, so the command above is enough for every method and allocation.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
from pathlib import Path

log = logging.getLogger("prunetts")


def _whole(low: int):
    """argparse type: a whole number >= ``low`` (the workflow schema's bound for the same knob)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} must be >= {low}")
        return value

    return parse


def _number(low: float, high: float | None = None, low_open: bool = True, high_open: bool = True):
    """argparse type: a finite number in the interval from ``low`` to ``high`` (open or closed ends)."""
    import math

    left, right = "(" if low_open else "[", ")" if high_open else "]"
    interval = f"in {left}{low}, {high}{right}" if high is not None else f"{'>' if low_open else '>='} {low}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        inside = math.isfinite(value) and (value > low if low_open else value >= low)
        if high is not None:
            inside = inside and (value < high if high_open else value <= high)
        if not inside:
            raise argparse.ArgumentTypeError(f"{text} must be {interval}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors: the problem and where to read more, no usage block (subparsers
    are built with the parent's class, so ``prunetts prune`` gets it too)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and its ``prune`` subparser."""
    from prunetts import __version__

    ap = _Parser(prog="prunetts", description="Prune reasoning LLMs (prunetts).")
    ap.add_argument("--version", action="version", version=f"prunetts {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prune",
        help="prune one model and save an HF checkpoint",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, help="local HF checkpoint directory (safetensors) or hub id")
    p.add_argument(
        "--revision",
        help="hub ids only: the commit sha (or tag, branch) to load; default: the hub's default branch (OUT/"
        "prunetts_prune.json records the commit it resolved to)",
    )
    p.add_argument(
        "--method",
        required=True,
        choices=["magnitude", "wanda", "shortgpt"],
        help="magnitude = |W| per matrix; wanda = |W| x input norm (needs calibration); shortgpt = remove whole layers",
    )
    p.add_argument(
        "--allocation",
        default="uniform",
        choices=["uniform", "owl", "layerif"],
        help="layer-wise allocation (ignored by shortgpt)",
    )
    p.add_argument(
        "--sparsity", type=float, help="target sparsity in (0, 1); shortgpt removes max(1, round(S*L)) of the L layers"
    )
    p.add_argument("--shortgpt-layers", type=_whole(1), help="shortgpt: remove exactly this many layers instead")
    p.add_argument(
        "--calibration",
        default="c4",
        help="'c4' (c4@COMMIT_SHA pins the dataset), 's1k' (s1.1's reasoning traces; s1k@COMMIT_SHA), 'demo', or a "
        ".jsonl/.json/.parquet/.csv file of texts",
    )
    p.add_argument("--out", required=True, help="output checkpoint directory (must not exist or be empty)")
    g = p.add_argument_group("calibration")
    g.add_argument("--text-field", default="text", help="field of the texts in a JSON Lines / Parquet / CSV file")
    g.add_argument(
        "--calibration-mode",
        default="paper",
        choices=["paper", "pack"],
        help="paper = a random window inside each document longer than seqlen (Wanda); pack = concatenated texts",
    )
    g.add_argument("--n-samples", type=_whole(1), default=128, help="calibration windows")
    g.add_argument("--seqlen", type=_whole(8), default=2048, help="tokens per calibration window")
    g.add_argument("--seed", type=_whole(0), default=0, help="calibration draw (and LayerIF split)")
    g = p.add_argument_group("criteria and allocations")
    g.add_argument(
        "--wanda-mode",
        default="sequential",
        choices=["sequential", "one_pass"],
        help="sequential = the reference Wanda; the paper's code prunes LayerIF allocations one_pass",
    )
    g.add_argument(
        "--wanda-group",
        default="row",
        choices=["row", "matrix"],
        help="row = the reference Wanda; the paper's code uses matrix with LayerIF allocations",
    )
    g.add_argument("--owl-m", type=_number(0), default=7.0, help="OWL outlier threshold M (x the layer mean)")
    g.add_argument("--owl-lambda", type=_number(0, 0.5), default=0.08, help="OWL half-width of the sparsity range")
    g.add_argument(
        "--layerif-e1", type=_number(0, 1, False, False), default=0.05, help="LayerIF lowest per-layer sparsity"
    )
    g.add_argument(
        "--layerif-e2", type=_number(0, 1, False, False), default=0.40, help="LayerIF highest per-layer sparsity"
    )
    g.add_argument(
        "--layerif-direction",
        default="paper_code",
        choices=["paper_code", "layerif_paper"],
        help="paper_code = more influence, less pruning (TTS-Pruning); layerif_paper = the reverse",
    )
    g.add_argument(
        "--influence-train",
        help="texts to score for LayerIF: a file, 's1k' (s1.1's reasoning traces, s1k@COMMIT_SHA pinned), 'c4' or "
        "'demo'; none = the calibration texts",
    )
    g.add_argument(
        "--influence-val",
        help="LayerIF validation texts; none = held out from the training texts (a disjoint random split)",
    )
    g.add_argument(
        "--influence-text-field",
        help="field of the texts in --influence-train / --influence-val files; None: --text-field's",
    )
    g.add_argument("--n-train", type=_whole(1), default=300, help="LayerIF training texts")
    g.add_argument("--n-val", type=_whole(1), default=96, help="LayerIF validation texts")
    g.add_argument("--influence-max-len", type=_whole(8), default=512, help="tokens per LayerIF text (truncated)")
    g.add_argument("--projection-dim", type=_whole(0), default=4096, help="gradient sketch size (0 = exact)")
    g = p.add_argument_group("execution")
    g.add_argument("--device", default="auto", help="auto = cuda if available, else cpu; or cpu, cuda, cuda:N")
    g.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="compute precision of the calibration passes (auto = bfloat16 on GPU, float32 on CPU); the written "
        "checkpoint keeps each tensor's stored dtype",
    )
    g.add_argument("--batch-size", type=_whole(1), default=8, help="calibration windows per forward pass")
    g.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code")
    return ap, p


def _check(a) -> str | None:
    """The first user mistake visible in the arguments alone (one line), before anything expensive runs."""
    import os

    from prunetts.calibration import hub_texts
    from prunetts.checkpoint import local_path_problem, looks_local
    from prunetts.config import fits_variant_id

    if a.method == "shortgpt":
        if (a.sparsity is None) == (a.shortgpt_layers is None):
            return "shortgpt needs exactly one of --sparsity or --shortgpt-layers"
    elif a.sparsity is None:
        return f"--sparsity is required for {a.method}"
    if a.sparsity is not None and not 0 < a.sparsity < 1:
        return f"--sparsity {a.sparsity}: must be in (0, 1), e.g. 0.2"
    if a.sparsity is not None and not fits_variant_id(a.sparsity):
        # the workflow's rule: the variant id (and prunetts_prune.json) name the sparsity with 4 decimals
        return f"--sparsity {a.sparsity}: more than 4 decimals (the variant id keeps 4); round it, e.g. 0.125"
    if a.method != "shortgpt" and a.allocation == "layerif":
        from prunetts.config import layerif_range_problem

        problem = layerif_range_problem(a.layerif_e1, a.layerif_e2)
        if problem:
            return f"--layerif-e1/--layerif-e2: {problem}"
    out = Path(a.out).expanduser()
    if out.exists() and not out.is_dir():
        return f"--out {a.out}: is a file; give a new or empty directory"
    if out.is_dir() and any(out.iterdir()):
        held = sorted(p.name for p in out.iterdir())
        more = f" and {len(held) - 3} more" if len(held) > 3 else ""
        return f"--out {a.out}: exists and is not empty (holds {', '.join(held[:3])}{more}); choose a new directory"
    parent = next(p for p in [out, *out.parents] if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"--out {a.out}: cannot be created ({parent} is not a writable directory)"
    model = Path(a.model).expanduser()
    if model.is_dir() and not (model / "config.json").is_file():
        return f"--model {a.model}: no config.json there; give an HF checkpoint directory or a hub id"
    problem = local_path_problem(a.model)
    if problem:
        return f"--model {a.model}: {problem}"
    if a.revision and (model.exists() or looks_local(a.model)):
        return f"--revision {a.revision}: pins a hub id, but --model {a.model} is local; drop --revision"
    used = _used(a)
    for flag in ("calibration", "influence_train", "influence_val"):
        value = getattr(a, flag)
        if flag in used and value and value != "demo" and not hub_texts(value) and not Path(value).is_file():
            flag_name = flag.replace("_", "-")
            return f"--{flag_name} {value}: not 'c4', 's1k' (either @<commit sha>), 'demo' or an existing file"
    return None


# which knobs each method / allocation reads; a knob set to a non-default value outside them is reported as ignored
_WINDOWS = ("calibration", "text_field", "calibration_mode", "n_samples", "seqlen", "seed", "batch_size")
_OWL = ("owl_m", "owl_lambda")
_LAYERIF = (
    "layerif_e1",
    "layerif_e2",
    "layerif_direction",
    "influence_train",
    "influence_val",
    "n_train",
    "n_val",
    "influence_max_len",
    "projection_dim",
    "seed",
)


def _used(a) -> set[str]:
    """The flags (argparse dests) the chosen method and allocation read."""
    used = {"command", "model", "revision", "method", "out", "device", "dtype", "trust_remote_code", "sparsity"}
    files = a.influence_train is not None or a.influence_val is not None
    field_for_files = False  # --text-field names the influence files' field too
    if a.method == "shortgpt":
        used |= {"shortgpt_layers", *_WINDOWS}
    else:
        used.add("allocation")
        if a.method == "wanda":
            used |= {"wanda_mode", "wanda_group", *_WINDOWS}
        if a.allocation == "owl":
            used |= {*_OWL, *_WINDOWS}
        if a.allocation == "layerif":
            used |= set(_LAYERIF)
            if files:  # influence files: their own field
                used.add("influence_text_field")
            if a.influence_train is None:  # the calibration texts are the training pool
                used |= {"calibration", "text_field"}
            field_for_files = files and a.influence_text_field is None
            if field_for_files:
                used.add("text_field")
    if a.calibration == "demo" and not field_for_files:  # the demo texts have no field to choose
        used.discard("text_field")
    return used


def _ignored(a, prune: argparse.ArgumentParser) -> list[str]:
    """The flags given a non-default value that the chosen method and allocation do not read."""
    used = _used(a)
    return [
        "--" + dest.replace("_", "-")
        for dest, value in vars(a).items()
        if dest not in used and value != prune.get_default(dest)
    ]


def _preflight(a, v, needs_tokenizer: bool, hub: bool = False) -> tuple:
    """Checks that need the checkpoint's config (and a hub download), still before any calibration or model
    loading: ``(reader, tokenizer or None)``. ``hub``: ``--model`` was taken for a hub id before ``--out`` was created
    (``--out Qwen/Qwen3-8B-wanda`` creates a local ``Qwen/`` that must not turn ``Qwen/Qwen3-8B`` into a path)."""
    from prunetts.checkpoint import CheckpointError, Reader, context_length, free_space_problem
    from prunetts.models import (
        TOKENIZER_FILES,
        ModelError,
        check_weights,
        load_tokenizer,
        meta_model,
        model_type_problem,
        resolve_device,
    )
    from prunetts.pruning.shortgpt import n_for_sparsity, removal_problem, rounded_up_note

    resolve_device(a.device)  # e.g. cuda on a machine without one: one line now, not a kernel error later
    reader = Reader(a.model, a.revision, hub=hub)
    if problem := model_type_problem(reader.config.get("model_type")):
        raise ModelError(f"--model {a.model}: {problem}")
    # a config.json of another size than the weights: one line now, not a traceback after the calibration
    check_weights(reader.dir, meta_model(str(reader.dir), a.trust_remote_code)[1])
    n_layers = reader.config["num_hidden_layers"]
    if not hub:  # a hub id's was checked before its texts were read
        _check_owl_range(a, n_layers)
    if a.method == "shortgpt":
        n = a.shortgpt_layers or n_for_sparsity(a.sparsity, n_layers)
        problem = removal_problem(n, n_layers)
        if problem:
            raise ValueError(f"--shortgpt-layers/--sparsity: {problem}")
        if not a.shortgpt_layers and (note := rounded_up_note(a.sparsity, n_layers)):
            log.warning("%s (--sparsity)", note)
    ctx, used = context_length(reader.config), _used(a)
    for flag in ("seqlen", "influence_max_len"):  # positions the model was never trained on: nonsense statistics
        if ctx is not None and flag in used and getattr(a, flag) > ctx:
            raise ValueError(
                f"--{flag.replace('_', '-')} {getattr(a, flag)}: beyond --model {a.model}'s context of {ctx} tokens "
                f"(config.json: max_position_embeddings, RoPE scaling); use at most {ctx}"
            )
    # disk space for the output now, not after the calibration pass
    need = reader.tensor_bytes(list(reader.files))
    if a.method == "shortgpt":  # without its n largest removable layers (the last one never is)
        need -= sum(sorted((reader.tensor_bytes(reader.layer_names(i)) for i in range(n_layers - 1)), reverse=True)[:n])
    problem = free_space_problem(a.out, need)
    if problem:
        raise CheckpointError(f"--out {problem}")
    tok = load_tokenizer(str(reader.dir), trust_remote_code=a.trust_remote_code) if needs_tokenizer else None
    if not needs_tokenizer and not any((reader.dir / f).is_file() for f in TOKENIZER_FILES):
        log.warning(  # this method reads no text, but whoever generates with the output needs one
            "--model %s has no tokenizer (%s), so --out will have none either; save the model's tokenizer there "
            "before generating with it",
            a.model,
            " / ".join(TOKENIZER_FILES),
        )
    return reader, tok


def _check_owl_range(a, n_layers) -> None:
    """OWL settings that push a layer's sparsity past 1: an error where every unequal set of outlier ratios does, a
    warning where some do (known only after the capture)."""
    from prunetts.pruning.allocation import owl_range_problem

    if a.allocation != "owl" or a.method == "shortgpt" or not isinstance(n_layers, int) or n_layers < 1:
        return
    error, warning = owl_range_problem(a.sparsity, a.owl_lambda, n_layers)
    if error:
        raise ValueError(f"--owl-lambda/--sparsity: {error}")
    if warning:
        log.warning("%s (--owl-lambda)", warning)


def _influence_texts(a) -> tuple[list[str], list[str]]:
    """LayerIF's training and validation texts, read before the checkpoint is fetched (a hub id's weights: gigabytes),
    the calibration windows, the capture and the model load: a wrong file or field is one line now."""
    from prunetts.influence import influence_texts

    return influence_texts(
        a.influence_train,
        a.influence_val,
        a.influence_text_field or a.text_field,
        a.n_train,
        a.n_val,
        a.seed,
        calibration=(a.calibration, a.text_field),
    )


def _check_influence_texts(a, tok, train: list[str], val: list[str]) -> None:
    """A text too short for the next-token loss: one line naming the flag that gave it, before any model work."""
    from prunetts.influence import check_texts

    train_from = f"--influence-train {a.influence_train}" if a.influence_train else f"--calibration {a.calibration}"
    val_from = f"--influence-val {a.influence_val}" if a.influence_val else train_from
    check_texts(tok, train, val, a.influence_max_len, (train_from, val_from))


def run_prune(a, hub: bool = False) -> dict:
    from prunetts import artifacts
    from prunetts import capture as cap
    from prunetts import scores as sc
    from prunetts.calibration import load_texts, packed_windows, paper_windows
    from prunetts.checkpoint import hub_commit, prunable_modules_from_shapes, resolve, tensor_shapes
    from prunetts.config import Variant, local_layer_count
    from prunetts.models import resolve_device
    from prunetts.pruning.allocation import for_variant
    from prunetts.pruning.pruner import global_sparsity, needs_calibration, prune_checkpoint, sparsity_rows
    from prunetts.versions import package_versions

    if a.method == "shortgpt":
        v = Variant("shortgpt", "shortgpt", a.sparsity or 0.0, a.shortgpt_layers)
    else:
        v = Variant(a.method, a.allocation, a.sparsity)
    need_capture = v.allocation in ("owl", "shortgpt") or (a.method == "wanda" and a.wanda_mode == "one_pass")
    need_windows = need_capture or needs_calibration(a.method, a.wanda_mode)

    def read_texts():
        calibration = load_texts(a.calibration, a.text_field) if need_windows else None
        return calibration, _influence_texts(a) if v.allocation == "layerif" else None

    # the cheaper checks first: a local checkpoint's (architecture, tokenizer, layer count) before the text files are
    # read (a C4 download, a large file), but a wrong text file before a hub id's weights are fetched (gigabytes)
    if hub:
        resolve_device(a.device)  # a device this machine lacks: one line before a C4 download too
        # a mistyped or gated id, or a wrong revision, too: its files but the weights are megabytes
        files = resolve(a.model, a.revision, weights=False, hub=True)
        _check_owl_range(a, local_layer_count(str(files)))  # None where unreadable: Reader then says so
        texts, influence = read_texts()
    reader, tok = _preflight(a, v, needs_tokenizer=need_windows or v.allocation == "layerif", hub=hub)
    if not hub:
        texts, influence = read_texts()
    if influence:
        _check_influence_texts(a, tok, *influence)
    shapes = tensor_shapes(reader.dir)
    modules = prunable_modules_from_shapes(shapes)
    n_layers = reader.config["num_hidden_layers"]

    windows, stats, layer_stats = None, None, None
    if need_windows:
        make = paper_windows if a.calibration_mode == "paper" else packed_windows
        windows = make(texts, tok, a.n_samples, a.seqlen, a.seed)
        log.info("calibration: %d windows x %d tokens from %s", len(windows), a.seqlen, a.calibration)
    if need_capture:
        linear, layer_stats = cap.capture(
            str(reader.dir), windows, a.batch_size, a.device, a.dtype, a.trust_remote_code
        )
        stats = {k: s for k, (s, _) in linear.items()}

    layer_scores, influence_sizes = None, None
    if v.allocation == "owl":
        layer_scores = sc.owl_outlier_ratios(str(reader.dir), stats, a.owl_m)
    elif v.allocation == "shortgpt":
        layer_scores = sc.bi_scores([dict(layer=i, cos_mean=c) for i, c, _ in layer_stats])
    elif v.allocation == "layerif":
        from prunetts.influence import aggregate_positive, compute_influence
        from prunetts.models import load_model

        train, val = influence
        lm = load_model(str(reader.dir), a.dtype, a.device, a.trust_remote_code)
        influence_sizes = {"train": len(train), "val": len(val)}  # fewer than asked for a small corpus
        rows = compute_influence(lm, tok, train, val, a.influence_max_len, a.projection_dim, a.seed)
        del lm
        layer_scores = aggregate_positive(rows)
    options = {
        "owl": {"lambda": a.owl_lambda},
        "layerif": {"e1": a.layerif_e1, "e2": a.layerif_e2, "direction": a.layerif_direction},
    }.get(v.allocation, {})
    targets = for_variant(v, modules, layer_scores, options, n_layers)
    model_name = Path(a.model).name or a.model
    summary: dict = {}

    def side_files(records: list[dict]) -> None:
        """prunetts_sparsity.parquet and prunetts_prune.json, written before config.json (the mark of a complete
        checkpoint), so a run killed in between never leaves a checkpoint that loads without them."""
        artifacts.write("sparsity", sparsity_rows(model_name, v.id, records), Path(a.out) / "prunetts_sparsity.parquet")
        target, total = global_sparsity(records)
        used = _used(a)
        if a.sparsity is not None and v.method != "shortgpt" and target < a.sparsity - 1e-3:
            log.warning(
                "the allocation's target over the prunable linears is %.4f, below --sparsity %s", target, a.sparsity
            )
        if v.method != "shortgpt":
            _warn_if_short(records, shapes, total, target)
        summary.update(
            variant=v.id,
            arguments={k: val for k, val in vars(a).items() if k != "command"},
            resolved={  # what ran, where it differs from or adds to the arguments
                "model_dir": str(reader.dir.resolve()),
                # the exact weights: run again with --revision set to it
                "hub_commit": hub_commit(a.model, reader.dir),
                "out": str(Path(a.out).resolve()),
                # the texts read (null: the method and allocation read none of that flag's)
                **{
                    flag: _absolute(getattr(a, flag)) if flag in used else None
                    for flag in ("calibration", "influence_train", "influence_val")
                },
                "calibration_windows": len(windows) if windows else 0,
                "influence_texts": influence_sizes,
                "removed_layers": sorted({r["layer"] for r in records if r["target_sparsity"] == 1.0})
                if v.method == "shortgpt"
                else None,
            },
            versions=package_versions(),
            target_sparsity_prunable_linears=target,
            realized_sparsity_prunable_linears=total,
            layer_scores=_scores_json(layer_scores),
        )
        (Path(a.out) / "prunetts_prune.json").write_text(json.dumps(summary, indent=2) + "\n")

    prune_checkpoint(
        str(reader.dir),
        a.out,
        v.method,
        targets,
        stats=stats,
        windows=windows,
        wanda_mode=a.wanda_mode,
        wanda_group=a.wanda_group,
        batch_size=a.batch_size,
        device=a.device,
        dtype=a.dtype,
        trust_remote_code=a.trust_remote_code,
        before_config=side_files,
    )
    log.info(
        "%s: wrote %s (realized sparsity %.4f over the prunable linears)",
        v.id,
        a.out,
        summary["realized_sparsity_prunable_linears"],
    )
    return summary


def _absolute(source: str | None) -> str | None:
    """A calibration / influence source as run: a file as its absolute path, 'c4' or 'demo' as given."""
    return str(Path(source).expanduser().resolve()) if source and Path(source).expanduser().is_file() else source


def _scores_json(layer_scores: dict | None) -> dict:
    """Layer scores as plain JSON: {"layer": score} (OWL, BI), or {"layer": {"component": score}} (LayerIF)."""
    out: dict = {}
    for key, value in (layer_scores or {}).items():
        if isinstance(key, tuple):
            out.setdefault(str(key[0]), {})[str(key[1])] = value
        else:
            out[str(key)] = value
    return out


def _warn_if_short(records: list[dict], shapes: dict, total: float, target: float) -> None:
    """Warn when the masks pruned clearly less than allocated (e.g. inf/NaN scores, never among the smallest): more
    than 1% of the prunable weights short, beyond the per-row rounding (floor(d_in * s) in each row leaves up to one
    weight per row)."""

    if total == 0 and target > 0:  # e.g. --sparsity 0.0001 on rows of a few thousand weights
        log.warning(
            "nothing was pruned: a target of %.4f rounds down to 0 weights in every comparison group (each prunes "
            "floor(size x sparsity) weights: a row for Wanda, a matrix for Magnitude); raise --sparsity",
            target,
        )
        return

    def slack(r) -> float:  # the fraction of the linear that rounding may leave, plus the 1% margin
        return shapes[f"model.layers.{r['layer']}.{r['module']}.weight"][0] / r["numel"] + 0.01

    short = [r for r in records if r["n_zero"] / r["numel"] < r["target_sparsity"] - slack(r)]
    numel = sum(r["numel"] for r in records)
    if short and total < target - sum(slack(r) * r["numel"] for r in records) / numel:
        r = short[0]
        log.warning(
            "realized sparsity %.4f over the prunable linears is below the target %.4f: %d linears pruned less than "
            "allocated, e.g. layer %d %s at %.4f of %.4f (see prunetts_sparsity.parquet)",
            total,
            target,
            len(short),
            r["layer"],
            r["module"],
            r["n_zero"] / r["numel"],
            r["target_sparsity"],
        )


def main(argv=None) -> int:
    ap, prune = _parser()
    a = ap.parse_args(argv)
    problem = _check(a)
    if problem:
        prune.error(problem)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ignored = _ignored(a, prune)
    if ignored:
        log.warning(
            "ignored (not read by %s): %s",
            a.method if a.method == "shortgpt" else f"{a.method} with {a.allocation} allocation",
            ", ".join(ignored),
        )
    # a hub id (checked by _check), decided before --out is created: --out ORG/NAME-pruned creates a local ORG/
    hub = not Path(a.model).expanduser().exists()
    out = Path(a.out).expanduser()
    a.out = str(out)
    existed = out.exists()  # and then empty (_check)
    created = [p for p in [out, *out.parents] if not p.exists()][-1:]  # the topmost directory this run creates
    try:
        out.mkdir(parents=True, exist_ok=True)  # now, not after hours of work (a read-only or special file system)
    except OSError as e:
        prune.error(f"--out {a.out}: cannot be created ({e.strerror or e})")

    def ignore_further_signals():  # a second (scancel twice, Ctrl-C twice) must not cut the clean-up short
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)

    def terminate(signum, _frame):
        # at once: the checkpoint writer's wait for its write in progress runs before the except block below
        ignore_further_signals()
        raise SystemExit(128 + signum)  # through the clean-up below, as Ctrl-C (a Slurm time limit sends SIGTERM)

    # not where the signal is ignored (nohup ignores SIGHUP: the run must survive a dropped SSH session)
    previous = {
        sig: signal.signal(sig, terminate)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        run_prune(a, hub=hub)
    except BaseException as e:
        ignore_further_signals()
        # a failed run leaves --out as it found it (absent or empty), so the same command can simply be rerun
        if not existed:
            shutil.rmtree(created[0], ignore_errors=True)
        elif out.is_dir():
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C: one line, as a SIGTERM ends quietly, not a torch traceback
            print(f"prunetts: interrupted; --out {a.out} left as it was", file=sys.stderr)
            return 128 + signal.SIGINT
        if not isinstance(e, (ValueError, OSError)):
            raise
        print(f"prunetts: error: {e}", file=sys.stderr)  # the library's user-facing errors carry one clear line
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
