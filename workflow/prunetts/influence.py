"""LayerIF per-layer, per-component influence scores computed with DataInf.

Algorithm: LayerIF (Askari et al., NeurIPS 2025, arXiv 2505.23811) restricts the influence function of a training
example to one parameter group, here (decoder layer l, component c in {attention, mlp}), and approximates the
inverse-Hessian-vector product with DataInf (Kwon et al., ICLR 2024, arXiv 2310.00902; ``ykwon0407/DataInf``
``src/influence.py``). For one group with per-example training gradients g_1..g_n (dimension d)
and the mean validation gradient v:

    lambda = (1/(n d)) sum_i ||g_i||^2 / 10                      (DataInf damping: mean g^2 entry / 10)
    h      = (1/(n lambda)) sum_i [ v - (v.g_i)/(lambda + ||g_i||^2) g_i ]   (~ (H + lambda I)^-1 v)
    DataInf influence of example k = -h.g_k;  LayerIF score_k = +h.g_k  (sign inverted: positive = beneficial)

Everything follows from the Gram matrix K_ij = g_i.g_j and u_i = v.g_i: with c_i = u_i / (lambda + K_ii),
``h.g_k = (n u_k - sum_i c_i K_ik) / (n lambda)``, so h is never formed. The (projected) per-example gradients of one
call are kept in float32 (memory ~ n x group size); the algebra runs in float64.

Deviations from the papers (all deliberate; LayerIF's own IF code is not released):
- Gradients are taken w.r.t. the raw weights of the block's prunable linears (attention = self_attn.{q,k,v,o}_proj,
  mlp = mlp.{gate,up,down}_proj; no biases or norms), not w.r.t. LoRA adapters as DataInf assumes; LayerIF does not
  say which parameters it differentiates.
- Loss of one example = mean next-token NLL over all tokens of its text (no prompt masking), tokenized without
  special tokens and cut to ``max_len`` tokens; gradients per example (batch size 1), model in eval mode (no dropout).
- Optional random projection (``projection_dim`` p > 0) to bound memory on large models: each weight gradient G (out x
  in) becomes a CountSketch of p entries, entry (i, j) added with sign s1(i) s2(j) to bucket (h1(i) + h2(j)) mod p
  (TensorSketch's hash, Pham & Pagh 2013), seeded per (seed, layer, module) so training and validation gradients share
  one sketch; a matrix of at most p entries stays exact. The signs make every sketched inner product, so K, u and
  sum_i ||g_i||^2, an unbiased estimate of the exact one, with variance O(||g_i||^2 ||g_j||^2 / p); lambda keeps d =
  the unprojected group size, so it estimates the exact damping. (With d = the projected size lambda would grow by
  d_full / d_proj, which rescales each group's scores by a different factor for attention and MLP; on the tiny test
  models that dropped the Pearson correlation with exact scores from >= 0.9 to as low as 0.1.) The sketch before
  impl_version 3, the Kronecker product P1 G P2^T of two Gaussian maps of side sqrt(p), has variance O(1/sqrt(p))
  instead for the low-rank gradients of a text (sum of one outer product per token): at p = 4096 the per-example
  scores of ``bench/layerif_sketch.py``'s models ranked clearly worse than with the CountSketch of the same size
  (README). p = 0 is exact. Autograd is asked for no weight gradient: each linear's G = D^T X comes from its token
  factors, the inputs X and the loss gradient D w.r.t. the outputs, and a sketch of G is taken without forming G
  (TensorSketch's FFT construction; ``_project``); the backward pass skips the weight gradients' matmuls (a third of
  its work) and never holds every weight's gradient at once.
- One DataInf group per (layer, component): the damping lambda and the rank-one inverse are taken over the
  concatenated gradients of q,k,v,o (or gate,up,down), LayerIF's H^(l) restricted to the block's component, where
  DataInf's own code would damp and invert each weight matrix separately and sum the per-matrix terms.
- Scores are kept per (layer, component, example) as the TTS-Pruning pickles store them, not summed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import random

COMPONENTS = {"attention": "self_attn.", "mlp": "mlp."}
INFLUENCE_FIELD = "influence.text_field, CLI --influence-text-field"


def split_texts(texts: list[str], n_train: int, n_val: int, seed: int) -> tuple[list[str], list[str]]:
    """Disjoint random train and validation subsets of ``texts``' distinct texts (a repeated text would otherwise land
    on both sides), drawn with ``random.Random(seed)``."""
    if n_train < 1 or n_val < 1:
        raise ValueError(f"LayerIF needs n_train >= 1 and n_val >= 1 (got {n_train}, {n_val})")
    from prunetts.records import InputFileError

    texts = list(dict.fromkeys(texts))
    if len(texts) < n_train + n_val:
        raise InputFileError(
            f"LayerIF needs {n_train} + {n_val} distinct texts for disjoint train/validation, got {len(texts)}: give "
            "more texts (influence.train_source, CLI --influence-train) or fewer (influence.n_train / n_val, CLI "
            "--n-train / --n-val)"
        )
    idx = random.Random(seed).sample(range(len(texts)), n_train + n_val)
    return [texts[i] for i in idx[:n_train]], [texts[i] for i in idx[n_train:]]


def split_calibration_texts(texts: list[str], n_train: int, n_val: int, seed: int) -> tuple[list[str], list[str]]:
    """Disjoint splits of a corpus (by default the calibration texts). A corpus smaller than n_train + n_val (e.g. a
    small local file) is split 3:1 instead of failing, with a warning. Repeated texts count once."""
    from prunetts.records import InputFileError

    texts = list(dict.fromkeys(texts))
    if len(texts) < 2:  # no split can help: "fewer texts" (n_train / n_val >= 1) is no fix
        raise InputFileError(
            f"LayerIF needs at least 2 distinct texts (one to train on, one to validate with), got {len(texts)}: give "
            "more texts (influence.train_source, CLI --influence-train, or more calibration texts)"
        )
    if len(texts) < n_train + n_val:
        n_val_new = max(1, min(n_val, len(texts) // 4))
        n_train_new = max(1, min(n_train, len(texts) - n_val_new))
        logging.getLogger(__name__).warning(
            "only %d texts: LayerIF uses %d train / %d validation texts instead of %d / %d",
            len(texts),
            n_train_new,
            n_val_new,
            n_train,
            n_val,
        )
        n_train, n_val = n_train_new, n_val_new
    return split_texts(texts, n_train, n_val, seed)


def influence_texts(
    train_source: str | None,
    val_source: str | None,
    text_field: str,
    n_train: int,
    n_val: int,
    seed: int,
    calibration: tuple[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Training and validation texts for LayerIF, never the same text on both sides. ``text_field`` is the column
    of the ``train_source`` / ``val_source`` files; ``calibration`` = (source, its text field), the pool used when
    there is no ``train_source`` (a C4 calibration and a reasoning file with another column name can go together):

    - no validation source: disjoint random splits of the training source (the calibration texts when that is not
      given either), so a training file alone also yields its own held-out validation texts;
    - a validation source: its first ``n_val`` distinct texts, and the first ``n_train`` distinct texts of the
      training source (or of the calibration texts) that are not among them (a warning says how many were skipped,
      and another when fewer than ``n_train`` remain). Repeated texts count once, as in the split.
    """
    from prunetts.calibration import CALIBRATION_FIELD, load_texts

    if train_source is None and calibration is None:
        raise ValueError("LayerIF: no training texts (neither a training source nor the calibration texts)")
    # a field error names the setting that fixes it: the influence files' own, or the calibration texts'
    if train_source is not None:
        pool, pool_field = (train_source, text_field), INFLUENCE_FIELD
    else:
        pool, pool_field = calibration, CALIBRATION_FIELD
    if val_source is None:
        return split_calibration_texts(load_texts(*pool, field_setting=pool_field), n_train, n_val, seed)
    # a repeated text would count twice in the influence sums (the split path collapses repeats too)
    val = list(dict.fromkeys(load_texts(val_source, text_field, field_setting=INFLUENCE_FIELD)))[:n_val]
    held_out = set(val)
    candidates = dict.fromkeys(load_texts(*pool, field_setting=pool_field))
    train, skipped = [], 0
    for t in candidates:
        if len(train) == n_train:
            break
        if t in held_out:
            skipped += 1
        else:
            train.append(t)
    log = logging.getLogger(__name__)
    if skipped:
        log.warning("LayerIF: skipped %d training texts that are also validation texts", skipped)
    if not train:
        raise ValueError(f"LayerIF: every training text is also a validation text ({val_source}); give other texts")
    if len(train) < n_train or len(val) < n_val:
        log.warning(
            "LayerIF: %d training and %d validation texts, not the %d and %d asked for (influence.n_train / n_val): "
            "the sources hold no more distinct texts",
            len(train), len(val), n_train, n_val,
        )  # fmt: skip
    return train, val


