"""LayerIF / DataInf influence: exact scores against a literal brute-force DataInf, projection, helpers."""

import pytest
import torch

from prunetts.demo.render import calibration_texts
from prunetts.influence import aggregate_positive, compute_influence, split_texts
from prunetts.models import Arch, load_model, load_tokenizer

MAX_LEN = 48
N_TRAIN, N_VAL = 6, 3


def _texts():
    return split_texts(calibration_texts(N_TRAIN + N_VAL + 3), N_TRAIN, N_VAL, seed=0)


def _load(path):
    return load_model(str(path), dtype="float32", device="cpu"), load_tokenizer(str(path))


def _reference(model, tok, train, val, max_len, sketch=None):
    """DataInf written out literally: explicit per-example gradient vectors, lambda, h as a sum, score_k = +h.g_k.

    ``sketch`` maps (layer, module) to a dense matrix S (p x out*in): each weight gradient G becomes S vec(G)
    (lambda keeps the full d); None keeps that gradient exact.
    """
    arch = Arch.of(model)
    groups = []
    for li, layer in enumerate(arch.layers(model)):
        lins = arch.prunable_linears(layer)
        for comp, prefix in (("attention", "self_attn."), ("mlp", "mlp.")):
            groups.append((li, comp, [(li, n, lin.weight) for n, lin in lins.items() if n.startswith(prefix)]))
    params = [w for *_, ws in groups for *_, w in ws]

    def proj(key, g):
        if sketch is None or sketch[key] is None:
            return g
        return sketch[key] @ g.double().reshape(-1)

    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)

    def grads(text):
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"][:max_len]])
        logits = model(input_ids=ids, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:])
        gl = dict(zip(map(id, params), torch.autograd.grad(loss, params), strict=True))
        return [torch.cat([proj((li, n), gl[id(w)]).reshape(-1) for li, n, w in ws]).double() for *_, ws in groups]

    g_train = [grads(t) for t in train]
    g_val = [grads(t) for t in val]
    out = {}
    n = len(train)
    for gi, (li, comp, ws) in enumerate(groups):
        gs = [g[gi] for g in g_train]
        v = sum(g[gi] for g in g_val) / len(val)
        d = sum(w.numel() for *_, w in ws)
        lam = sum((g * g).sum() for g in gs) / (n * d) / 10
        h = sum(v - (v @ g) / (lam + g @ g) * g for g in gs) / (n * lam)
        for k, g in enumerate(gs):
            out[(li, comp, k)] = float(h @ g)
    return out


def test_exact_scores_match_literal_datainf(tiny_model_dir):
    model, tok = _load(tiny_model_dir)
    train, val = _texts()
    rows = compute_influence(model, tok, train, val, max_len=MAX_LEN, progress=False)
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert not model.training
    ref = _reference(model, tok, train, val, MAX_LEN)
    got = {(r["layer"], r["component"], r["example"]): r["influence"] for r in rows}
    assert got.keys() == ref.keys()
    keys = sorted(ref)
    a = torch.tensor([got[k] for k in keys], dtype=torch.float64)
    b = torch.tensor([ref[k] for k in keys], dtype=torch.float64)
    assert b.abs().max() > 0
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9 * float(b.abs().max()))
    # sign: on a random model train and validation gradients mostly agree (both mainly flatten the random logits),
    # so with LayerIF's sign (positive = beneficial) most scores must be positive; DataInf's raw -h.g would not be
    assert (a > 0).double().mean() > 0.8


def test_rows_cover_every_layer_component_example(tiny_qwen3_dir):
    model, tok = _load(tiny_qwen3_dir)
    train, val = _texts()
    rows = compute_influence(model, tok, train, val, max_len=MAX_LEN, progress=False)
    n_layers = len(Arch.of(model).layers(model))
    expected = [(li, c, k) for li in range(n_layers) for c in ("attention", "mlp") for k in range(N_TRAIN)]
    assert [(r["layer"], r["component"], r["example"]) for r in rows] == expected
    assert all(set(r) == {"layer", "component", "example", "influence"} for r in rows)
    assert all(isinstance(r["influence"], float) for r in rows)
    agg = aggregate_positive(rows)
    assert set(agg) == {(li, c) for li in range(n_layers) for c in ("attention", "mlp")}


