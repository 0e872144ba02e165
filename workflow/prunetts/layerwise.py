"""Run a decoder stack one layer at a time from a safetensors checkpoint (Wanda's layer-wise calibration pass).

The model is built on the meta device; only the embedding (for the inputs of layer 0) and one decoder layer at a
time are materialized. A first pass with every decoder layer replaced by a recorder captures, for each layer, the
exact keyword arguments the model's own forward passes to it (causal / sliding masks, rotary position embeddings,
position ids), so nothing architecture-specific is re-implemented here: the same code serves Qwen2, Qwen3 and Llama.
The calibration hidden states then flow layer by layer through a buffer on the compute device, as in Wanda's
``prune_wanda``.
"""

from __future__ import annotations

import contextlib
import functools
import logging

from prunetts.checkpoint import Reader
from prunetts.models import ModelError, check_weights, meta_model, resolve_device, resolve_dtype

log = logging.getLogger(__name__)

_KEEP_KWARGS = ("attention_mask", "position_embeddings", "position_ids")


def exact_cast(src, dst) -> bool:
    """Whether every value of dtype ``src`` is representable in ``dst`` (the round trip src -> dst -> src is exact)."""
    import torch

    wider = {
        torch.float32: {torch.float64},
        torch.bfloat16: {torch.float32, torch.float64},
        torch.float16: {torch.float32, torch.float64},
    }
    return src == dst or dst in wider.get(src, ())


