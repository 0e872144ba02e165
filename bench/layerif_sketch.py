"""Fidelity of LayerIF's gradient sketch: how far sketching each weight gradient to p entries
(``influence.projection_dim``) moves the DataInf scores, and the allocation's input, from the scores with exact
gradients, for the CountSketch prunetts uses and the Kronecker Gaussian sketch it used before (influence
impl_version 2), side by side at the same size p.
Accuracy, not speed: the few times printed are for planning a run.

    python bench/layerif_sketch.py          # random Qwen3s at Qwen3-8B's width and 1/4 of it, then the demo model
    python bench/layerif_sketch.py --model Qwen/Qwen3-8B --layers 0 4 8 12 16 20 24 28 32 \
        --device cuda --dtype bfloat16       # the check the README leaves to a GPU: 18 GB of token factors

Scores, exact and sketched, come from each text's token factors (``influence.token_factors``): per prunable linear
its inputs X and the loss gradient w.r.t. its outputs D, T x (in + out) numbers, whose product D^T X is the weight
gradient (out x in), which is never formed: exact inner products and both sketches are computed from the factors,
and tests pin the results to ``compute_influence``'s (the production path, which sketches autograd's gradients).
One forward and backward pass per text serves every p and seed, and the memory is the factors (printed first: about
60 MB per text and layer at Qwen3-8B's width and 256 tokens, where the exact gradients would be 770 MB), so a
random model at Qwen3-8B's width fits this 24 GiB machine. Per sketch, size p (``projection_dim``) and sketch seed:

- shrink: a group's parameters / its sketched size, the median over groups (Qwen3-8B's MLP group at config/paper.yaml's
  p = 4096 per matrix: 151M / 12,288 = 12,288x);
- examples: Spearman of the per-example scores within a group, sketched against exact; median and minimum over the
  groups;
- sums: Spearman, over the scored layers, of each component's positive sums S(l, c) = sum_k max(score_k, 0), the
  allocation's input;
- max |d s_hat|: the largest change of a layer's min-max-normalised sum; the allocation maps s_hat to sparsity
  through (e2 - e1) = 0.35 before rescaling to S, so 0.1 moves that layer's sparsity by about 0.035 x eta;
- max |d q|/q: the largest relative change of a layer's share q(l) = S(l) / sum over layers of S, a measure that,
  unlike d s_hat, does not hinge on which layers are the extremes, and, unlike the sums, ignores a common scale
  (drawing other texts scales every layer's sum alike, which no allocation sees).

The yardstick, last: the same two columns for exact gradients on other texts of the corpus (other split seeds), the
sampling noise of the method itself; a sketch whose error stays well below it costs nothing that matters.

A random model's gradients are not a trained model's (they mostly flatten the random logits, so examples agree more
than a trained model's do): at Qwen3-8B's width its numbers show the error at config/paper.yaml's shrink on random
weights, not what it is on the trained model (the GPU command above).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prune import C4, REPO, build_random, machine  # bench/prune.py: this directory is on sys.path when run as a script

DEMO = REPO / "resources" / "demo-qwen3"


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 1 else float("nan")


def _by_group(rows) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault((r["layer"], r["component"]), []).append(r["influence"])
    return out


def _shares(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total if total > 0 else 0.0 for v in values]


def _normalised(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def fidelity(model_path: str, a, label: str) -> None:
    from prunetts.calibration import load_texts
    from prunetts.influence import (
        _scored_groups,
        _size,
        _sketches,
        aggregate_positive,
        factored_influence,
        token_factors,
    )
    from prunetts.influence import split_texts as split
    from prunetts.models import load_model, load_tokenizer

    tok = load_tokenizer(model_path)
    model = load_model(model_path, a.dtype, a.device)
    groups = _scored_groups(model, a.layers)
    sizes = {(li, c): _size(mods) for li, c, mods in groups}
    texts = load_texts(a.texts)

    def factors(split_seed: int) -> list:
        """The token factors of one split's training and validation texts (a forward and a backward pass each)."""
        return [token_factors(model, tok, part, a.max_len, a.layers, False) for part in split(texts, *n, split_seed)]

    n = (a.n_train, a.n_val)
    t0 = time.perf_counter()
    main = factors(a.seed)  # every sketch is taken of these; dropped before the yardstick's splits
    took = time.perf_counter() - t0
    held = sum(t.numel() * 4 for f in main[0] + main[1] for t in {id(t): t for xd in f.values() for t in xd}.values())
    print(
        f"\n{label}: {len(groups) // 2} layers scored, {a.n_train} training / {a.n_val} validation texts of <= "
        f"{a.max_len} tokens, {a.dtype} on {a.device}; token factors held: {held / 2**30:.2f} GiB (exact gradients "
        f"would be {a.n_train * sum(sizes.values()) * 4 / 2**30:.2f} GiB); forward + backward {took:.0f} s"
    )

    def run(dim: int, seed: int = 0, kind: str = "countsketch", of=main):
        rows = factored_influence(groups, *of, dim, seed, kind, a.device)
        return _by_group(rows), aggregate_positive(rows)

    def shrink(dim: int, kind: str) -> float:
        """Median over the groups of parameters / sketched size, read off the sketch the scores used."""
        parts = _sketches(groups, dim, 0, "cpu", kind)

        def size(li, name, w):
            if parts[(li, name)] is None:  # kept exact
                return w.numel()
            return parts[(li, name)][0].shape[0] * parts[(li, name)][1].shape[0] if kind == "kronecker" else dim

        return statistics.median(sizes[(li, c)] / sum(size(li, n, w) for n, w in mods) for li, c, mods in groups)

    def sums_agreement(sums) -> str:
        """The sums columns against the exact sums: Spearman, max |d s_hat|, max relative change, per component."""
        cols = [[], [], []]
        for comp in ("attention", "mlp"):
            e = [exact_sums[(li, comp)] for li in layers]
            s = [sums[(li, comp)] for li in layers]
            cols[0].append(_spearman(s, e))
            cols[1].append(max(abs(x - y) for x, y in zip(_normalised(s), _normalised(e), strict=True)))
            q = zip(_shares(s), _shares(e), strict=True)
            cols[2].append(max(abs(x - y) / y if y > 0 else float("inf") for x, y in q))
        (r_a, r_m), (d_a, d_m), (q_a, q_m) = cols
        return f"{r_a:>8.3f} / {r_m:5.3f} {d_a:>15.3f} / {d_m:5.3f} {q_a:>14.3f} / {q_m:5.3f}"

    t0 = time.perf_counter()
    exact, exact_sums = run(0)
    layers = sorted({li for li, _c in exact})
    print(f"    exact scores from the factors: {time.perf_counter() - t0:.0f} s")
    print(f"    {'sketch':>11} {'p':>6} {'seed':>4} {'shrink':>7} {'examples (median, min)':>23} "
          f"{'sums attn / mlp':>17} {'max |d s_hat| attn / mlp':>25} {'max |d q|/q attn / mlp':>22}")  # fmt: skip
    for dim in a.dims:
        for kind in a.sketches:
            for seed in range(a.seeds):
                sk, sk_sums = run(dim, seed, kind=kind)
                per_group = [_spearman(sk[k], exact[k]) for k in exact]
                print(
                    f"    {kind:>11} {dim:>6} {seed:>4} {shrink(dim, kind):>6.0f}x "
                    f"{statistics.median(per_group):>14.3f}, {min(per_group):6.3f} {sums_agreement(sk_sums)}"
                )
    # the yardstick: exact gradients on other texts of the same corpus (another split seed) move the sums this much
    main.clear()
    for k in range(1, a.seeds + 1):
        _, other = run(0, of=factors(a.seed + k))
        print(f"    {'exact, other texts (split seed ' + str(a.seed + k) + ')':<62} {sums_agreement(other)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="HF path or hub id (default: random Qwen3s built here, then the demo model)")
    ap.add_argument(
        "--random",
        type=int,
        nargs=5,
        action="append",
        metavar=("HIDDEN", "MLP", "LAYERS", "HEADS", "KV_HEADS"),
        help="score a random Qwen3 of this shape, and no other model (repeatable; without --model or --random: "
        "Qwen3-8B's width with 4 layers, 4096 12288 4 32 8, a quarter of it, 1024 2816 6 8 2, and the demo model)",
    )
    ap.add_argument("--layers", type=int, nargs="+", help="decoder layers to score (default: all)")
    ap.add_argument("--texts", default=str(C4), help="JSON Lines / Parquet / CSV of texts (field 'text')")
    ap.add_argument("--n-train", type=int, default=24)
    ap.add_argument("--n-val", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--dims", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--seeds", type=int, default=2, help="sketch seeds per dim")
    ap.add_argument("--sketches", nargs="+", default=["countsketch", "kronecker"], help="gradient sketches to compare")
    ap.add_argument("--seed", type=int, default=0, help="text split seed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    with_demo = not a.random
    a.random = a.random or [[4096, 12288, 4, 32, 8], [1024, 2816, 6, 8, 2]]
    import torch

    torch.set_num_threads(a.threads)
    print(f"machine: {machine()}, torch {torch.__version__}")
    if a.model:
        fidelity(a.model, a, a.model)
        return
    for hidden, inter, n_layers, heads, kv in a.random:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "random"
            build_random(path, hidden, inter, n_layers, heads, kv, "float32")
            fidelity(str(path), a, f"random Qwen3, hidden {hidden}, MLP {inter}, {n_layers} layers, {heads}/{kv} heads")
    if with_demo:
        fidelity(str(DEMO), a, "demo model (trained, hidden 96, 6 layers)")


if __name__ == "__main__":
    main()
