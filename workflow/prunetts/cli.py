"""``prunetts`` command line: prune a model without running the workflow (same library code as the workflow).

    prunetts prune --model PATH_OR_HF_ID --method {magnitude,wanda,shortgpt} --allocation {uniform,owl,layerif}
                   --sparsity 0.2 --calibration FILE_OR_c4 --out DIR  [knobs, see --help]

Writes a normal HF checkpoint (safetensors + tokenizer) to DIR, plus ``prunetts_sparsity.parquet`` (target and
realized sparsity per prunable linear) and ``prunetts_prune.json`` (arguments, layer scores, global sparsity).
With no separate influence data, LayerIF scores training and validation texts drawn as disjoint splits of the
calibration texts, so the five flags above are enough for every method and allocation.
"""

from __future__ import annotations

import argparse
import json
import logging
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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="prunetts", description="Prune reasoning LLMs (prunetts).")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prune",
        help="prune one model and save an HF checkpoint",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, help="local HF checkpoint directory (safetensors) or hub id")
    p.add_argument("--method", required=True, choices=["magnitude", "wanda", "shortgpt"])
    p.add_argument(
        "--allocation",
        default="uniform",
        choices=["uniform", "owl", "layerif"],
        help="layer-wise allocation (ignored by shortgpt)",
    )
    p.add_argument("--sparsity", type=float, help="target sparsity in (0, 1); shortgpt removes round(S*L) layers")
    p.add_argument("--shortgpt-layers", type=_whole(1), help="shortgpt: remove exactly this many layers instead")
    p.add_argument("--calibration", default="c4", help="'c4', 'demo', or a .jsonl/.json/.parquet/.csv file of texts")
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
    g.add_argument("--influence-train", help="texts to score for LayerIF; none = a split of the calibration texts")
    g.add_argument("--influence-val", help="LayerIF validation texts; none = the disjoint rest of that split")
    g.add_argument("--n-train", type=_whole(1), default=300, help="LayerIF training texts")
    g.add_argument("--n-val", type=_whole(1), default=96, help="LayerIF validation texts")
    g.add_argument("--influence-max-len", type=_whole(8), default=512, help="tokens per LayerIF text (truncated)")
    g.add_argument("--projection-dim", type=_whole(0), default=4096, help="gradient sketch size (0 = exact)")
    g = p.add_argument_group("execution")
    g.add_argument("--device", default="auto", help="auto = cuda if available, else cpu")
    g.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    g.add_argument("--batch-size", type=_whole(1), default=8, help="calibration windows per forward pass")
    g.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code")
    return ap


def _check(ap, a) -> None:
    """Every user mistake fails here, with one line, before anything expensive runs."""
    if a.method == "shortgpt":
        if (a.sparsity is None) == (a.shortgpt_layers is None):
            ap.error("shortgpt needs exactly one of --sparsity or --shortgpt-layers")
    elif a.sparsity is None:
        ap.error(f"--sparsity is required for {a.method}")
    if a.sparsity is not None and not 0 < a.sparsity < 1:
        ap.error(f"--sparsity {a.sparsity}: must be in (0, 1), e.g. 0.2")
    if a.method != "shortgpt" and a.allocation == "layerif":
        from prunetts.config import layerif_range_problem

        problem = layerif_range_problem(a.layerif_e1, a.layerif_e2)
        if problem:
            ap.error(f"--layerif-e1/--layerif-e2: {problem}")
    out = Path(a.out)
    if out.exists() and any(out.iterdir()):
        ap.error(f"--out {out}: exists and is not empty; choose a new directory")
    model = Path(a.model)
    if (model.exists() or a.model.startswith((".", "/"))) and not (model / "config.json").is_file():
        ap.error(f"--model {a.model}: no config.json there; give an HF checkpoint directory or a hub id")
    for flag in ("calibration", "influence_train", "influence_val"):
        value = getattr(a, flag)
        if value and value not in ("c4", "demo") and not Path(value).is_file():
            ap.error(f"--{flag.replace('_', '-')} {value}: not 'c4', 'demo' or an existing file")


