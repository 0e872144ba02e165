"""Dense activation capture: one layer-by-layer pass over the calibration windows, shared by every variant of a model.

Per prunable linear (``models.Arch.prunable_linears``) it accumulates, in float64, ``sum_n sum_t x_{n,t,j}^2`` per
input channel j. Wanda's ``scaler_row`` is this sum divided by the number of windows; a constant factor
changes no per-row or per-matrix ranking and no OWL outlier ratio (a ratio against the layer mean), so the plain sum
and the token count are stored.

Per decoder layer it accumulates the cosine between the layer's input and output hidden state per token, the
ShortGPT Block Influence statistic (BI_i = 1 - mean cos, Men et al. 2024; the output of layer i is the
input of layer i+1); a token whose cosine is NaN (a non-finite hidden state) counts as 0.5, as in the reference (an
all-zero hidden state, 0/0 there and so also 0.5, gives 0 here; no real token produces one). The mean is over all
tokens; the reference's mean of per-batch means is the same whenever the batch size divides the number of windows
(config/paper.yaml: 1). Deviation: ShortGPT's code calibrates on PG19 chunks; we reuse the calibration windows.

The pass streams one decoder layer at a time from the safetensors checkpoint (``layerwise.LayerRunner``), so capture
of an 8B model never holds the whole model.
"""

from __future__ import annotations

import logging

from prunetts.checkpoint import Reader
from prunetts.layerwise import LayerRunner, check_finite_stats, input_sq_norms

log = logging.getLogger(__name__)


class _CaptureRunner(LayerRunner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cos_sum = [0.0] * self.n_layers
        self.cos_n = [0] * self.n_layers

    def _after_batch(self, i, h, o) -> None:
        import torch.nn.functional as F

        # a non-finite hidden state (fp16 overflow) gives NaN: 0.5 as ShortGPT's block_influence
        cos = F.cosine_similarity(h.float(), o.float(), dim=-1).nan_to_num(nan=0.5)
        self.cos_sum[i] += float(cos.double().sum())
        self.cos_n[i] += cos.numel()


def capture(
    model_path: str,
    windows: list[list[int]],
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    progress: bool = True,
):
    """Returns (``{(layer, module): (sq_norm_sum float64 [d_in], n_tokens)}``, ``[(layer, cos_mean, n_tokens)]``)."""
    from tqdm import tqdm

    runner = _CaptureRunner(Reader(model_path), device, dtype, trust_remote_code)
    runner.check_windows(windows)
    hidden = runner.embed(windows, batch_size)
    linear_stats = {}
    for i in tqdm(range(runner.n_layers), desc="capture", disable=not progress):
        layer = runner.load_layer(i)
        with input_sq_norms(runner.arch.prunable_linears(layer)) as (sums, counts):
            runner.forward(i, layer, hidden, out=hidden)
        # now, not in a later job: Wanda and OWL would silently treat inf/NaN statistics as "prune nothing"
        check_finite_stats(sums, i, runner.dtype, "capture")
        for name in sums:
            linear_stats[(i, name)] = (sums[name].cpu(), counts[name])
        runner.unload_layer(i)
    layers = [(i, runner.cos_sum[i] / runner.cos_n[i], runner.cos_n[i]) for i in range(runner.n_layers)]
    return linear_stats, layers


def linear_rows(model_name: str, stats: dict, impl_version: int) -> list[dict]:
    return [
        dict(
            model=model_name, impl_version=impl_version, layer=layer, module=module, n_tokens=n, sq_norm_sum=s.tolist()
        )
        for (layer, module), (s, n) in sorted(stats.items())
    ]


def layer_rows(model_name: str, layers: list, impl_version: int) -> list[dict]:
    return [dict(model=model_name, impl_version=impl_version, layer=i, cos_mean=c, n_tokens=n) for i, c, n in layers]


def stats_from_table(tbl) -> dict:
    """Inverse of ``linear_rows``: ``{(layer, module): float64 tensor}``."""
    import torch

    d = tbl.to_pydict()
    return {
        (layer, module): torch.tensor(s, dtype=torch.float64)
        for layer, module, s in zip(d["layer"], d["module"], d["sq_norm_sum"], strict=True)
    }