def _recorders(runner, n: int):
    """Modules standing in for the decoder layers: record each layer's inputs, pass the hidden states through."""
    import torch

    class Recorder(torch.nn.Module):
        def __init__(self, index):
            super().__init__()
            self.index = index

        def forward(self, hidden_states, **kwargs):
            kw = {k: kwargs.get(k) for k in _KEEP_KWARGS}
            runner._kwargs.setdefault(self.index, {})[hidden_states.shape[0]] = kw
            if self.index == 0:
                runner._first_inputs.append(hidden_states)
            return hidden_states

    return torch.nn.ModuleList([Recorder(i) for i in range(n)])


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library, another OS)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Give the memory of the layer just freed back to the OS. A decoder layer's tensors below glibc's (adaptive, up
    to 32 MB) mmap threshold live in malloc's heaps, which fragment from layer to layer and are not returned: over
    Qwen3-8B's 36 layers a CPU capture kept ~3 GB it no longer used (peak RSS 4.7 GB, 1.6 GB with this;
    bench/RESULTS.md, (b) at Qwen3-8B's shape)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class LayerRunner:
    def __init__(self, reader: Reader, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False):
        self.reader = reader
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.config, self.model, self.arch = meta_model(str(reader.dir), trust_remote_code)
        check_weights(reader.dir, self.model)  # before any layer is read: one line, not a state_dict traceback
        self.n_layers = len(self.arch.layers(self.model))
        self._kwargs: dict[int, dict[int, dict]] = {}
        self._first_inputs: list = []
        self.source_dtypes: dict[str, object] = {}
        # the loaded layer's tensors as stored, kept only when the compute dtype would round them (e.g. an fp32 or
        # fp16 checkpoint computed in bf16 on GPU): masks are then scored on, and applied to, these
        self._source: dict | None = None

    # ---- weights -------------------------------------------------------------------------------------------------
    def load_layer(self, i: int):
        """Materialize decoder layer ``i`` on the compute device in the compute dtype."""
        prefix = f"model.layers.{i}."
        tensors = self.reader.load(self.reader.layer_names(i))
        self.source_dtypes.update({n: t.dtype for n, t in tensors.items()})
        # copy=True: tensors read from safetensors are views of a private file mapping, where every first write to a
        # page (pruning) or first read (the forward) faults; one bulk copy is several times cheaper
        state = {n[len(prefix) :]: t.to(self.device, self.dtype, copy=True) for n, t in tensors.items()}
        exact = all(exact_cast(t.dtype, self.dtype) for t in tensors.values())
        self._source = None if exact else {n[len(prefix) :]: t for n, t in tensors.items()}
        layer = self.arch.layers(self.model)[i]
        layer.load_state_dict(state, strict=True, assign=True)
        return layer.eval()

    def unload_layer(self, i: int) -> None:
        self.arch.layers(self.model)[i].to("meta")
        self._source = None
        release_freed_memory()

    def scoring_weight(self, name: str, linear):
        """The weight of prunable linear ``name`` of the loaded layer at the checkpoint's precision, on the compute
        device: the linear's own weight, or (when the compute dtype rounds) the stored one in float32."""
        import torch

        if self._source is None:
            return linear.weight
        return self._source[name + ".weight"].to(self.device, torch.float32)

    def prune(self, name: str, linear, mask) -> int:
        """Zero ``mask`` (True = prune) in the linear's weight and, when kept, in the stored weight that will be
        written; returns the number of zeros in the written weight."""
        from prunetts.pruning.masks import apply_mask, count_zeros

        apply_mask(linear.weight, mask)
        if self._source is None:
            return count_zeros(linear.weight)
        key = name + ".weight"
        stored = self._source[key].clone()  # a view of the checkpoint file until here
        apply_mask(stored, mask.to("cpu"))
        self._source[key] = stored
        return count_zeros(stored)

    def layer_tensors(self, i: int, layer) -> dict:
        """The layer's tensors under their checkpoint names in the checkpoint's dtypes: cast back from the compute
        dtype where that is exact, else the stored tensors themselves (pruned through ``prune``)."""
        prefix = f"model.layers.{i}."
        if self._source is not None:
            return {prefix + k: v for k, v in self._source.items()}
        return {prefix + k: v.detach().to("cpu", self.source_dtypes[prefix + k]) for k, v in layer.state_dict().items()}

    # ---- activations ---------------------------------------------------------------------------------------------
    def _embedding_name(self) -> str:
        name = "model.embed_tokens.weight"
        if name not in self.reader.files and getattr(self.config, "tie_word_embeddings", False):
            name = "lm_head.weight"  # a tied checkpoint may store the shared table under this name only
        return name

    def check_windows(self, windows: list[list[int]]) -> None:
        """One line for a calibration window with a token id outside the embedding table (the lookup itself fails
        with a bare IndexError). The model's own tokenizer cannot produce one: the windows were tokenized for
        another model, or the file was edited. Reads only the table's shape."""
        from prunetts.calibration import CalibrationError

        rows = self.reader.layout([self._embedding_name()])[0][2][0]
        for n, w in enumerate(windows):
            if w and (min(w) < 0 or max(w) >= rows):
                bad = next(t for t in w if not 0 <= t < rows)
                raise CalibrationError(
                    f"calibration window {n}: token id {bad} is outside the embedding table of {self.reader.dir} "
                    f"({rows} rows): the windows were tokenized for another model; recompute them with this model's "
                    "tokenizer"
                )

    def embed(self, windows: list[list[int]], batch_size: int):
        """Inputs of layer 0 for every window, ``[N, T, H]`` on the compute device; records each layer's kwargs."""
        import torch

        decoder = self.arch.decoder(self.model)
        embed_name = self._embedding_name()
        norm_name = "model.norm.weight"
        tensors = self.reader.load([embed_name, norm_name])
        # the table stays in its stored dtype and only the looked-up rows are cast (the same values as casting the
        # table, then gathering): an fp32 copy of Qwen3-8B's table is 2.5 GB, the largest allocation of a CPU prune
        decoder.embed_tokens.load_state_dict({"weight": tensors[embed_name].to(self.device)}, assign=True)
        decoder.norm.load_state_dict({"weight": tensors[norm_name].to(self.device, self.dtype)}, assign=True)
        decoder.rotary_emb = type(decoder.rotary_emb)(config=self.config).to(self.device)
        real_layers = decoder.layers
        decoder.layers = _recorders(self, self.n_layers)
        try:
            with torch.inference_mode():
                for start in range(0, len(windows), batch_size):
                    ids = torch.tensor(windows[start : start + batch_size], device=self.device)
                    decoder(inputs_embeds=decoder.embed_tokens(ids).to(self.dtype), use_cache=False)
        finally:
            decoder.layers = real_layers
            decoder.embed_tokens.to("meta")
            decoder.norm.to("meta")
        hidden = torch.cat(self._first_inputs).to(self.dtype)
        self._first_inputs = []
        self.batch_size = batch_size
        return hidden

    def forward(self, i: int, layer, hidden, out=None):
        """Run layer ``i`` over all windows; writes into ``out`` (may be ``hidden``: windows are independent, so each
        batch is read before it is overwritten), or a new buffer if None; ``out=False`` discards the outputs."""
        import torch

        keep = out is not False
        if keep and out is None:
            out = torch.empty_like(hidden)
        with torch.inference_mode():
            for start in range(0, hidden.shape[0], self.batch_size):
                h = hidden[start : start + self.batch_size]
                o = layer(h, **self._kwargs[i][h.shape[0]])
                o = o[0] if isinstance(o, tuple) else o
                self._after_batch(i, h, o)  # before the write: ``out`` may be ``hidden`` itself
                if keep:
                    out[start : start + h.shape[0]] = o
        return out if keep else None

    def _after_batch(self, i, h, o) -> None:
        """Hook for subclasses (capture computes the input/output cosine here)."""


