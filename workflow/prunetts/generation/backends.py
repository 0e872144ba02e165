"""Decoding backends.

Interface: ``generate(requests) -> results`` (a request is context ids, max new tokens, stop ids and a uniform
stream; a result is the generated ids without the stop token and whether a stop token ended it), and optionally
``run_sweep(plan) -> outcomes`` (``sweep.py``).

``TransformersBackend`` decodes batches with a KV cache on CPU or GPU: left padding, explicit position ids, finished
rows dropped from the batch (and their cache rows) so the batch stays dense, requests sorted by context length so
batches pad little. Its ``run_sweep`` runs thinking and answers of every budget in one decode loop: when a row's
thinking reaches a budget, the row is forked (its cache rows are duplicated), the fork is fed the closing delimiter
one token at a time and then samples its answer, while the parent keeps thinking. No answer context is re-encoded.
Finished rows leave the batch, and waiting items join it once it has shrunk to half of ``batch_size`` (continuous
batching; the joining rows' caches are left-padded to the running batch's width, which the attention mask hides).
Full-attention KV layers are preallocated buffers that grow in steps (``_growing_layer_class``), not ``torch.cat``.
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
    stream: object  # sampling.Stream: the uniforms for the tokens to generate (engines with a sampler: its seed)


@dataclass
class Result:
    tokens: list[int]
    stopped: bool
    seconds: float = 0.0  # wall time from the request's batch starting to the request finishing


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
    t0: float = 0.0  # when the row's current phase began
    cap: int = 0  # answer rows: answer tokens allowed (SweepPlan.answer_cap)
    stopped: bool = False  # answer rows: ended on an end token (not at the cap)


_GROW = 256  # KV capacity is added in steps of this many positions


def _growing_layer_class():
    """A ``DynamicLayer`` whose keys/values live in a buffer with spare positions: ``update`` writes into the buffer
    instead of ``torch.cat``-ing a new copy of the whole cache at every step (quadratic copying; it was the largest
    cost of CPU decoding after attention). Capacity grows ``_GROW`` positions at a time, so at most that many
    positions per row are allocated and unused."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states):
            self.device = key_states.device
            self._k = key_states.new_empty((*key_states.shape[:2], 0, key_states.shape[-1]))
            self._v = value_states.new_empty((*value_states.shape[:2], 0, value_states.shape[-1]))
            self._n = 0
            self.is_initialized = True

        @property
        def keys(self):
            return None if getattr(self, "_k", None) is None else self._k[:, :, : self._n]

        @keys.setter
        def keys(self, t):  # whole replacement (merge, select): no spare capacity
            self._k = t
            self._n = 0 if t is None or t.dim() < 3 else t.shape[-2]

        @property
        def values(self):
            return None if getattr(self, "_v", None) is None else self._v[:, :, : self._n]

        @values.setter
        def values(self, t):
            self._v = t

        def _reserve(self, extra: int) -> None:
            need = self._n + extra
            if need <= self._k.shape[-2]:
                return
            cap = need + _GROW
            k = self._k.new_empty((*self._k.shape[:2], cap, self._k.shape[-1]))
            v = self._v.new_empty((*self._v.shape[:2], cap, self._v.shape[-1]))
            k[:, :, : self._n] = self._k[:, :, : self._n]
            v[:, :, : self._n] = self._v[:, :, : self._n]
            self._k, self._v = k, v

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            q = key_states.shape[-2]
            self._reserve(q)
            self._k[:, :, self._n : self._n + q] = key_states
            self._v[:, :, self._n : self._n + q] = value_states
            self._n += q
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self._n if self.is_initialized else 0

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.get_seq_length() > 0:  # keep the spare capacity
                n = self._n
                self._k, self._v = self._k[indices], self._v[indices]
                self._n = n

    return GrowingLayer


