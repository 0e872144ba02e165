"""Prune a safetensors checkpoint layer by layer and write a new HF checkpoint.

Never holds the dense and the pruned model together: the non-layer tensors (embeddings, final norm, lm_head) are
copied as they are, then each decoder layer is loaded, pruned and written before the next is read. Peak memory is one
decoder layer plus, for sequential Wanda, the calibration hidden states: one ``[N, T, H]`` buffer, updated in place
layer by layer (``LayerRunner.embed`` briefly holds the per-batch inputs and their concatenation besides).

- ``magnitude``: |W| per matrix (``magnitude.py``); no calibration data.
- ``wanda``, mode ``sequential`` (the reference): layer l's activation statistics are measured on the
  inputs produced by the already pruned layers 0..l-1, then the pruned layer l is re-run to produce layer l+1's
  inputs. Two exact savings over the reference, same statistics and masks: the statistics pass skips the output
  projection's matmul (its output is discarded), and the last layer is not re-run (nothing reads its outputs).
  Mode ``one_pass``: statistics from the dense capture (no forward pass here); this is what TTS-Pruning's LayerIF
  variant does.
- ``shortgpt``: the layers whose allocation is 1.0 are removed (``shortgpt.py``).

Masks are scored in float32 on the checkpoint's own values, and the written weights are the stored ones with the masked
entries zeroed: a compute dtype that rounds the checkpoint (bf16 on GPU for an fp16 or fp32 checkpoint) affects only
the activations of sequential Wanda, never a kept weight.
"""

from __future__ import annotations

import functools
import logging

from prunetts.checkpoint import Reader, Writer, write_one_by_one
from prunetts.pruning.magnitude import magnitude_mask
from prunetts.pruning.masks import count_true
from prunetts.pruning.wanda import wanda_mask

log = logging.getLogger(__name__)

METHODS = ("magnitude", "wanda", "shortgpt")
WANDA_MODES = ("sequential", "one_pass")


def needs_calibration(method: str, wanda_mode: str = "sequential") -> bool:
    return method == "wanda" and wanda_mode == "sequential"


def needs_capture(method: str, wanda_mode: str = "sequential") -> bool:
    return method == "wanda" and wanda_mode == "one_pass"


def sparsity_rows(model: str, variant: str, records: list[dict]) -> list[dict]:
    """``prune_checkpoint``'s records as rows of the ``sparsity`` artifact (the workflow's and the CLI's)."""
    from prunetts.versions import IMPL_VERSION

    return [
        dict(
            model=model,
            variant=variant,
            impl_version=IMPL_VERSION["prune"],
            realized_sparsity=r["n_zero"] / r["numel"],
            **r,
        )
        for r in records
    ]


def global_sparsity(records: list[dict]) -> tuple[float, float]:
    """(target, realized) sparsity over all the prunable linears of ``records``, weighted by their sizes."""
    numel = sum(r["numel"] for r in records)
    target = sum(r["target_sparsity"] * r["numel"] for r in records) / numel
    return target, sum(r["n_zero"] for r in records) / numel


def prune_checkpoint(
    model_path: str,
    out_dir: str,
    method: str,
    allocation: dict,
    *,
    stats: dict | None = None,
    windows: list[list[int]] | None = None,
    wanda_mode: str = "sequential",
    wanda_group: str = "row",
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    progress: bool = True,
    before_config=None,
) -> list[dict]:
    """Prune and save; returns one record per prunable linear (layer, module, numel, target_sparsity, n_pruned,
    n_zero). ``before_config(records)``, when given, writes the caller's own files into ``out_dir`` before
    config.json, the file that marks the checkpoint complete."""
    from tqdm import tqdm

    from prunetts.layerwise import LayerRunner, check_finite_stats, input_sq_norms, output_skipped

    reader = Reader(model_path)
    if method == "shortgpt":
        from prunetts.pruning.shortgpt import remove_layers

        return remove_layers(reader, out_dir, allocation, before_config)
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}")
    sequential = needs_calibration(method, wanda_mode)
    if sequential and not windows:
        raise ValueError("sequential Wanda needs calibration windows")
    if method == "wanda" and not sequential:
        if stats is None:
            raise ValueError("one-pass Wanda needs the dense capture statistics")
        # now, before any layer is written; the dtype of a stored capture is not known here
        for (layer, name), s in sorted(stats.items()):
            check_finite_stats({name: s}, layer)

    runner = LayerRunner(reader, device, dtype, trust_remote_code)
    if sequential:
        runner.check_windows(windows)  # before the writer's first file
    order = reader.other_names() + [n for i in range(runner.n_layers) for n in reader.layer_names(i)]
    # adds in this order, in shards as large as the source's; on an error its thread stops first
    with Writer(out_dir, reader.layout(order), reader.largest_shard_bytes()) as writer:
        write_one_by_one(reader, writer, reader.other_names())
        hidden = runner.embed(windows, batch_size) if sequential else None
        records = []
        for i in tqdm(range(runner.n_layers), desc=f"prune ({method})", disable=not progress):
            layer = runner.load_layer(i)
            linears = runner.arch.prunable_linears(layer)
            if sequential:
                # statistics only: the outputs are discarded, so the output projection need not run
                with (
                    input_sq_norms(linears) as (layer_stats, _),
                    output_skipped(linears[runner.arch.output_projection]),
                ):
                    runner.forward(i, layer, hidden, out=False)
            if method == "magnitude":
                sq_norms = None
            elif sequential:
                sq_norms = layer_stats
                check_finite_stats(sq_norms, i, runner.dtype)
            else:
                sq_norms = {name: stats[(i, name)] for name in linears}
            records += _prune_linears(runner, i, linears, method, allocation, sq_norms, wanda_group)
            if sequential and i < runner.n_layers - 1:  # nothing reads the last layer's outputs
                hidden = runner.forward(i, layer, hidden, out=hidden)  # in place: batch b is read before it is written
            writer.add(runner.layer_tensors(i, layer))
            runner.unload_layer(i)
        own_files = None if before_config is None else functools.partial(before_config, records)
        writer.finish(reader.config, reader.dir, own_files)
    return records


def _prune_linears(runner, i: int, linears: dict, method: str, allocation: dict, sq_norms, wanda_group: str):
    """Mask and zero each prunable linear of loaded layer ``i`` (``sq_norms``: name -> Wanda's input statistic);
    one record per linear."""
    import torch

    records = []
    with torch.no_grad():
        for name, lin in linears.items():
            s = allocation[(i, name)]
            weight = runner.scoring_weight(name, lin)
            if method == "magnitude":
                mask = magnitude_mask(weight, s)
            else:
                mask = wanda_mask(weight, sq_norms[name], s, wanda_group)
            del weight
            n_zero = runner.prune(name, lin, mask)
            records.append(
                dict(
                    layer=i,
                    module=name,
                    numel=lin.weight.numel(),
                    target_sparsity=float(s),
                    n_pruned=count_true(mask),
                    n_zero=n_zero,
                )
            )
    return records