def aggregate_positive(rows: list[dict]) -> dict[tuple[int, str], float]:
    """LayerIF "+VE" aggregation: S(l, c) = sum over examples of max(influence, 0)."""
    out: dict[tuple[int, str], float] = {}
    for r in rows:
        key = (int(r["layer"]), str(r["component"]))
        out[key] = out.get(key, 0.0) + max(float(r["influence"]), 0.0)
    return out


def _groups(model) -> list[tuple[int, str, list[tuple[str, object]]]]:
    """``[(layer, component, [(module name, weight)])]`` in (layer, component) order."""
    from prunetts.models import Arch

    arch = Arch.of(model)
    groups = []
    for li, layer in enumerate(arch.layers(model)):
        linears = arch.prunable_linears(layer)
        for comp, prefix in sorted(COMPONENTS.items()):
            mods = [(name, lin.weight) for name, lin in sorted(linears.items()) if name.startswith(prefix)]
            if not mods:
                raise ValueError(f"layer {li} has no {comp} linears (expected names starting with {prefix!r})")
            groups.append((li, comp, mods))
    return groups


def _scored_groups(model, layers: list[int] | None):
    """``_groups`` of the decoder layers ``layers`` (all when None)."""
    groups = _groups(model)
    if layers is None:
        return groups
    unknown = sorted(set(layers) - {li for li, _c, _m in groups})
    if unknown:
        raise ValueError(f"LayerIF: no decoder layer {unknown[0]} (the model has {len(groups) // 2})")
    return [g for g in groups if g[0] in set(layers)]