class _Batch:
    """Left-padded batch with a KV cache; rows can be dropped and duplicated between steps."""

    def __init__(self, backend, contexts: list[list[int]]):
        import torch
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        self.b = backend
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), backend.pad_id, dtype=torch.long)
        attn = torch.zeros((len(contexts), width), dtype=torch.long)
        for i, c in enumerate(contexts):
            ids[i, width - len(c) :] = torch.tensor(c)
            attn[i, width - len(c) :] = 1
        self.attn = attn.to(backend.device)
        self.cache = DynamicCache(config=backend.model.config)
        # full-attention layers get preallocated buffers; sliding-window layers (if any) stay as transformers made them
        self.cache.layers = [
            backend.growing_layer() if type(layer) is DynamicLayer else layer for layer in self.cache.layers
        ]
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
        import torch

        if self.b.n_valid >= logits.shape[-1]:
            return logits.float()
        # a float32 copy to write into: .float() of fp32 logits is the model's inference-mode tensor itself
        logits = logits.to(dtype=torch.float32, copy=True)
        logits[:, self.b.n_valid :] = float("-inf")
        return logits

    def select(self, index: list[int]) -> None:
        """Keep / duplicate rows: row k of the new batch is row ``index[k]`` of the old one."""
        import torch

        if index == list(range(self.attn.shape[0])):
            return
        idx = torch.tensor(index, dtype=torch.long, device=self.b.device)  # an empty list would be float
        self.cache.batch_select_indices(idx)
        self.attn = self.attn[idx]
        self.logits = self.logits[idx]
        self._trim()

    def _trim(self) -> None:
        """Drop the leading columns that every row masks (left padding of rows that have left the batch). Without
        this a continuously joined batch's width is the number of steps since it started, not its longest row: every
        row's KV cache and every step's attention would span the whole run. The columns hold only masked positions,
        so no attention output changes. Only when every layer is a growing buffer (as ``can_merge``): a sliding-window
        layer's cache keeps its own length."""
        lead = int(self.attn.any(0).int().argmax()) if self.attn.shape[1] else 0
        if lead == 0 or not self.can_merge():
            return
        for layer in self.cache.layers:
            if layer.get_seq_length() > 0:  # a view of the buffer: its spare capacity stays usable
                layer._k, layer._v = layer._k[:, :, lead:], layer._v[:, :, lead:]
                layer._n -= lead
        self.attn = self.attn[:, lead:]

    def can_merge(self) -> bool:
        return all(type(layer) is self.b.growing_layer for layer in self.cache.layers)

    def merge(self, other: _Batch) -> _Batch:
        """Append ``other``'s rows: both caches are left-padded (masked) to the same length, then concatenated."""
        import torch
        import torch.nn.functional as F

        width = max(self.attn.shape[1], other.attn.shape[1])

        def pad(t, dim_from_end):  # left-pad the sequence dimension to ``width``
            missing = width - t.shape[-dim_from_end]
            if missing == 0:
                return t
            spec = [0, 0] * (dim_from_end - 1) + [missing, 0]
            return F.pad(t, spec)

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([pad(mine.keys, 2), pad(theirs.keys, 2)])
            mine.values = torch.cat([pad(mine.values, 2), pad(theirs.values, 2)])
        self.attn = torch.cat([pad(self.attn, 1), pad(other.attn, 1)])
        self.logits = torch.cat([self.logits, other.logits])
        return self

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
        # sampled
        self.n_valid = min(len(tokenizer), model.config.vocab_size)
        self.generated_tokens = 0
        self.decode_seconds = 0.0
        self.growing_layer = _growing_layer_class()

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
        seconds = [0.0] * len(reqs)
        if all(row.done for row in rows):  # nothing to generate (contexts that fill the model's): no prefill
            return [Result([], False, 0.0) for _ in reqs]
        batch = _Batch(self, [r.context for r in reqs])
        while True:
            live = [k for k, row in enumerate(rows) if not row.done]
            if len(live) < len(rows):
                batch.select(live)
                rows = [rows[k] for k in live]
            if not rows:
                break
            sampled = self._sample(batch, [reqs[row.item].stream[len(row.tokens)] for row in rows])
            for row, tok in zip(rows, sampled, strict=True):
                req = reqs[row.item]
                if tok in req.stop_ids:
                    stopped[row.item], row.done = True, True
                else:
                    row.tokens.append(tok)
                    row.feed = tok
                    row.done = len(row.tokens) >= req.max_new
                if row.done:
                    seconds[row.item] = time.perf_counter() - t0
            bar.update(len(rows))
            feeding = [k for k, row in enumerate(rows) if not row.done]
            if not feeding:
                break
            batch.select(feeding)
            rows = [rows[k] for k in feeding]
            batch.step([row.feed for row in rows])
        self._account(t0, sum(len(g) for g in gens))
        return [Result(g, s, t) for g, s, t in zip(gens, stopped, seconds, strict=True)]

    # ---- budget sweep with forks ------------------------------------------------------------------------------------
    def run_sweep(self, plan, on_done=None) -> list:
        """All budgets of every item in one decode loop (module docstring). ``on_done(i, outcome)`` is called as soon
        as item i has its thinking and every answer it needs. Waiting items join the batch (continuous batching)
        whenever it has dropped to half of ``batch_size`` rows."""
        from collections import deque

        from tqdm import tqdm

        from prunetts.generation.budget_forcing import Cut
        from prunetts.generation.sweep import Outcome

        t0 = time.perf_counter()
        outcomes = [Outcome() for _ in plan.items]
        pending = [1] * len(plan.items)  # open rows per item (its thinking row, then one per answer)
        ignores = [plan.num_ignore] * len(plan.items)
        queue = deque(sorted(range(len(plan.items)), key=lambda i: (len(plan.items[i].context), i)))
        b_max, cut_points = plan.budgets[-1], set(plan.budgets[:-1])
        bar = tqdm(
            total=len(plan.items) * b_max,
            desc=f"sweep (B<={b_max})",
            unit="tok",
            disable=not self.progress,
            mininterval=2.0,
        )
        rows: list[_Row] = []
        batch: _Batch | None = None
        n_tokens = 0

        def think_token(row, tok, k, forks):
            """Append a thinking token; fork at smaller budgets; the largest budget turns the row into an answer."""
            out = outcomes[row.item]
            out.thinking.append(tok)
            row.feed = tok
            n = len(out.thinking)
            if n in cut_points:
                closing = plan.closing(out.thinking, True)
                cap = answer_cap(row, n, closing)
                fork = _Row(row.item, "answer", Cut(n, True), closing, feed=tok, t0=now, cap=cap)
                forks.append((k, fork))
                pending[row.item] += 1
            elif n == b_max:
                row.mode, row.cut, row.forced = "answer", Cut(n, True), plan.closing(out.thinking, True)
                row.cap = answer_cap(row, n, row.forced)
                out.think_seconds, row.t0 = now - row.t0, now

        def answer_cap(row, n_thinking, closing):
            return plan.answer_cap(len(plan.items[row.item].context) + n_thinking + len(closing))

        try:
            while rows or queue:
                if queue and (batch is None or (len(rows) <= self.batch_size // 2 and batch.can_merge())):
                    take = [queue.popleft() for _ in range(min(len(queue), self.batch_size - len(rows)))]
                    fresh = _Batch(self, [plan.items[i].context for i in take])
                    batch = fresh if batch is None else batch.merge(fresh)
                    rows += [_Row(i, "think", t0=time.perf_counter()) for i in take]
                u = []
                for row in rows:
                    it = plan.items[row.item]
                    if row.forced:
                        u.append(0.0)
                    elif row.mode == "think":
                        u.append(it.think_stream[len(outcomes[row.item].thinking)])
                    else:
                        u.append(it.answer_stream[len(row.tokens)])
                sampled = self._sample(batch, u)
                now = time.perf_counter()
                keep, forks = [], []
                for k, (row, tok) in enumerate(zip(rows, sampled, strict=True)):
                    out = outcomes[row.item]
                    if row.mode == "think":
                        if row.forced:  # the "Wait" extension's tokens are thinking tokens
                            think_token(row, row.forced.pop(0), k, forks)
                        elif tok in plan.think_stop and ignores[row.item] > 0:
                            ignores[row.item] -= 1
                            out.wait_at.append(len(out.thinking))
                            row.forced = list(plan.ignore_ids)
                            think_token(row, row.forced.pop(0), k, forks)
                        elif tok in plan.think_stop:  # stopped by itself: this answer serves every budget > L
                            out.stopped = True
                            row.mode, row.cut = "answer", Cut(len(out.thinking), False)
                            row.forced = plan.closing(out.thinking, False)
                            row.cap = answer_cap(row, len(out.thinking), row.forced)
                            row.feed = row.forced.pop(0)
                            out.think_seconds, row.t0 = now - row.t0, now
                        else:
                            n_tokens += 1
                            think_token(row, tok, k, forks)
                    elif row.forced:
                        row.feed = row.forced.pop(0)
                    elif row.cap <= 0:  # the context is full: no answer token fits (two_phase: a request for 0)
                        row.done = True
                    elif tok in plan.answer_stop:
                        row.done = row.stopped = True
                    else:
                        row.tokens.append(tok)
                        n_tokens += 1
                        row.feed = tok
                        row.done = len(row.tokens) >= row.cap
                    if row.done:
                        out.answers[row.cut] = row.tokens
                        out.answer_stopped[row.cut] = row.stopped
                        out.answer_seconds[row.cut] = now - row.t0
                        pending[row.item] -= 1
                        if pending[row.item] == 0 and on_done is not None:
                            on_done(row.item, out)
                    else:
                        keep.append(k)
                bar.update(sum(1 for r in rows if r.mode == "think"))
                rows = [rows[k] for k in keep] + [f for _, f in forks]
                if not rows:
                    batch = None
                    continue
                batch.select(keep + [k for k, _ in forks])
                batch.step([row.feed for row in rows])
        finally:  # an out-of-memory error (sweep._fork_sweep goes on) still counts what was decoded
            bar.close()
            self._account(t0, n_tokens)
        return outcomes

    # ---- bookkeeping ------------------------------------------------------------------------------------------------
    def shrink_batch(self) -> bool:
        """After an out-of-memory error (``sweep._fork_sweep``): hand the failed batch's freed memory back to the
        device and halve the batch size; False (nothing changed) at batch size 1."""
        import gc

        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size <= 1:
            return False
        self.batch_size //= 2
        return True

    def _account(self, t0: float, tokens: int) -> None:
        self.generated_tokens += tokens
        self.decode_seconds += time.perf_counter() - t0
