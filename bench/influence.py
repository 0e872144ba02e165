"""LayerIF influence: prunetts's ``compute_influence`` against the weight-gradient path, side by side in one run.

    python bench/influence.py [--quick] [--repeats 3]

The weight-gradient path is what prunetts did before influence impl_version 5 and what a direct implementation of
DataInf does: per text, autograd's gradient of every scored weight (``torch.autograd.grad(loss, weights)``), then the
CountSketch of each gradient G (two passes: the longer side hashed into p buckets, then each line rotated by its
bucket and summed). prunetts asks autograd for the gradients of the linears' outputs only, which skips the weight
gradients' matmuls, and sketches each G = D^T X from its token factors (the same sketch, through an FFT). Both sides
run the same DataInf algebra on their sketched gradients; the scores must agree to float32 rounding. Printed: the wall
time of each side (median of ``--repeats`` alternating runs after an untimed warm-up), the ratio, the scores'
largest relative difference, and the gradient memory one text holds at once on each side (weight gradients in the
compute dtype against token factors), at the bench's shapes and at Qwen3-8B's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prune import C4, build_random, machine  # bench/prune.py: this directory is on sys.path when run as a script


def count_sketch(grad, h1, s1, h2, s2, p: int):
    """CountSketch of a matrix as prunetts computed it before impl_version 5: bucket (h1(i) + h2(j)) mod p += s1(i)
    s2(j) G_ij, the longer side hashed first (p x the shorter side in memory), then rotations."""
    import torch

    if grad.shape[0] < grad.shape[1]:
        grad, h1, s1, h2, s2 = grad.T, h2, s2, h1, s1
    if p * grad.shape[1] > grad.numel():
        idx = (h1[:, None] + h2[None, :]).remainder_(p).reshape(-1)
        return torch.zeros(p).index_add_(0, idx, (grad * s1[:, None] * s2[None, :]).reshape(-1))
    rows = torch.zeros(p, grad.shape[1]).index_add_(0, h1, grad * s1[:, None])
    idx = (torch.arange(p)[:, None] - h2[None, :]).remainder_(p)
    return (rows.gather(0, idx) * s2).sum(1)


def weight_gradient_influence(model, tok, train, val, max_len: int, p: int, seed: int) -> list[dict]:
    """The same rows as ``compute_influence``, from autograd's weight gradients sketched one by one."""
    import torch

    from prunetts import influence as inf

    groups = inf._scored_groups(model, None)
    parts = inf._sketches(groups, p, seed, "cpu")
    weights = [w for _li, _c, mods in groups for _n, w in mods]

    def group_grads(ids):
        grads = iter(torch.autograd.grad(inf._text_loss(model, ids, "cpu"), weights))
        out = []
        for li, _c, mods in groups:
            vecs = []
            for name, _w in mods:
                g = next(grads).float()
                vecs.append(g.reshape(-1) if parts[(li, name)] is None else count_sketch(g, *parts[(li, name)], p))
            out.append(torch.cat(vecs))
        return out

    with inf._differentiating(model, weights):
        val_g = [group_grads(ids) for ids in inf.token_ids(tok, val, max_len, "validation")]
        v = [torch.stack([g[i] for g in val_g]).double().mean(0) for i in range(len(groups))]
        train_g = [group_grads(ids) for ids in inf.token_ids(tok, train, max_len, "training")]
    store = [torch.stack([g[i] for g in train_g]) for i in range(len(groups))]
    scores = [inf._datainf_scores(g, vg, inf._size(mods)) for (*_, mods), g, vg in zip(groups, store, v, strict=True)]
    return inf._rows(groups, scores)


def memory_per_text(hidden: int, inter: int, layers: int, heads: int, kv: int, tokens: int, dtype_bytes: int):
    """Bytes of gradients one text holds at once: every scored weight's gradient, against every scored linear's
    output gradient D plus its distinct inputs X (q/k/v share one, gate/up one)."""
    head = hidden // heads
    shapes = [(heads * head, hidden), (kv * head, hidden), (kv * head, hidden), (hidden, heads * head)]
    shapes += [(inter, hidden), (inter, hidden), (hidden, inter)]
    weights = sum(o * i for o, i in shapes) * layers
    outputs = sum(o for o, _i in shapes) * tokens * layers
    inputs = (hidden + heads * head + hidden + inter) * tokens * layers
    return weights * dtype_bytes, (outputs + inputs) * dtype_bytes