def _sketch_seed(seed: int, layer: int, module: str) -> int:
    # stable across processes and Python versions (unlike hash())
    digest = hashlib.sha256(f"{seed}/{layer}/{module}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


SKETCHES = ("countsketch", "kronecker")


def _sketches(groups, projection_dim: int, seed: int, device, kind: str = "countsketch") -> dict:
    """Per (layer, module) the random parts of its gradient's sketch, generated on CPU (device-independent values):
    ``countsketch``: (h1, s1, h2, s2), row and column buckets in [0, p) and signs, or None when the matrix has at
    most p entries (kept exact); ``kronecker``: (P1, P2), Gaussian, a = b = ceil(sqrt(p)) capped by the matrix."""
    import torch

    if kind not in SKETCHES:
        raise ValueError(f"unknown gradient sketch {kind!r} (expected one of {SKETCHES})")
    side = math.ceil(math.sqrt(projection_dim))
    out = {}
    for li, _comp, mods in groups:
        for name, w in mods:
            n_out, n_in = w.shape
            g = torch.Generator().manual_seed(_sketch_seed(seed, li, name))
            if kind == "kronecker":
                a, b = min(side, n_out), min(side, n_in)
                p1 = torch.randn(a, n_out, generator=g, dtype=torch.float32) / math.sqrt(a)
                p2 = torch.randn(b, n_in, generator=g, dtype=torch.float32) / math.sqrt(b)
                out[(li, name)] = (p1.to(device), p2.to(device))
            elif n_out * n_in <= projection_dim:
                out[(li, name)] = None
            else:
                h1 = torch.randint(projection_dim, (n_out,), generator=g)
                h2 = torch.randint(projection_dim, (n_in,), generator=g)
                s1 = torch.randint(2, (n_out,), generator=g).float() * 2 - 1
                s2 = torch.randint(2, (n_in,), generator=g).float() * 2 - 1
                out[(li, name)] = tuple(t.to(device) for t in (h1, s1, h2, s2))
    return out


def token_ids(tokenizer, texts: list[str], max_len: int, what: str) -> list[list[int]]:
    """Each text's token ids, cut to ``max_len``; a text under 2 tokens is the user's file's problem (one line)."""
    from prunetts.records import InputFileError

    out = []
    for t in texts:  # the texts after the split: a position here is no record number, the text names itself
        ids = tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"][:max_len]
        if len(ids) < 2:
            raise InputFileError(
                f"LayerIF: the {what} text {t[:40]!r} has {len(ids)} token(s); the next-token loss needs at least 2: "
                "remove or lengthen it"
            )
        out.append(ids)
    return out


def check_texts(tokenizer, train: list[str], val: list[str], max_len: int, sources: tuple[str, str] | None = None):
    """Tokenize both sides once before any model is loaded, so a text too short for the next-token loss is one line
    now (prefixed with its side's ``sources`` entry when given: where the user set those texts), not after the load."""
    from prunetts.records import InputFileError

    for texts, what, source in zip((train, val), ("training", "validation"), sources or (None, None), strict=True):
        try:
            token_ids(tokenizer, texts, max_len, what)
        except InputFileError as e:
            if source is None:
                raise
            raise ValueError(f"{source}: {e}") from None


def _text_loss(model, ids: list[int], device):
    """One example's loss: mean next-token NLL over all tokens of its text (batch of one, logits in float32)."""
    import torch
    import torch.nn.functional as F

    x = torch.tensor([ids], device=device)
    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits[0, :-1].float(), x[0, 1:])


