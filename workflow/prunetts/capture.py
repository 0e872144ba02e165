"""Dense activation capture: one pass over the calibration windows, shared by every pruned variant of a model.

For every prunable linear (``models.Arch.prunable_linears``) it accumulates, in float64, the sum over all calibration
tokens of the squared input activation per input channel, ``sum_n sum_t x_{n,t,j}^2``. Wanda's ``scaler_row`` is this
sum divided by the number of windows (METHODS §2.1); the constant factor does not change any per-row or per-matrix
ranking, so we store the plain sum and the token count.

This is the dense statistic (Wanda "one-pass" mode). The reference Wanda is sequential (layer l+1 sees pruned layer
l); that mode is added by the pruning suite (issue 3).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def capture_linear_stats(model, windows: list[list[int]], batch_size: int = 8, progress: bool = True) -> dict:
    """Return ``{(layer, module): (sq_norm_sum float64 tensor [d_in], n_tokens)}``."""
    import torch
    from tqdm import tqdm

    from prunetts.models import Arch

    arch = Arch.of(model)
    device = next(model.parameters()).device
    sums: dict = {}
    counts: dict = {}
    hooks = []

    def make_hook(key):
        def hook(_module, inputs, _output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).to(torch.float64)
            sums[key] += (x * x).sum(0)
            counts[key] += x.shape[0]

        return hook

    for li, layer in enumerate(arch.layers(model)):
        for name, lin in arch.prunable_linears(layer).items():
            key = (li, name)
            sums[key] = torch.zeros(lin.in_features, dtype=torch.float64, device=device)
            counts[key] = 0
            hooks.append(lin.register_forward_hook(make_hook(key)))
    try:
        decoder = arch.decoder(model)  # skip lm_head: its logits are never needed here
        batches = range(0, len(windows), batch_size)
        with torch.inference_mode():
            for start in tqdm(batches, desc="capture", disable=not progress):
                ids = torch.tensor(windows[start : start + batch_size], device=device)
                decoder(input_ids=ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return {k: (sums[k].cpu(), counts[k]) for k in sums}


def capture_rows(model_name: str, stats: dict, impl_version: int) -> list[dict]:
    return [
        dict(
            model=model_name,
            impl_version=impl_version,
            layer=layer,
            module=module,
            n_tokens=n,
            sq_norm_sum=s.tolist(),
        )
        for (layer, module), (s, n) in sorted(stats.items())
    ]


def stats_from_table(tbl) -> dict:
    """Inverse of ``capture_rows``: ``{(layer, module): float64 tensor}``."""
    import torch

    d = tbl.to_pydict()
    return {
        (layer, module): torch.tensor(s, dtype=torch.float64)
        for layer, module, s in zip(d["layer"], d["module"], d["sq_norm_sum"], strict=True)
    }