def compare(model_path: Path, a, label: str) -> None:
    import torch

    from prunetts.calibration import load_texts
    from prunetts.influence import compute_influence, split_calibration_texts
    from prunetts.models import load_model, load_tokenizer

    tok = load_tokenizer(str(model_path))
    model = load_model(str(model_path), "float32", "cpu")
    train, val = split_calibration_texts(load_texts(str(C4)), a.n_train, a.n_val, 0)

    def ours():
        return compute_influence(model, tok, train, val, a.max_len, a.dim, 0, progress=False)

    def theirs():
        return weight_gradient_influence(model, tok, train, val, a.max_len, a.dim, 0)

    ours(), theirs()  # untimed warm-up: first calls of torch's code paths
    times: dict = {"ours": [], "theirs": []}
    rows: dict = {}
    for r in range(a.repeats):
        for side in ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"):
            t0 = time.perf_counter()
            rows[side] = ours() if side == "ours" else theirs()
            times[side].append(time.perf_counter() - t0)
    x = torch.tensor([r["influence"] for r in rows["ours"]], dtype=torch.float64)
    y = torch.tensor([r["influence"] for r in rows["theirs"]], dtype=torch.float64)
    same_keys = [(r["layer"], r["component"], r["example"]) for r in rows["ours"]] == [
        (r["layer"], r["component"], r["example"]) for r in rows["theirs"]
    ]
    rel = float((x - y).abs().max() / y.abs().max())
    med_o, med_t = statistics.median(times["ours"]), statistics.median(times["theirs"])
    print(
        f"\n{label}: {a.n_train} training / {a.n_val} validation texts of {a.max_len} tokens, CountSketch p = {a.dim},"
        f" float32 on cpu; same rows: {same_keys}; largest score difference {rel:.1e} of the largest score"
    )

    def span(side: str) -> str:
        return f"{min(times[side]):.2f}-{max(times[side]):.2f} s"

    runs = f"median of {a.repeats} alternating runs (min-max)"
    print(f"    {'weight gradients, sketched':<34}{med_t:>7.2f} s   {runs}: {span('theirs')}")
    print(f"    {'token factors (prunetts)':<34}{med_o:>7.2f} s   {runs}: {span('ours')}   ratio {med_o / med_t:.3f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test of the script)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    a.n_train, a.n_val, a.max_len, a.dim = (18, 6, 256, 1024) if not a.quick else (4, 2, 32, 64)
    shapes = [  # (hidden, MLP, layers, heads, kv heads, label)
        (512, 1536, 6, 8, 2, "random Qwen3, hidden 512, 6 layers (bench/prune.py's (a) model)"),
        (2048, 5632, 4, 16, 4, "random Qwen3, hidden 2048, 4 layers"),
    ]
    if a.quick:
        shapes = [(64, 128, 2, 4, 2, "random Qwen3, hidden 64, 2 layers (--quick)")]
        a.repeats = 1
    print(f"machine: {machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, inter, layers, heads, kv, label in shapes:
            path = Path(tmp) / f"model-{hidden}"
            build_random(path, hidden, inter, layers, heads, kv, "float32")
            compare(path, a, label)
    print("\ngradient memory one text holds at once (weight gradients / token factors):")
    for name, shape, tokens, nbytes in (
        ("hidden 2048, 4 layers, fp32", (2048, 5632, 4, 16, 4), a.max_len, 4),
        ("Qwen3-8B, bf16", (4096, 12288, 36, 32, 8), 512, 2),
    ):
        w, f = memory_per_text(*shape, tokens, nbytes)
        print(f"    {name}, {tokens} tokens: {w / 2**30:.2f} GiB / {f / 2**30:.2f} GiB ({w / f:.0f}x)")


if __name__ == "__main__":
    main()
