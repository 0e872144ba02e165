"""Prune a checkpoint: apply a criterion at the allocated per-module sparsity and save an HF checkpoint.

Skeleton version: the model is loaded whole in its checkpoint dtype and masks are scored in float32 one matrix at a
time. Layer-by-layer streaming from safetensors (for 8B models on small hosts) comes with the pruning suite (issue 3).
"""

from __future__ import annotations

import logging

from prunetts.models import Arch, load_model, load_tokenizer, save_model
from prunetts.pruning.magnitude import magnitude_mask
from prunetts.pruning.masks import apply_mask
from prunetts.pruning.wanda import wanda_mask

log = logging.getLogger(__name__)

CRITERIA_NEEDING_CAPTURE = {"wanda"}


def prune_model(model, method: str, allocation: dict, stats: dict | None = None) -> list[dict]:
    """Prune ``model`` in place; returns per-module records (layer, module, numel, target, n_pruned, n_zero)."""
    import torch

    if method in CRITERIA_NEEDING_CAPTURE and stats is None:
        raise ValueError(f"{method} needs captured activation statistics")
    arch = Arch.of(model)
    records = []
    with torch.no_grad():
        for li, layer in enumerate(arch.layers(model)):
            for name, lin in arch.prunable_linears(layer).items():
                s = allocation[(li, name)]
                if method == "magnitude":
                    mask = magnitude_mask(lin.weight, s)
                elif method == "wanda":
                    mask = wanda_mask(lin.weight, stats[(li, name)], s)
                else:
                    raise ValueError(f"unknown pruning method {method!r}")
                apply_mask(lin.weight, mask)
                records.append(
                    dict(
                        layer=li,
                        module=name,
                        numel=lin.weight.numel(),
                        target_sparsity=s,
                        n_pruned=int(mask.sum()),
                        n_zero=int((lin.weight == 0).sum()),
                    )
                )
    return records


def prune_checkpoint(
    model_path: str,
    out_dir: str,
    method: str,
    allocation: dict,
    stats: dict | None,
    trust_remote_code: bool = False,
    device: str = "cpu",
) -> list[dict]:
    model = load_model(model_path, dtype="checkpoint", device=device, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(model_path, trust_remote_code=trust_remote_code)
    records = prune_model(model, method, allocation, stats)
    save_model(model, tokenizer, out_dir)
    return records
