"""ShortGPT layer removal (Men et al. 2024, "ShortGPT: Layers in Large Language Models are More Redundant Than You
Expect").

Block Influence BI_i = 1 - mean over calibration tokens of cos(input of layer i, input of layer i+1), from the dense
capture. The ``n`` layers with the lowest BI are removed in one shot; as in the code the paper used, only layers
0..L-2 are scored, so the last layer is never removed. ``n = round(S * L)`` for a sparsity S (removed
linear parameters ~= S x decoder linear parameters, the same denominator as unstructured sparsity), or explicit.

The pruned checkpoint is written by copying the kept layers' tensors under new consecutive indices (so attention
``layer_idx`` is renumbered when the model is built), with ``num_hidden_layers`` updated and per-layer config lists
(``layer_types``, ...) sliced; ``max_window_layers`` counts the kept layers below the old limit (its class default
where a sliding-window config leaves it out).
"""

from __future__ import annotations

import functools

from prunetts.checkpoint import (
    LAYER_RE,
    Reader,
    Writer,
    prunable_modules_from_shapes,
    tensor_shapes,
    write_one_by_one,
)


def layers_to_remove(bi: dict[int, float], n_layers: int, n_remove: int) -> list[int]:
    """The ``n_remove`` lowest-BI layers among 0..L-2 (ties: lower index first)."""
    import math

    candidates = [i for i in range(n_layers - 1)]
    problem = removal_problem(n_remove, n_layers)
    if problem:
        raise ValueError(f"ShortGPT: {problem}")
    nonfinite = [i for i in candidates if not math.isfinite(bi[i])]
    if nonfinite:  # a NaN would make the sort below order the layers arbitrarily
        raise ValueError(
            f"ShortGPT: the Block Influence of layer {nonfinite[0]} is {bi[nonfinite[0]]}; recompute the capture "
            "(workflow: snakemake --forcerun capture; CLI: run prunetts prune again)"
        )
    return sorted(sorted(candidates, key=lambda i: (bi[i], i))[:n_remove])


def removal_problem(n_remove: int, n_layers: int) -> str | None:
    """Why ``n_remove`` of ``n_layers`` layers cannot be removed (BI scores layers 0..L-2 only), or None."""
    if n_layers < 2:
        return f"the model has {n_layers} decoder layer; ShortGPT needs at least 2 (the last layer is never removed)"
    if not 0 < n_remove <= n_layers - 1:
        return f"cannot remove {n_remove} of {n_layers} layers (1..{n_layers - 1}; the last layer stays)"
    return None


def n_for_sparsity(sparsity: float, n_layers: int) -> int:
    """``round(S * L)``, at least 1 (a ShortGPT variant that removes nothing would be the dense model under another
    name); an exact half goes to the even count (Python's ``round``: 0.125 x 36 = 4.5 -> 4), both being equally far
    from S."""
    return max(1, round(sparsity * n_layers))


def rounded_up_note(sparsity: float, n_layers: int) -> str | None:
    """A warning where ``n_for_sparsity``'s floor of 1 applies: the variant removes 1/L of the layers, far above S."""
    if round(sparsity * n_layers) > 0:
        return None
    return (
        f"ShortGPT at sparsity {sparsity} removes 1 of the {n_layers} layers ({1 / n_layers:.0%} of them), not none: "
        f"round({sparsity} x {n_layers}) = 0, and a variant removing none would be the dense model"
    )


def pruned_config(config: dict, keep: list[int]) -> dict:
    """The source's config.json for the layers ``keep``: the layer count, per-layer lists sliced, and
    ``max_window_layers`` (Qwen2/Qwen3: layers from this index on use the sliding window) counting the kept layers
    below the old limit, so each kept layer keeps its attention type. A config that turns the sliding window on but
    leaves ``max_window_layers`` out relies on its class's default (28), which would mean other layers after the
    removal: that default is counted and written too."""
    n_old = config["num_hidden_layers"]
    out = dict(config)
    out["num_hidden_layers"] = len(keep)
    for key, value in config.items():
        if isinstance(value, list) and len(value) == n_old and "layer" in key:
            out[key] = [value[i] for i in keep]
    window = config.get("max_window_layers")
    if window is None and config.get("use_sliding_window"):
        window = _class_default(config, "max_window_layers")
    if isinstance(window, int) and not isinstance(window, bool):
        out["max_window_layers"] = sum(1 for i in keep if i < window)
    return out


def _class_default(config: dict, key: str):
    """The value transformers' config class of ``config["model_type"]`` gives ``key`` when config.json leaves it out;
    None without such a class or attribute."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return None
    try:
        from transformers import AutoConfig

        return getattr(AutoConfig.for_model(model_type), key, None)
    except (ImportError, ValueError, KeyError):
        return None


def remove_layers(reader: Reader, out_dir: str, allocation: dict, before_config=None) -> list[dict]:
    """Remove the layers whose every prunable linear is allocated sparsity 1.0; returns per-linear records
    (``before_config``: as in ``pruner.prune_checkpoint``)."""
    n_layers = reader.config["num_hidden_layers"]
    by_layer: dict[int, list[float]] = {}
    for (layer, _name), s in allocation.items():
        by_layer.setdefault(layer, []).append(s)
    removed = {i for i, ss in by_layer.items() if all(s == 1.0 for s in ss)}
    keep = [i for i in range(n_layers) if i not in removed]

    def renumbered(name: str, new: int) -> str:
        return LAYER_RE.sub(lambda m: f"model.layers.{new}.{m[2]}", name)

    layout = reader.layout(reader.other_names())
    layout += [
        (renumbered(n, new), *meta)
        for new, old in enumerate(keep)
        for n, *meta in reader.layout(reader.layer_names(old))
    ]
    # shards as large as the source's; on an error the writer's thread stops before the error propagates
    with Writer(out_dir, layout, reader.largest_shard_bytes()) as writer:
        write_one_by_one(reader, writer, reader.other_names())
        zeros = {}
        for new, old in enumerate(keep):
            tensors = reader.load(reader.layer_names(old))
            zeros.update({n: int((t == 0).sum()) for n, t in tensors.items()})
            writer.add({renumbered(n, new): t for n, t in tensors.items()})
        records = []
        for layer, module, numel in prunable_modules_from_shapes(tensor_shapes(reader.dir)):
            gone = layer in removed
            records.append(
                dict(
                    layer=layer,
                    module=module,
                    numel=numel,
                    target_sparsity=1.0 if gone else 0.0,
                    n_pruned=numel if gone else 0,
                    n_zero=numel if gone else zeros[f"model.layers.{layer}.{module}.weight"],
                )
            )
        own_files = None if before_config is None else functools.partial(before_config, records)
        writer.finish(pruned_config(reader.config, keep), reader.dir, own_files)
    return records