def compute_influence(
    model,
    tokenizer,
    train_texts: list[str],
    val_texts: list[str],
    max_len: int = 512,
    projection_dim: int = 0,
    seed: int = 0,
    progress: bool = True,
    layers: list[int] | None = None,
    sketch: str = "countsketch",
) -> list[dict]:
    """LayerIF scores: one row ``{layer, component, example, influence}`` per (layer, component, training example).

    ``influence`` has the LayerIF sign (positive = the example lowers the validation loss); rows are sorted by
    (layer, component, example). ``projection_dim`` 0 = exact gradients, else the CountSketch (module docstring).
    ``layers``: score only these decoder layers (``bench/layerif_sketch.py``: exact gradients of a few layers of a
    large model); a group's scores do not depend on which other groups are scored. ``sketch``: ``countsketch``, or
    ``kronecker``, the sketch before influence impl_version 3, kept for ``bench/layerif_sketch.py``'s comparison.
    """
    import torch
    from tqdm import tqdm

    if not train_texts or not val_texts:
        raise ValueError(f"LayerIF needs training and validation texts (got {len(train_texts)}, {len(val_texts)})")
    if projection_dim < 0:
        raise ValueError(f"projection_dim must be >= 0 (0 = exact), got {projection_dim}")
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2, got {max_len}")

    groups = _scored_groups(model, layers)
    device = next(model.parameters()).device
    sketches = _sketches(groups, projection_dim, seed, device, sketch) if projection_dim else {}
    weights = [w for _li, _c, mods in groups for _n, w in mods]
    train_ids = token_ids(tokenizer, train_texts, max_len, "training")
    val_ids = token_ids(tokenizer, val_texts, max_len, "validation")

    with _differentiating(model, weights), _linear_io(model, groups) as (inputs, outputs):

        def group_grads(ids):
            """Per-group flattened (projected) gradient of one example's mean NLL, float32 vectors on ``device``."""
            loss = _text_loss(model, ids, device)
            keys = list(outputs)
            # only the linears' outputs are asked for: autograd skips the weight gradients (a third of the backward's
            # matmuls) and never holds a gradient of every weight at once (Qwen3-8B: 15 GB in bf16); each weight
            # gradient D^T X is then sketched from its factors
            grads = dict(zip(keys, torch.autograd.grad(loss, [outputs[k] for k in keys]), strict=True))
            out = [
                torch.cat(
                    [
                        _project(inputs[(li, n)], grads[(li, n)][0], sketches.get((li, n)), projection_dim)
                        for n, _w in mods
                    ]
                )
                for li, _c, mods in groups
            ]
            inputs.clear()
            outputs.clear()
            return out

        v = None  # sum of validation gradients per group, float64
        for ids in tqdm(val_ids, desc="LayerIF validation grads", disable=not progress):
            gs = group_grads(ids)
            v = [g.double() for g in gs] if v is None else [a + g.double() for a, g in zip(v, gs, strict=True)]
        v = [a / len(val_ids) for a in v]

        n = len(train_ids)
        store = None  # per group: (n, d) float32 on CPU, the only O(n x d) memory
        for k, ids in enumerate(tqdm(train_ids, desc="LayerIF train grads", disable=not progress)):
            gs = group_grads(ids)
            if store is None:
                store = [torch.empty(n, g.numel(), dtype=torch.float32) for g in gs]
            for s, g in zip(store, gs, strict=True):
                s[k] = g.detach().cpu()

    scores = [
        _datainf_scores(gmat, vg.cpu(), _size(mods)) for (*_, mods), gmat, vg in zip(groups, store, v, strict=True)
    ]
    return _rows(groups, scores)