def run_prune(a) -> dict:
    from prunetts import artifacts
    from prunetts import capture as cap
    from prunetts import scores as sc
    from prunetts.calibration import load_texts, packed_windows, paper_windows
    from prunetts.checkpoint import Reader, prunable_modules_from_shapes, tensor_shapes
    from prunetts.config import Variant
    from prunetts.models import load_tokenizer
    from prunetts.pruning.allocation import for_variant
    from prunetts.pruning.pruner import needs_calibration, prune_checkpoint
    from prunetts.versions import IMPL_VERSION

    if a.method == "shortgpt":
        v = Variant("shortgpt", "shortgpt", a.sparsity or 0.0, a.shortgpt_layers)
    else:
        v = Variant(a.method, a.allocation, a.sparsity)
    reader = Reader(a.model)
    modules = prunable_modules_from_shapes(tensor_shapes(reader.dir))
    n_layers = reader.config["num_hidden_layers"]
    tok = load_tokenizer(str(reader.dir), trust_remote_code=a.trust_remote_code)

    need_capture = v.allocation in ("owl", "shortgpt") or (a.method == "wanda" and a.wanda_mode == "one_pass")
    windows, stats, layer_stats, texts = None, None, None, None
    if need_capture or needs_calibration(a.method, a.wanda_mode):
        texts = load_texts(a.calibration, a.text_field)
    if need_capture or needs_calibration(a.method, a.wanda_mode):
        make = paper_windows if a.calibration_mode == "paper" else packed_windows
        windows = make(texts, tok, a.n_samples, a.seqlen, a.seed)
        log.info("calibration: %d windows x %d tokens from %s", len(windows), a.seqlen, a.calibration)
    if need_capture:
        linear, layer_stats = cap.capture(
            str(reader.dir), windows, a.batch_size, a.device, a.dtype, a.trust_remote_code
        )
        stats = {k: s for k, (s, _) in linear.items()}

    layer_scores = None
    if v.allocation == "owl":
        layer_scores = sc.owl_outlier_ratios(str(reader.dir), stats, a.owl_m)
    elif v.allocation == "shortgpt":
        layer_scores = sc.bi_scores([dict(layer=i, cos_mean=c) for i, c, _ in layer_stats])
    elif v.allocation == "layerif":
        from prunetts.influence import aggregate_positive, compute_influence, influence_texts
        from prunetts.models import load_model

        train, val = influence_texts(
            a.calibration, a.text_field, a.influence_train, a.influence_val, a.n_train, a.n_val, a.seed
        )
        lm = load_model(str(reader.dir), a.dtype, a.device, a.trust_remote_code)
        rows = compute_influence(lm, tok, train, val, a.influence_max_len, a.projection_dim, a.seed)
        del lm
        layer_scores = aggregate_positive(rows)
    options = {
        "owl": {"lambda": a.owl_lambda},
        "layerif": {"e1": a.layerif_e1, "e2": a.layerif_e2, "direction": a.layerif_direction},
    }.get(v.allocation, {})
    targets = for_variant(v, modules, layer_scores, options, n_layers)
    records = prune_checkpoint(
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
    )
    model_name = Path(a.model).name or a.model
    artifacts.write(
        "sparsity",
        [
            dict(
                model=model_name,
                variant=v.id,
                impl_version=IMPL_VERSION["prune"],
                realized_sparsity=r["n_zero"] / r["numel"],
                **r,
            )
            for r in records
        ],
        Path(a.out) / "prunetts_sparsity.parquet",
    )
    total = sum(r["n_zero"] for r in records) / sum(r["numel"] for r in records)
    summary = {
        "variant": v.id,
        "arguments": {k: val for k, val in vars(a).items() if k != "command"},
        "realized_sparsity_prunable_linears": total,
        "layer_scores": {str(k): val for k, val in (layer_scores or {}).items()},
    }
    (Path(a.out) / "prunetts_prune.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%s: wrote %s (realized sparsity %.4f over the prunable linears)", v.id, a.out, total)
    return summary


def main(argv=None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    _check(ap, a)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        run_prune(a)
    except (ValueError, OSError) as e:  # the library's user-facing errors carry one clear line
        print(f"prunetts: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