def test_count_sketch_inner_products_are_unbiased():
    """Over sketch seeds the sketched inner product of two low-rank matrices (a text's gradient is a sum of one outer
    product per token, here sketched from those factors as compute_influence does) averages to the exact one, and so
    does a squared norm (DataInf's K, u and lambda); the random signs are what make it so: the same hash without them
    is biased by the colliding entries."""
    from prunetts.influence import _project, _sketches

    g = torch.Generator().manual_seed(0)
    a1, a2, b1, b2 = (torch.randn(*shape, generator=g) for shape in ((48, 3), (3, 40), (48, 3), (3, 40)))
    ones_out, ones_in = torch.ones(48, 1), torch.ones(1, 40)
    # a = a1 a2 + 1 (an offset: collisions bias an unsigned hash by sum(a) sum(b) / p), b = a + b1 b2; G = D^T X
    fa = (torch.cat([a2, ones_in]), torch.cat([a1, ones_out], 1).T)
    fb = (torch.cat([a2, ones_in, b2]), torch.cat([a1, ones_out, b1], 1).T)
    a, b = fa[1].T @ fa[0], fb[1].T @ fb[0]
    torch.testing.assert_close(a, a1 @ a2 + 1)
    p, n = 64, 400
    dots, sq, unsigned = [], [], []
    for seed in range(n):
        parts = _sketches([(0, "mlp", [("mlp.up_proj", a)])], p, seed, "cpu")[(0, "mlp.up_proj")]
        h1, s1, h2, s2 = parts
        assert set(s1.tolist()) == set(s2.tolist()) == {-1.0, 1.0}
        sa, sb = _project(*fa, parts, p).double(), _project(*fb, parts, p).double()
        dots.append(float(sa @ sb))
        sq.append(float(sa @ sa))
        plain = (h1, torch.ones_like(s1), h2, torch.ones_like(s2))
        unsigned.append(float(_project(*fa, plain, p) @ _project(*fb, plain, p)))
    for est, exact in ((dots, float((a * b).sum())), (sq, float((a * a).sum()))):
        est = torch.tensor(est, dtype=torch.float64)
        assert abs(float(est.mean()) - exact) < 4 * float(est.std()) / n**0.5, (float(est.mean()), exact)
    unsigned = torch.tensor(unsigned, dtype=torch.float64)
    assert abs(float(unsigned.mean()) - float((a * b).sum())) > 4 * float(unsigned.std()) / n**0.5


def dense_count_sketch(parts, shape, p):
    """The CountSketch as the explicit matrix S (p x out*in): S[(h1(i) + h2(j)) mod p, i*in + j] = s1(i) s2(j)."""
    if parts is None:
        return None
    h1, s1, h2, s2 = (t.double() for t in parts)
    n_out, n_in = shape
    i, j = torch.meshgrid(torch.arange(n_out), torch.arange(n_in), indexing="ij")
    S = torch.zeros(p, n_out * n_in, dtype=torch.float64)
    S[((h1.long()[i] + h2.long()[j]) % p).reshape(-1), torch.arange(n_out * n_in)] = (s1[i] * s2[j]).reshape(-1)
    return S