# ---- gradients from token factors -----------------------------------------------------------------------------
# A text's gradient for a linear y = x W^T is G = D^T X, D = dL/dy [T, out], X the inputs [T, in]: a sum of T outer
# products. Both sketches are computed from these factors without forming G (CountSketch: the circular convolution
# of the factors' count sketches, as TensorSketch computes it; Kronecker: (P1 D^T)(X P2^T)), and exact inner products
# need no G either (<G_i, G_j> = sum((D_i D_j^T) * (X_i X_j^T))). compute_influence sketches each text's factors as
# they come; token_factors keeps them (T x (in + out) per linear instead of out x in: Qwen3-8B, 6x less at 512
# tokens), so that one backward pass serves every sketch size and seed: bench/layerif_sketch.py measures sketches
# against exact gradients this way on models whose exact gradients do not fit.


@contextlib.contextmanager
def _linear_io(model, groups):
    """Forward hooks on the scored linears: during each forward pass, ``inputs[(layer, module)]`` gets the linear's
    input X [T, in] (batch row 0, detached) and ``outputs[...]`` its output y (in the graph); the caller clears both
    after each text. Linears fed the same tensor (q/k/v, gate/up) share one X."""
    from prunetts.models import Arch

    wanted = {li for li, _c, _m in groups}
    arch = Arch.of(model)
    linears = {
        (li, name): lin
        for li, layer in enumerate(arch.layers(model))
        if li in wanted
        for name, lin in arch.prunable_linears(layer).items()
    }
    inputs: dict = {}
    outputs: dict = {}
    last: dict = {"x": None, "X": None}  # the previous linear's input: q/k/v and gate/up run one after another

    def make(key):
        def hook(_m, args, y):
            if key in outputs:
                raise RuntimeError(f"linear {key} ran twice in one forward pass")
            if args[0] is not last["x"]:
                last["x"], last["X"] = args[0], args[0].detach()[0]
            inputs[key], outputs[key] = last["X"], y

        return hook

    hooks = [lin.register_forward_hook(make(key)) for key, lin in linears.items()]
    try:
        yield inputs, outputs
    finally:
        for h in hooks:
            h.remove()
        last.clear()


