"""Decoding backends. One interface: ``generate(requests) -> results``.

A request is (context token ids, max new tokens, stop token ids, uniform stream); a result is the generated ids
without the stop token and whether a stop token ended it. ``TransformersBackend`` runs batched decoding with a KV
cache on CPU or GPU (left padding, finished rows masked out; sorted by context length so batches pad little).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Request:
    context: list[int]
    max_new: int
    stop_ids: frozenset[int]
    stream: object  # float64 tensor of uniforms, length >= max_new


@dataclass
class Result:
    tokens: list[int]
    stopped: bool


@dataclass
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


def _cache_kwarg(model) -> str:
    """transformers >= 5.2x names the KV cache argument ``cache`` (``past_key_values`` is deprecated)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class TransformersBackend:
    def __init__(self, model, tokenizer, sampling: Sampling, batch_size: int = 32, progress: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.batch_size = batch_size
        self.progress = progress
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # ids the model has embeddings for but the tokenizer cannot decode (e.g. Qwen2.5: 151665..152063) are never
        # sampled (METHODS §6.2 item 6)
        self.n_valid = min(len(tokenizer), model.config.vocab_size)
        self.generated_tokens = 0
        self.decode_seconds = 0.0

    def generate(self, requests: list[Request], desc: str = "generate") -> list[Result]:
        from tqdm import tqdm

        order = sorted(range(len(requests)), key=lambda i: (len(requests[i].context), i))
        results: list[Result | None] = [None] * len(requests)
        bar = tqdm(
            total=sum(r.max_new for r in requests), desc=desc, unit="tok", disable=not self.progress, mininterval=2.0
        )
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            for i, res in zip(idx, self._decode([requests[i] for i in idx], bar), strict=True):
                results[i] = res
        bar.close()
        return results  # type: ignore[return-value]

    def _decode(self, reqs: list[Request], bar) -> list[Result]:
        import torch
        from transformers import DynamicCache

        from prunetts.generation.sampling import sample_next

        t0 = time.perf_counter()
        n = len(reqs)
        width = max(len(r.context) for r in reqs)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(reqs):
            ids[i, width - len(r.context) :] = torch.tensor(r.context)
            attn[i, width - len(r.context) :] = 1
        ids, attn = ids.to(self.device), attn.to(self.device)
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        gen: list[list[int]] = [[] for _ in reqs]
        stopped = [False] * n
        active = [r.max_new > 0 for r in reqs]
        kv = {_cache_kwarg(self.model): cache}
        streams = torch.stack([r.stream[: max(r.max_new for r in reqs)] for r in reqs]) if reqs else None
        rows = list(range(n))  # request index of each row currently in the batch
        step = 0
        with torch.inference_mode():
            out = self.model(
                input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=True, logits_to_keep=1, **kv
            )
            while True:
                logits = out.logits[:, -1, :].float()
                if self.n_valid < logits.shape[-1]:
                    logits[:, self.n_valid :] = float("-inf")
                nxt = sample_next(logits, streams[rows, step], **vars(self.sampling)).tolist()
                for j, i in enumerate(rows):
                    if not active[i]:
                        continue
                    if nxt[j] in reqs[i].stop_ids:
                        stopped[i], active[i] = True, False
                    else:
                        gen[i].append(nxt[j])
                        active[i] = len(gen[i]) < reqs[i].max_new
                step += 1
                live = [j for j, i in enumerate(rows) if active[i]]
                bar.update(len(live))
                if not live:
                    break
                feed = torch.tensor(
                    [nxt[j] if active[i] else self.pad_id for j, i in enumerate(rows)], device=self.device
                )
                if len(rows) - len(live) >= max(1, len(rows) // 4):
                    # finished rows leave the batch (their cache rows are dropped), so the batch stays dense
                    keep = torch.tensor(live, device=self.device)
                    cache.batch_select_indices(keep)
                    attn, feed = attn[keep], feed[keep]
                    rows = [rows[j] for j in live]
                mask_col = torch.tensor([active[i] for i in rows], dtype=torch.long, device=self.device)
                next_pos = attn.sum(-1, keepdim=True)
                attn = torch.cat([attn, mask_col.unsqueeze(1)], dim=1)
                out = self.model(
                    input_ids=feed.unsqueeze(1), attention_mask=attn, position_ids=next_pos, use_cache=True, **kv
                )
        self.generated_tokens += sum(len(g) + s for g, s in zip(gen, stopped, strict=True))
        self.decode_seconds += time.perf_counter() - t0
        return [Result(g, s) for g, s in zip(gen, stopped, strict=True)]