@pytest.mark.parametrize(
    ("shape", "p"), [((64, 32), 16), ((32, 64), 40), ((7, 300), 50), ((64, 32), 100), ((7, 300), 400)]
)
def test_count_sketch_from_token_factors_equals_the_entrywise_definition(shape, p):
    """The sketch of G = D^T X computed from the factors (per-token count sketches convolved through an FFT) is the
    CountSketch of G itself: bucket (h1(i) + h2(j)) mod p += s1(i) s2(j) G_ij, for p below, between and above the
    matrix's sides; Kronecker's is P1 G P2^T and an exact gradient is G."""
    from prunetts.influence import _project

    g = torch.Generator().manual_seed(sum(shape) + p)
    n_out, n_in = shape
    X, D = torch.randn(5, n_in, generator=g), torch.randn(5, n_out, generator=g)
    grad = (D.double().T @ X.double()).float()
    h1, h2 = torch.randint(p, (n_out,), generator=g), torch.randint(p, (n_in,), generator=g)
    s1 = torch.randint(2, (n_out,), generator=g).float() * 2 - 1
    s2 = torch.randint(2, (n_in,), generator=g).float() * 2 - 1
    expected = torch.zeros(p, dtype=torch.float64)
    for i in range(n_out):
        for j in range(n_in):
            expected[(h1[i] + h2[j]) % p] += float(s1[i] * s2[j] * grad[i, j])
    got = _project(X, D, (h1, s1, h2, s2), p)
    assert got.dtype == torch.float32 and got.shape == (p,)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-4)
    p1, p2 = torch.randn(4, n_out, generator=g), torch.randn(3, n_in, generator=g)
    torch.testing.assert_close(_project(X, D, (p1, p2), 12), (p1 @ grad @ p2.T).reshape(-1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(_project(X, D, None, 0), grad.reshape(-1), rtol=1e-5, atol=1e-5)


def test_projected_scores_match_literal_datainf_on_sketched_gradients(tiny_qwen3_dir):
    from prunetts.influence import _groups, _sketches

    model, tok = _load(tiny_qwen3_dir)
    train, val = _texts()
    p = 100
    rows = compute_influence(model, tok, train, val, max_len=MAX_LEN, projection_dim=p, seed=5, progress=False)
    groups = _groups(model)
    parts = _sketches(groups, p, 5, "cpu")
    shapes = {(li, n): tuple(w.shape) for li, _c, mods in groups for n, w in mods}
    sketch = {key: dense_count_sketch(parts[key], shapes[key], p) for key in parts}
    assert all(v is not None for v in sketch.values())  # every tiny matrix is larger than the sketch
    col = next(iter(sketch.values()))
    assert torch.equal(col.abs().sum(0), torch.ones(col.shape[1], dtype=torch.float64))  # one +-1 per entry
    ref = _reference(model, tok, train, val, MAX_LEN, sketch=sketch)
    a = torch.tensor([r["influence"] for r in rows], dtype=torch.float64)
    b = torch.tensor([ref[(r["layer"], r["component"], r["example"])] for r in rows], dtype=torch.float64)
    # float32 sums of the sketch in the module vs float64 here: agreement to float32 rounding
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * float(b.abs().max()))
    # a matrix no larger than the sketch stays exact (here: every one at p = 4096)
    exact = compute_influence(model, tok, train, val, max_len=MAX_LEN, progress=False)
    big = compute_influence(model, tok, train, val, max_len=MAX_LEN, projection_dim=4096, progress=False)
    assert not any(_sketches(groups, 4096, 0, "cpu").values())
    assert big == exact


def test_scoring_some_layers_gives_those_rows_of_scoring_all(tiny_qwen3_dir):
    """``layers`` restricts the groups (bench/layerif_sketch.py: exact gradients of a few layers of a large model);
    each group's scores, sketched or exact, are those of the full run (per-module sketch seeds, per-group algebra)."""
    model, tok = _load(tiny_qwen3_dir)
    train, val = _texts()
    for dim in (0, 100):
        full = compute_influence(model, tok, train, val, MAX_LEN, dim, seed=3, progress=False)
        some = compute_influence(model, tok, train, val, MAX_LEN, dim, seed=3, progress=False, layers=[2, 0])
        assert some == [r for r in full if r["layer"] in (0, 2)]
    with pytest.raises(ValueError, match="no decoder layer 7"):
        compute_influence(model, tok, train, val, MAX_LEN, layers=[7], progress=False)


def test_scores_from_token_factors_equal_compute_influence(tiny_model_dir):
    """bench/layerif_sketch.py scores from token factors kept for every text (exact scores from their Gram matrix;
    CountSketch, every matrix sketched at p = 100, none at 4096; Kronecker) must give compute_influence's, which
    sketches each text's factors as they come, to float32 rounding."""
    from prunetts.influence import _scored_groups, factored_influence, token_factors

    model, tok = _load(tiny_model_dir)
    train, val = _texts()
    for layers in (None, [2, 0]):
        groups = _scored_groups(model, layers)
        f_train = token_factors(model, tok, train, MAX_LEN, layers, progress=False)
        f_val = token_factors(model, tok, val, MAX_LEN, layers, progress=False)
        assert all(p.requires_grad for p in model.parameters()) and not model.training  # flags restored
        for dim, kind in ((0, "countsketch"), (100, "countsketch"), (4096, "countsketch"), (100, "kronecker")):
            ref = compute_influence(model, tok, train, val, MAX_LEN, dim, 3, progress=False, layers=layers, sketch=kind)
            got = factored_influence(groups, f_train, f_val, dim, 3, kind)
            assert [r | {"influence": 0} for r in got] == [r | {"influence": 0} for r in ref]
            a = torch.tensor([r["influence"] for r in got], dtype=torch.float64)
            b = torch.tensor([r["influence"] for r in ref], dtype=torch.float64)
            assert b.abs().min() > 0
            torch.testing.assert_close(a, b, rtol=1e-5, atol=0, msg=f"{dim} {kind} {layers}")


def test_gram_and_datainf_chunks_give_the_unchunked_result():
    """``_datainf_scores`` sums K and u over column chunks of the gradient matrix, ``_exact_gram`` over row blocks of
    tokens (both bound memory on large models); the tests above run a single chunk only. Chunk sizes that split the
    columns and tokens unevenly (a ragged last chunk) must give the Gram matrix and the scores of the plain algebra."""
    from prunetts.influence import _datainf_from_gram, _datainf_scores, _exact_gram

    g = torch.Generator().manual_seed(7)
    n, d = 5, 37
    gmat = torch.randn(n, d, generator=g)
    v = torch.randn(d, generator=g, dtype=torch.float64)
    G = gmat.double()
    expected = _datainf_from_gram(G @ G.T, G @ v, d)
    for chunk_elems in (1, 2 * n, 7 * n, 1 << 24):  # one column at a time, 2, 7 (37 = 5 x 7 + 2), all at once
        torch.testing.assert_close(_datainf_scores(gmat, v, d, chunk_elems), expected, rtol=1e-12, atol=0)
    # the Gram matrix of G_i = sum_k D_i^T X_i over two linears reading one input, texts of 3 to 6 tokens
    factors = []
    for t in (3, 6, 4, 5):
        x = torch.randn(t, 8, generator=g)
        factors.append({"a": (x, torch.randn(t, 6, generator=g)), "b": (x, torch.randn(t, 4, generator=g))})
    vec = [torch.cat([(f[k][1].double().T @ f[k][0].double()).reshape(-1) for k in ("a", "b")]) for f in factors]
    full = torch.stack(vec) @ torch.stack(vec).T
    for n_rows in (2, 4):
        for chunk in (1, 2, 5, 4096):  # rows of a token block may end inside a text
            got = _exact_gram(["a", "b"], factors, n_rows, chunk=chunk)
            # token-pair products in float32 (as _exact_gram computes them), sums in float64
            tol = 1e-6 * float(full.abs().max())
            torch.testing.assert_close(got, full[:n_rows], rtol=0, atol=tol, msg=f"{n_rows} {chunk}")


def _pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


def test_projection_is_seeded_and_tracks_exact_scores(tiny_qwen3_dir):
    model, tok = _load(tiny_qwen3_dir)
    train, val = _texts()

    def scores(**kw):
        rows = compute_influence(model, tok, train, val, max_len=MAX_LEN, progress=False, **kw)
        return torch.tensor([r["influence"] for r in rows], dtype=torch.float64)

    exact = scores()
    p1 = scores(projection_dim=256, seed=1)
    assert torch.equal(p1, scores(projection_dim=256, seed=1))
    assert not torch.equal(p1, scores(projection_dim=256, seed=2))
    assert _pearson(p1, exact) > 0.9  # CountSketch: 0.98-1.0 over the 3 tiny families x 6 seeds (Kronecker: 0.95-)


def test_aggregate_positive():
    rows = [
        dict(layer=0, component="attention", example=0, influence=1.5),
        dict(layer=0, component="attention", example=1, influence=-2.0),
        dict(layer=0, component="attention", example=2, influence=0.5),
        dict(layer=0, component="mlp", example=0, influence=-1.0),
        dict(layer=1, component="mlp", example=0, influence=3.0),
        dict(layer=1, component="mlp", example=1, influence=0.0),
    ]
    assert aggregate_positive(rows) == {(0, "attention"): 2.0, (0, "mlp"): 0.0, (1, "mlp"): 3.0}
    assert aggregate_positive([]) == {}


def test_split_texts():
    texts = [f"text {i}" for i in range(20)]
    train, val = split_texts(texts, 8, 5, seed=3)
    assert len(train) == 8 and len(val) == 5
    assert not set(train) & set(val)
    assert set(train) | set(val) <= set(texts)
    assert (train, val) == split_texts(texts, 8, 5, seed=3)
    assert (train, val) != split_texts(texts, 8, 5, seed=4)
    assert split_texts(texts, 15, 5, seed=0)[0]  # exactly enough is fine
    from prunetts.influence import split_calibration_texts
    from prunetts.jobs import user_errors

    # user errors: one line in the influence job (they were tracebacks there)
    with pytest.raises(user_errors(), match=r"16 \+ 5 distinct texts"):
        split_texts(texts, 16, 5, seed=0)
    # a text repeated in the pool is one text: never on both sides
    repeated = [t for t in texts[:6] for _ in range(4)]
    for seed in range(20):
        train, val = split_texts(repeated, 4, 2, seed=seed)
        assert not set(train) & set(val) and len(set(train)) == 4
    with pytest.raises(user_errors(), match=r"got 6"):
        split_texts(repeated, 5, 2, seed=0)
    with pytest.raises(user_errors(), match="at least 2 distinct texts"):
        split_calibration_texts(["one text"] * 300, 4, 2, seed=0)


def test_a_small_corpus_is_split_three_to_one(caplog):
    """Fewer distinct texts than n_train + n_val: 3:1 (a quarter for validation, at least one), with a warning."""
    from prunetts.influence import split_calibration_texts

    texts = [f"text {i}" for i in range(12)]
    with caplog.at_level("WARNING", logger="prunetts.influence"):
        train, val = split_calibration_texts(texts + texts[:3], 64, 16, seed=0)
    assert (len(train), len(val)) == (9, 3) and not set(train) & set(val)
    assert "only 12 texts: LayerIF uses 9 train / 3 validation texts instead of 64 / 16" in caplog.text
    assert [len(x) for x in split_calibration_texts(texts[:3], 64, 16, seed=0)] == [2, 1]
    assert [len(x) for x in split_calibration_texts(texts, 8, 4, seed=0)] == [8, 4]  # enough: as asked


def test_rejects_too_short_texts(tiny_qwen3_dir):
    model, tok = _load(tiny_qwen3_dir)
    with pytest.raises(ValueError, match="the training text 'a' has 1 token"):
        compute_influence(model, tok, ["a long enough text", "a"], ["another text"], progress=False)
    # the check the workflow job and the CLI make before loading the model: the side, and where its texts came from
    from prunetts.influence import check_texts
    from prunetts.records import InputFileError

    check_texts(tok, ["a long enough text"], ["another text"], MAX_LEN)
    with pytest.raises(InputFileError, match="^LayerIF: the validation text 'b' has 1 token"):
        check_texts(tok, ["a long enough text"], ["b"], MAX_LEN)
    with pytest.raises(ValueError, match="^--influence-val v.jsonl: LayerIF: the validation text 'b'"):
        check_texts(tok, ["a long enough text"], ["b"], MAX_LEN, ("--calibration c4", "--influence-val v.jsonl"))


def test_non_finite_gradients_are_one_clear_error_not_a_silent_uniform_allocation(tiny_model_dir):
    model, tok = _load(tiny_model_dir)
    train, val = _texts()
    layer = Arch.of(model).layers(model)[1]
    with torch.no_grad():
        layer.mlp.up_proj.weight[0, 0] = float("inf")  # as an fp16 overflow would
    with pytest.raises(ValueError, match=r"non-finite scores for layer 0 attention .*float32"):
        compute_influence(model, tok, train, val, max_len=MAX_LEN, progress=False)


def test_influence_texts_never_share_a_text(tmp_path, caplog):
    """A training file alone is split into disjoint train / validation texts (before, validation came from the
    calibration texts, which overlap it entirely when both are the same file); a validation file removes its texts
    from the training side."""
    import json

    from prunetts.influence import influence_texts

    texts = [f"text number {i}" for i in range(40)]
    f = tmp_path / "texts.jsonl"
    f.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cal = (str(f), "text")
    train, val = influence_texts(str(f), None, "text", 12, 6, seed=0, calibration=cal)
    assert (len(train), len(val)) == (12, 6) and not set(train) & set(val)
    for train_source in (str(f), None):  # an explicit training file, or the calibration texts
        with caplog.at_level("WARNING"):
            train, val = influence_texts(train_source, str(f), "text", 10, 4, seed=0, calibration=cal)
        assert val == texts[:4] and train == texts[4:14]
        assert "skipped 4 training texts that are also validation texts" in caplog.text
        caplog.clear()
    with pytest.raises(ValueError, match="every training text is also a validation text"):
        influence_texts(str(f), str(f), "text", 10, 40, seed=0, calibration=cal)
    # repeated texts count once on both sides (they counted twice in the sums), and a short pool is said
    g = tmp_path / "repeats.jsonl"
    g.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:3] * 2 + texts[3:8] * 2))
    with caplog.at_level("WARNING"):
        train, val = influence_texts(str(g), str(g), "text", 10, 3, seed=0, calibration=cal)
    assert val == texts[:3] and train == texts[3:8]
    assert "5 training and 3 validation texts, not the 10 and 3 asked for" in caplog.text