def token_factors(
    model, tokenizer, texts: list[str], max_len: int = 512, layers: list[int] | None = None, progress: bool = True
) -> list[dict]:
    """Per text, ``{(layer, module): (X, D)}`` for every prunable linear of the scored layers: X the linear's inputs
    [T, in], D the gradient of the text's loss (``_text_loss``, as in ``compute_influence``) w.r.t. its outputs
    [T, out], float32 on CPU. Linears fed the same tensor (q/k/v, gate/up) share one X object."""
    import torch
    from tqdm import tqdm

    groups = _scored_groups(model, layers)
    weights = [w for _li, _c, mods in groups for _n, w in mods]
    device = next(model.parameters()).device
    out = []
    with _differentiating(model, weights), _linear_io(model, groups) as (inputs, outputs):
        for ids in tqdm(token_ids(tokenizer, texts, max_len, "factor"), desc="LayerIF factors", disable=not progress):
            loss = _text_loss(model, ids, device)
            keys = list(outputs)
            grads = torch.autograd.grad(loss, [outputs[k] for k in keys])
            copies: dict = {}  # one CPU copy per distinct input
            for k in keys:
                x = inputs[k]
                copies.setdefault(id(x), x.float().cpu())
            out.append({k: (copies[id(inputs[k])], g[0].float().cpu()) for k, g in zip(keys, grads, strict=True)})
            inputs.clear()
            outputs.clear()
    return out


def factored_influence(
    groups,
    train: list[dict],
    val: list[dict],
    projection_dim: int = 0,
    seed: int = 0,
    sketch: str = "countsketch",
    device="cpu",
) -> list[dict]:
    """``compute_influence``'s rows from ``token_factors`` of the training and validation texts (``groups``:
    ``_groups`` of the model, restricted to the scored layers); the products run on ``device``, the factors stay
    where they are (CPU)."""
    import torch

    if projection_dim == 0:
        scores = []
        for li, _c, mods in groups:
            K = _exact_gram([(li, n) for n, _w in mods], train + val, len(train), device)
            scores.append(_datainf_from_gram(K[:, : len(train)], K[:, len(train) :].mean(1), _size(mods)))
        return _rows(groups, scores)
    parts = _sketches(groups, projection_dim, seed, device, sketch)

    def vectors(factors) -> list:
        """Per group, the (n, d') matrix of the texts' sketched gradients, as compute_influence's ``project``."""
        return [
            torch.stack(
                [
                    torch.cat([_project(*f[(li, n)], parts[(li, n)], projection_dim).cpu() for n, _w in mods])
                    for f in factors
                ]
            )
            for li, _c, mods in groups
        ]

    v = [m.double().mean(0) for m in vectors(val)]
    return _rows(
        groups,
        [_datainf_scores(g, vg, _size(mods)) for (*_, mods), g, vg in zip(groups, vectors(train), v, strict=True)],
    )


def _project(X, D, parts, p: int):
    """The flattened gradient G = D^T X of one linear for one text, sketched from its factors X [T, in] and D
    [T, out] with ``parts`` (``_sketches``; None: exact) into p entries: CountSketch bucket (h1(i) + h2(j)) mod p gets
    s1(i) s2(j) G_ij, Kronecker P1 G P2^T. float32, on the device of ``parts`` (of X when exact)."""
    import torch

    if parts is None:  # exact gradients, or a matrix no larger than the sketch
        return (D.float().T @ X.float()).reshape(-1)
    X, D = X.to(parts[0].device, torch.float32), D.to(parts[0].device, torch.float32)
    if len(parts) == 2:  # Kronecker: P1 G P2^T
        return ((parts[0] @ D.T) @ (X @ parts[1].T)).reshape(-1)
    h1, s1, h2, s2 = parts
    # index_add_ adds with atomics on CUDA, in an order that varies from run to run: deterministic mode, around it only
    switch = X.is_cuda and not torch.are_deterministic_algorithms_enabled()
    if switch:
        torch.use_deterministic_algorithms(True)
    try:  # [T, p]: each token's vector hashed into p buckets with signs
        cd = torch.zeros(D.shape[0], p, device=D.device).index_add_(1, h1, D * s1)
        cx = torch.zeros(X.shape[0], p, device=X.device).index_add_(1, h2, X * s2)
    finally:
        if switch:
            torch.use_deterministic_algorithms(False)
    # bucket (h1(i) + h2(j)) mod p of sum_t D_t X_t^T = sum over tokens of the circular convolution of the two
    return torch.fft.irfft((torch.fft.rfft(cd) * torch.fft.rfft(cx)).sum(0), n=p)