@contextlib.contextmanager
def output_skipped(linear):
    """Within the block, ``linear`` returns a broadcast zero instead of multiplying (its forward hooks still see
    the real input). For a statistics-only pass whose layer output is discarded: skipping the layer's output
    projection saves about a quarter of that pass's matmul FLOPs and changes no statistic."""

    def zero(x):
        return x.new_zeros(()).expand(*x.shape[:-1], linear.out_features)

    linear.forward = zero  # an instance attribute shadows the class's forward; hooks run around it as usual
    try:
        yield linear
    finally:
        del linear.forward


@contextlib.contextmanager
def input_sq_norms(linears: dict):
    """Accumulate, per linear, the sum over tokens of the squared input activation per channel: each batch in float32
    (as the reference Wanda), summed over batches in float64. Linears fed the same tensor (q/k/v, gate/up) share one
    computation, and the sum over tokens is a matrix-vector product, several times faster on CPU than a reduction
    over the token dimension."""

    sums = {name: None for name in linears}
    counts = dict.fromkeys(linears, 0)
    hooks = []
    last: dict = {"x": None, "s": None}

    def make(name):
        def hook(_m, inputs, _o):
            x = inputs[0]
            if last["x"] is not x:
                sq = x.detach().reshape(-1, x.shape[-1]).float().square()
                last["x"], last["s"] = x, (sq.new_ones(1, sq.shape[0]) @ sq).squeeze(0).double()
            s = last["s"]
            sums[name] = s.clone() if sums[name] is None else sums[name] + s
            counts[name] += x.numel() // x.shape[-1]

        return hook

    for name, lin in linears.items():
        hooks.append(lin.register_forward_hook(make(name)))
    try:
        yield sums, counts
    finally:
        last.clear()  # do not keep the last activation alive
        for h in hooks:
            h.remove()


def check_finite_stats(sums: dict, layer: int, dtype=None, what: str = "Wanda") -> None:
    """Raise one line naming the first linear of ``layer`` whose input statistic (``input_sq_norms``) is inf/NaN.
    Such a statistic is no error to the scoring: a NaN score is never among the k smallest and an inf one always
    last, so Wanda would silently prune (almost) nothing there and OWL would count no outlier. ``dtype``: the compute
    dtype that produced the activations, when known (float16 overflows where bfloat16 and float32 do not)."""
    import torch

    for name, s in sums.items():
        if s is not None and not torch.isfinite(s).all():
            where = f"{what}: layer {layer} {name}: the input activations are inf/NaN"
            setting = "bfloat16 or float32 (capture.dtype, CLI --dtype)"
            if dtype == torch.float16:
                fix = f"(float16 overflow); compute in {setting} instead"
            elif dtype is None:  # statistics from a stored capture
                fix = f"(a float16 overflow, or inf/NaN weights); recompute the capture in {setting}"
            else:
                fix = f"even in {str(dtype).removeprefix('torch.')}; check the checkpoint's weights for inf/NaN"
            raise ModelError(f"{where} {fix}")