def test_influence_files_have_their_own_text_field(tmp_path):
    """Reasoning traces in a file whose column is not the calibration's (C4's ``text``): ``influence.text_field``
    reads them, ``calibration.text_field`` the calibration pool."""
    import json

    from prunetts.influence import influence_texts

    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"trajectory": f"trace {i}"}) + "\n" for i in range(12)))
    cal = tmp_path / "c4.jsonl"
    cal.write_text("".join(json.dumps({"text": f"web page {i}"}) + "\n" for i in range(12)))
    train, val = influence_texts(str(traces), None, "trajectory", 6, 3, seed=0, calibration=(str(cal), "text"))
    assert all(t.startswith("trace ") for t in train + val)
    train, val = influence_texts(None, str(traces), "trajectory", 6, 3, seed=0, calibration=(str(cal), "text"))
    assert val == ["trace 0", "trace 1", "trace 2"] and train == [f"web page {i}" for i in range(6)]
    with pytest.raises(ValueError, match="no training texts"):
        influence_texts(None, None, "text", 6, 3, seed=0)


def test_influence_job_reads_its_files_with_influence_text_field(tiny_qwen3_dir, tmp_path):
    """The workflow's influence job: ``influence.text_field`` names the training file's column (here not the
    calibration's ``text``), and no calibration texts are needed when a training source is given."""
    import json

    from prunetts import artifacts, jobs

    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"trajectory": f"step {i} then {i + 1}"}) + "\n" for i in range(6)))
    cfg = dict(
        train_source=str(traces), val_source=None, text_field="trajectory", n_train=4, n_val=2, max_len=16,
        projection_dim=0, seed=0, device="cpu", dtype="float32",
    )  # fmt: skip
    out = tmp_path / "influence.parquet"
    jobs.influence(
        str(tiny_qwen3_dir), str(out), model="tiny", influence=cfg, calibration=None, trust_remote_code=False
    )
    rows = artifacts.read("influence", out).to_pylist()
    assert sorted({r["example"] for r in rows}) == [0, 1, 2, 3] and {r["model"] for r in rows} == {"tiny"}


