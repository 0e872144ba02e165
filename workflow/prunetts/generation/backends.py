"""Decoding backends.

Interface: ``generate(requests) -> results`` (a request is context ids, max new tokens, stop ids and a uniform
stream; a result is the generated ids without the stop token and whether a stop token ended it), and optionally
``run_sweep(plan) -> outcomes`` (``sweep.py``).

``TransformersBackend`` decodes batches with a KV cache on CPU or GPU: left padding, explicit position ids, finished
rows dropped from the batch (and their cache rows) so the batch stays dense, requests sorted by context length so
batches pad little. Its ``run_sweep`` runs thinking and answers of every budget in one decode loop: when a row's
thinking reaches a budget, the row is forked (its cache rows are duplicated), the fork is fed the closing delimiter
one token at a time and then samples its answer, while the parent keeps thinking. No answer context is re-encoded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

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


@dataclass
class _Row:
    """One sequence in the batch. ``mode`` think|answer|plain; ``forced`` tokens are fed before sampling resumes."""

    item: int
    mode: str
    cut: object = None
    forced: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # answer / plain tokens (thinking lives in the outcome)
    feed: int = 0
    done: bool = False


class _Batch:
    """Left-padded batch with a KV cache; rows can be dropped and duplicated between steps."""

    def __init__(self, backend, contexts: list[list[int]]):
        import torch
        from transformers import DynamicCache

        self.b = backend
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), backend.pad_id, dtype=torch.long)
        attn = torch.zeros((len(contexts), width), dtype=torch.long)
        for i, c in enumerate(contexts):
            ids[i, width - len(c) :] = torch.tensor(c)
            attn[i, width - len(c) :] = 1
        self.attn = attn.to(backend.device)
        self.cache = DynamicCache(config=backend.model.config)
        self.kv = {_cache_kwarg(backend.model): self.cache}
        positions = (self.attn.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = backend.model(
                input_ids=ids.to(backend.device),
                attention_mask=self.attn,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **self.kv,
            )
        self.logits = self._valid(out.logits[:, -1, :])

    def _valid(self, logits):
        logits = logits.float()
        if self.b.n_valid < logits.shape[-1]:
            logits[:, self.b.n_valid :] = float("-inf")
        return logits

    def select(self, index: list[int]) -> None:
        """Keep / duplicate rows: row k of the new batch is row ``index[k]`` of the old one."""
        import torch

        if index == list(range(self.attn.shape[0])):
            return
        idx = torch.tensor(index, device=self.b.device)
        self.cache.batch_select_indices(idx)
        self.attn = self.attn[idx]
        self.logits = self.logits[idx]

    def step(self, feed: list[int]) -> None:
        import torch

        positions = self.attn.sum(-1, keepdim=True)
        self.attn = torch.cat([self.attn, torch.ones_like(self.attn[:, :1])], dim=1)
        with torch.inference_mode():
            out = self.b.model(
                input_ids=torch.tensor(feed, device=self.b.device).unsqueeze(1),
                attention_mask=self.attn,
                position_ids=positions,
                use_cache=True,
                **self.kv,
            )
        self.logits = self._valid(out.logits[:, -1, :])


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

    # ---- shared ----------------------------------------------------------------------------------------------------
    def _sample(self, batch: _Batch, u: list[float]) -> list[int]:
        import torch

        from prunetts.generation.sampling import sample_next

        return sample_next(batch.logits, torch.tensor(u, dtype=torch.float64), **vars(self.sampling)).tolist()

    def _chunks(self, contexts: list[list[int]], desc: str, total: int):
        from tqdm import tqdm

        order = sorted(range(len(contexts)), key=lambda i: (len(contexts[i]), i))
        bar = tqdm(total=total, desc=desc, unit="tok", disable=not self.progress, mininterval=2.0)
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size], bar
        bar.close()

    # ---- plain generation --------------------------------------------------------------------------------------------
    def generate(self, requests: list[Request], desc: str = "generate") -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        for idx, bar in self._chunks([r.context for r in requests], desc, sum(r.max_new for r in requests)):
            for i, res in zip(idx, self._decode([requests[i] for i in idx], bar), strict=True):
                results[i] = res
        return results  # type: ignore[return-value]

    def _decode(self, reqs: list[Request], bar) -> list[Result]:
        t0 = time.perf_counter()
        rows = [_Row(i, "plain", done=r.max_new <= 0) for i, r in enumerate(reqs)]
        gens = [row.tokens for row in rows]  # rows leave the batch when done; their token lists stay here
        stopped = [False] * len(reqs)
        batch = _Batch(self, [r.context for r in reqs])
        while True:
            live = [k for k, row in enumerate(rows) if not row.done]
            if len(live) < len(rows):
                batch.select(live)
                rows = [rows[k] for k in live]
            if not rows:
                break
            sampled = self._sample(batch, [reqs[row.item].stream[len(row.tokens)].item() for row in rows])
            for row, tok in zip(rows, sampled, strict=True):
                req = reqs[row.item]
                if tok in req.stop_ids:
                    stopped[row.item], row.done = True, True
                else:
                    row.tokens.append(tok)
                    row.feed = tok
                    row.done = len(row.tokens) >= req.max_new
            bar.update(len(rows))
            feeding = [k for k, row in enumerate(rows) if not row.done]
            if not feeding:
                break
            batch.select(feeding)
            rows = [rows[k] for k in feeding]
            batch.step([row.feed for row in rows])
        self._account(t0, sum(len(g) for g in gens))
        return [Result(g, s) for g, s in zip(gens, stopped, strict=True)]

    # ---- budget sweep with forks ------------------------------------------------------------------------------------
    def run_sweep(self, plan) -> list:
        from prunetts.generation.sweep import Outcome

        outcomes = [Outcome() for _ in plan.items]
        total = len(plan.items) * (plan.budgets[-1] + plan.max_gen_toks)
        for idx, bar in self._chunks([it.context for it in plan.items], "sweep", total):
            self._sweep_chunk(plan, idx, outcomes, bar)
        return outcomes

    def _sweep_chunk(self, plan, idx: list[int], outcomes: list, bar) -> None:
        from prunetts.generation.budget_forcing import Cut

        t0 = time.perf_counter()
        b_max = plan.budgets[-1]
        cut_points = set(plan.budgets[:-1])
        rows = [_Row(i, "think") for i in idx]
        batch = _Batch(self, [plan.items[i].context for i in idx])
        n_tokens = 0
        while rows:
            u = []
            for row in rows:
                it = plan.items[row.item]
                if row.mode == "think":
                    u.append(it.think_stream[len(outcomes[row.item].thinking)].item())
                else:
                    u.append(it.answer_stream[len(row.tokens)].item() if not row.forced else 0.0)
            sampled = self._sample(batch, u)
            index, forks = [], []
            for k, (row, tok) in enumerate(zip(rows, sampled, strict=True)):
                out = outcomes[row.item]
                if row.mode == "think":
                    if tok in plan.think_stop:  # stopped thinking by itself: its answer serves every budget > L
                        out.stopped = True
                        row.mode, row.cut = "answer", Cut(len(out.thinking), False)
                        row.forced = plan.closing(out.thinking, False)
                        row.feed = row.forced.pop(0)
                    else:
                        out.thinking.append(tok)
                        n_tokens += 1
                        row.feed = tok
                        n = len(out.thinking)
                        if n in cut_points:  # a smaller budget ends here: fork an answer row, keep thinking
                            forks.append(
                                (k, _Row(row.item, "answer", Cut(n, True), plan.closing(out.thinking, True), feed=tok))
                            )
                        elif n == b_max:  # the largest budget: this row answers itself
                            row.mode, row.cut = "answer", Cut(n, True)
                            row.forced = plan.closing(out.thinking, True)
                elif row.forced:
                    row.feed = row.forced.pop(0)
                elif tok in plan.answer_stop:
                    row.done = True
                else:
                    row.tokens.append(tok)
                    n_tokens += 1
                    row.feed = tok
                    row.done = len(row.tokens) >= plan.max_gen_toks
                if row.done:
                    out.answers[row.cut] = row.tokens
                else:
                    index.append(k)
            new_rows = [rows[k] for k in index] + [f for _, f in forks]
            bar.update(len(rows))
            if not new_rows:
                break
            batch.select(index + [k for k, _ in forks])
            rows = new_rows
            batch.step([row.feed for row in rows])
        self._account(t0, n_tokens)

    # ---- bookkeeping ------------------------------------------------------------------------------------------------
    def _account(self, t0: float, tokens: int) -> None:
        self.generated_tokens += tokens
        self.decode_seconds += time.perf_counter() - t0