def _exact_gram(keys: list, factors: list[dict], n_rows: int, device="cpu", chunk: int = 4096):
    """K[i, j] = sum over the linears ``keys`` of <G_i, G_j>, i over the first ``n_rows`` texts, j over all (float64):
    per distinct input X, sum((X_i X_j^T) * (D_i D_j^T)) with the D of every linear reading that X side by side."""
    import torch

    by_input: dict[int, list] = {}
    for k in keys:
        by_input.setdefault(id(factors[0][k][0]), []).append(k)
    lengths = [f[keys[0]][0].shape[0] for f in factors]
    seg = torch.repeat_interleave(torch.arange(len(factors)), torch.tensor(lengths))
    onehot = torch.nn.functional.one_hot(seg, len(factors)).double().to(device)  # [sum T, texts]
    rows = sum(lengths[:n_rows])
    K = torch.zeros(n_rows, len(factors), dtype=torch.float64, device=device)
    for ks in by_input.values():
        X = torch.cat([f[ks[0]][0] for f in factors]).to(device)
        D = torch.cat([torch.cat([f[k][1] for k in ks], dim=1) for f in factors]).to(device)
        for r0 in range(0, rows, chunk):  # row blocks bound the token-pair matrices to chunk x sum T
            r1 = min(rows, r0 + chunk)
            prod = ((X[r0:r1] @ X.T) * (D[r0:r1] @ D.T)).double()  # token-pair terms: float32 products, float64 sums
            K += onehot[r0:r1, :n_rows].T @ prod @ onehot
            del prod
        del X, D
    return K.cpu()


def _size(mods) -> int:
    """A group's unprojected parameter count: lambda must estimate the exact damping whatever the sketch."""
    return sum(w.numel() for _n, w in mods)


def _rows(groups, scores) -> list[dict]:
    """One row per (layer, component, example) from each group's score vector, sorted; non-finite scores are one
    clear error now, not a silent uniform allocation later."""
    import torch

    rows = []
    for (li, comp, _mods), sc in zip(groups, scores, strict=True):
        if not torch.isfinite(sc).all():
            raise ValueError(
                f"LayerIF influence: non-finite scores for layer {li} {comp} (inf/NaN gradients); compute in float32 "
                "(influence.dtype, CLI --dtype) or shorten the texts (influence.max_len, CLI --influence-max-len)"
            )
        rows.extend(dict(layer=li, component=comp, example=k, influence=float(s)) for k, s in enumerate(sc))
    rows.sort(key=lambda r: (r["layer"], r["component"], r["example"]))
    return rows


@contextlib.contextmanager
def _differentiating(model, weights):
    """Only ``weights`` require gradients (autograd then skips embeddings, norms, biases and lm_head), the model in
    eval mode (no dropout); the flags and mode are restored afterwards."""
    flags = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for w in weights:
            w.requires_grad_(True)
        model.eval()
        yield
    finally:
        for p, f in flags.items():
            p.requires_grad_(f)
        model.train(was_training)


def _datainf_scores(gmat, v, d: int, chunk_elems: int = 1 << 24):
    """LayerIF scores +h.g_k for one group from the (n, d') gradient matrix (d' = d, or the projected size) and the
    mean validation gradient v; ``d`` is the unprojected parameter count used by the damping lambda."""
    import torch

    n, dp = gmat.shape
    K = torch.zeros(n, n, dtype=torch.float64)
    u = torch.zeros(n, dtype=torch.float64)
    step = max(1, chunk_elems // max(n, 1))
    for j in range(0, dp, step):  # float64 copies in column chunks keep the extra memory bounded
        g = gmat[:, j : j + step].double()
        K += g @ g.T
        u += g @ v[j : j + step]
    return _datainf_from_gram(K, u, d)


def _datainf_from_gram(K, u, d: int):
    """LayerIF scores from the Gram matrix K_ij = g_i.g_j of the n training gradients and u_i = v.g_i (float64)."""
    import torch

    n = K.shape[0]
    sq = K.diagonal()
    lam = sq.sum() / (n * d) / 10
    if lam <= 0:  # every gradient is zero: no example moves the validation loss
        return torch.zeros(n, dtype=torch.float64)
    c = u / (lam + sq)
    return (n * u - K @ c) / (n * lam)