def test_influence_job_rejects_a_one_token_text_before_loading_the_model(tiny_qwen3_dir, tmp_path, monkeypatch):
    import json

    import prunetts.models
    from prunetts import jobs
    from prunetts.records import InputFileError

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the texts were checked")

    monkeypatch.setattr(prunetts.models, "load_model", no_model)
    traces = tmp_path / "traces.jsonl"
    texts = [f"step {i} then {i + 1}" for i in range(6)]
    texts[2] = "a"
    traces.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cfg = dict(
        train_source=str(traces), val_source=None, text_field="text", n_train=4, n_val=2, max_len=16,
        projection_dim=0, seed=0, device="cpu", dtype="float32",
    )  # fmt: skip
    with pytest.raises(InputFileError, match=r"^LayerIF: the (training|validation) text .a. has 1 token"):
        jobs.influence(
            str(tiny_qwen3_dir), str(tmp_path / "i.parquet"), model="t", influence=cfg, calibration=None,
            trust_remote_code=False,
        )  # fmt: skip


def test_s1k_source_gives_problem_thinking_and_answer_as_one_text(tmp_path, monkeypatch):
    """``s1k`` (config/paper.yaml's LayerIF texts) reads simplescaling/s1K-1.1's parquet file through the hub cache
    (stubbed here: no network) and joins each record's problem, DeepSeek-R1 thinking and answer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prunetts import records
    from prunetts.calibration import CalibrationError, load_texts
    from prunetts.config import _source_problems
    from prunetts.influence import influence_texts

    rows = [
        dict(
            solution=f"s{i}",
            question=f"Q{i}?",
            cot_type="math",
            metadata="{}",
            deepseek_thinking_trajectory=f"think {i}\n",
            deepseek_attempt=f"answer {i}",
        )
        for i in range(20)
    ]
    parquet = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    calls = []

    def hub_file(repo, filename, revision=None):
        calls.append((repo, filename, revision))
        return parquet

    monkeypatch.setattr(records, "hub_dataset_file", hub_file)
    texts = load_texts("s1k@" + "a" * 40)
    assert len(texts) == 20 and texts[3] == "Q3?\n\nthink 3\n\nanswer 3"
    assert calls == [("simplescaling/s1K-1.1", "data/train-00000-of-00001.parquet", "a" * 40)]
    assert load_texts("s1k", "question", limit=2) == ["Q0?", "Q1?"]  # one column, as text_field names it
    train, val = influence_texts("s1k", None, "text", 12, 4, seed=0)  # config/paper.yaml's way: held-out splits
    assert len(train) == 12 and len(val) == 4 and not set(train) & set(val) and set(train + val) <= set(texts)
    pq.write_table(pa.Table.from_pylist([{"text": "x"}]), parquet)  # another dataset's layout
    with pytest.raises(CalibrationError, match="not s1K-1.1's layout .no question, deepseek_thinking_trajectory"):
        load_texts("s1k")
    assert _source_problems("influence.train_source", "s1k", hub_ok=False) == []
    assert "s1k@ names no revision" in _source_problems("influence.train_source", "s1k@", hub_ok=False)[0]


def test_bfloat16_model_scores_track_float32(tiny_qwen3_dir):
    """influence.dtype bfloat16: the factors X, D come in bf16 and each sketch is taken in float32 from them; the
    scores must be finite and follow the float32 model's (the same checkpoint) to bf16's precision."""
    train, val = _texts()
    model32, tok = _load(tiny_qwen3_dir)
    model16 = load_model(str(tiny_qwen3_dir), dtype="bfloat16", device="cpu")
    assert next(model16.parameters()).dtype == torch.bfloat16
    for dim in (0, 256):
        a, b = (
            torch.tensor(
                [r["influence"] for r in compute_influence(m, tok, train, val, MAX_LEN, dim, seed=1, progress=False)],
                dtype=torch.float64,
            )
            for m in (model32, model16)
        )
        assert torch.isfinite(b).all()
        assert _pearson(a, b) > 0.999, dim  # 0.999997-0.999999 measured


def test_a_failure_mid_text_leaves_no_hooks_and_no_state(tiny_qwen3_dir, monkeypatch):
    """An error while a text's gradients are sketched (here: the third sketch) must take the forward hooks and the
    gradient flags with it; the next call on the same model gives the scores of a fresh one."""
    import prunetts.influence as inf

    model, tok = _load(tiny_qwen3_dir)
    train, val = _texts()
    expected = compute_influence(model, tok, train, val, MAX_LEN, 100, seed=2, progress=False)
    real, calls = inf._project, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(inf, "_project", failing)
    with pytest.raises(RuntimeError, match="boom"):
        compute_influence(model, tok, train, val, MAX_LEN, 100, seed=2, progress=False)
    monkeypatch.setattr(inf, "_project", real)
    assert not any(m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    assert compute_influence(model, tok, train, val, MAX_LEN, 100, seed=2, progress=False) == expected
