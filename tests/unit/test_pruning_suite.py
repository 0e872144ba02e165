"""The pruning suite against brute-force references on tiny random models of every family."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from prunetts.models import Arch, load_model
from prunetts.pruning import allocation as alloc
from prunetts.pruning.magnitude import magnitude_mask
from prunetts.pruning.pruner import prune_checkpoint
from prunetts.pruning.shortgpt import layers_to_remove, n_for_sparsity, pruned_config
from prunetts.pruning.wanda import wanda_mask
from tests.conftest import modules_of, zero_masks

WINDOWS = [[(11 * i + 3 * j) % 250 for j in range(24)] for i in range(6)]


def test_header_module_list_equals_the_linear_set(tiny_model_dir):
    model = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    arch = Arch.of(model)
    expected = sorted(
        (li, name, lin.weight.numel())
        for li, layer in enumerate(arch.layers(model))
        for name, lin in arch.prunable_linears(layer).items()
    )
    assert modules_of(tiny_model_dir) == expected


def brute_force_sequential_wanda(model_dir, allocation, group="row"):
    """The reference algorithm literally: full model in memory; for each layer l, one full forward of the (partly
    pruned) model collects layer l's input statistics, then layer l is pruned."""
    model = load_model(str(model_dir), dtype="float32", device="cpu")
    arch = Arch.of(model)
    for li, layer in enumerate(arch.layers(model)):
        linears = arch.prunable_linears(layer)
        sq = {}

        def hook(_m, i, _o, name, sq=sq):
            sq[name] = sq.get(name, 0) + (i[0].double().reshape(-1, i[0].shape[-1]) ** 2).sum(0)

        hooks = [lin.register_forward_hook(lambda m, i, o, n=name: hook(m, i, o, n)) for name, lin in linears.items()]
        with torch.no_grad():
            model(torch.tensor(WINDOWS))
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for name, lin in linears.items():
                lin.weight[wanda_mask(lin.weight, sq[name], allocation[(li, name)], group)] = 0
    return {
        (li, name): (lin.weight == 0)
        for li, layer in enumerate(arch.layers(model))
        for name, lin in arch.prunable_linears(layer).items()
    }


def test_sequential_wanda_runs_each_layer_once_for_statistics_and_all_but_the_last_once_more(
    tiny_qwen3_dir, tmp_path, monkeypatch
):
    """The exact saving the test below cannot see: nothing reads the last layer's outputs, so it is not re-run."""
    from prunetts.layerwise import LayerRunner

    calls, forward = [], LayerRunner.forward

    def counted(self, i, layer, hidden, out=None):
        calls.append((i, out is not False))
        return forward(self, i, layer, hidden, out=out)

    monkeypatch.setattr(LayerRunner, "forward", counted)
    mods = modules_of(tiny_qwen3_dir)
    prune_checkpoint(
        str(tiny_qwen3_dir), tmp_path / "out", "wanda", alloc.uniform(mods, 0.4), windows=WINDOWS,
        device="cpu", dtype="float32", progress=False,
    )  # fmt: skip
    n = 1 + max(layer for layer, _, _ in mods)
    assert [i for i, kept in calls if not kept] == list(range(n))  # statistics passes, outputs discarded
    assert [i for i, kept in calls if kept] == list(range(n - 1))  # the pruned layers' outputs, the last one's not


@pytest.mark.parametrize("group", ["row", "matrix"])
def test_sequential_wanda_equals_brute_force(tiny_model_dir, tmp_path, group):
    mods = modules_of(tiny_model_dir)
    allocation = alloc.uniform(mods, 0.4)
    records = prune_checkpoint(
        str(tiny_model_dir),
        tmp_path / "out",
        "wanda",
        allocation,
        windows=WINDOWS,
        wanda_mode="sequential",
        wanda_group=group,
        batch_size=4,
        device="cpu",
        dtype="float32",
        progress=False,
    )
    ours = zero_masks(tmp_path / "out")
    ref = brute_force_sequential_wanda(tiny_model_dir, allocation, group)
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key
    for r in records:
        rows, cols = ours[(r["layer"], r["module"])].shape
        if group == "row":
            assert (ours[(r["layer"], r["module"])].sum(1) == int(cols * 0.4)).all()
        else:
            assert r["n_pruned"] == int(rows * cols * 0.4)


def test_one_pass_matrix_wanda_equals_the_paper_codes_wanda_influence(tiny_model_dir, tmp_path):
    """TTS-Pruning's ``wanda_influence`` (the paper's LayerIF Wanda): one forward of the dense model gives every
    linear's statistics, then each matrix is pruned with the whole matrix as the comparison group, at per-layer
    sparsities that differ between layers and components (as a LayerIF allocation)."""
    from prunetts.capture import capture

    mods = modules_of(tiny_model_dir)
    allocation = {(li, name): 0.1 + 0.05 * li + (0.1 if name.startswith("mlp.") else 0.0) for li, name, _ in mods}
    linear, _ = capture(str(tiny_model_dir), WINDOWS, 4, "cpu", "float32", progress=False)
    records = prune_checkpoint(
        str(tiny_model_dir),
        tmp_path / "out",
        "wanda",
        allocation,
        stats={k: s for k, (s, _) in linear.items()},
        wanda_mode="one_pass",
        wanda_group="matrix",
        device="cpu",
        dtype="float32",
        progress=False,
    )
    model = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    arch = Arch.of(model)
    linears = {
        (li, n): lin for li, layer in enumerate(arch.layers(model)) for n, lin in arch.prunable_linears(layer).items()
    }
    sq = {}

    def hook(key):
        def record(_m, i, _o):
            sq[key] = sq.get(key, 0) + (i[0].double().reshape(-1, i[0].shape[-1]) ** 2).sum(0)

        return record

    hooks = [lin.register_forward_hook(hook(key)) for key, lin in linears.items()]
    with torch.no_grad():
        model(torch.tensor(WINDOWS))
    for h in hooks:
        h.remove()
    ours = zero_masks(tmp_path / "out")
    for key, lin in linears.items():
        ref = wanda_mask(lin.weight, sq[key], allocation[key], "matrix")
        assert torch.equal(ours[key], ref), key
    for r in records:
        assert r["n_pruned"] == int(r["numel"] * allocation[(r["layer"], r["module"])])


@pytest.mark.parametrize("method", ["magnitude", "wanda"])
def test_torch_mask_path_writes_the_same_checkpoint(tiny_model_dir, tmp_path, monkeypatch, method):
    """On GPU, selection, comparison, counting and zeroing run in torch instead of numpy (``masks.py``). Forced here
    on CPU, that path must write the numpy path's checkpoint byte for byte (the GPU run itself is unverified)."""
    import prunetts.pruning.masks as masks

    mods = modules_of(tiny_model_dir)
    targets = {(layer, name): 0.1 + 0.07 * layer + 0.01 * len(name) for layer, name, _ in mods}
    kw = dict(windows=WINDOWS, device="cpu", dtype="float32", progress=False)
    prune_checkpoint(str(tiny_model_dir), tmp_path / "numpy", method, targets, **kw)
    monkeypatch.setattr(masks, "_on_cpu", lambda *t: False)
    calls = []
    real = torch.Tensor.kthvalue
    monkeypatch.setattr(torch.Tensor, "kthvalue", lambda *a, **k: calls.append(1) or real(*a, **k))
    prune_checkpoint(str(tiny_model_dir), tmp_path / "torch", method, targets, **kw)
    assert len(calls) == len(mods)  # the torch selection ran for every matrix
    a, b = (tmp_path / d / "model.safetensors" for d in ("numpy", "torch"))
    assert a.read_bytes() == b.read_bytes()


def test_sequential_differs_from_one_pass(tiny_qwen3_dir, tmp_path):
    from prunetts.capture import capture

    mods = modules_of(tiny_qwen3_dir)
    allocation = alloc.uniform(mods, 0.5)
    linear, _ = capture(str(tiny_qwen3_dir), WINDOWS, 4, "cpu", "float32", progress=False)
    stats = {k: s for k, (s, _) in linear.items()}
    prune_checkpoint(
        str(tiny_qwen3_dir),
        tmp_path / "seq",
        "wanda",
        allocation,
        windows=WINDOWS,
        batch_size=4,
        device="cpu",
        dtype="float32",
        progress=False,
    )
    prune_checkpoint(
        str(tiny_qwen3_dir),
        tmp_path / "one",
        "wanda",
        allocation,
        stats=stats,
        wanda_mode="one_pass",
        device="cpu",
        dtype="float32",
        progress=False,
    )
    seq, one = zero_masks(tmp_path / "seq"), zero_masks(tmp_path / "one")
    first = [k for k in seq if k[0] == 0]
    later = [k for k in seq if k[0] > 0]
    assert all(torch.equal(seq[k], one[k]) for k in first)  # layer 0 sees the same (dense) inputs
    assert any(not torch.equal(seq[k], one[k]) for k in later)


def test_streaming_magnitude_equals_in_memory_and_keeps_everything_else(tiny_model_dir, tmp_path):
    mods = modules_of(tiny_model_dir)
    allocation = alloc.uniform(mods, 0.3)
    records = prune_checkpoint(
        str(tiny_model_dir), tmp_path / "out", "magnitude", allocation, device="cpu", dtype="float32", progress=False
    )
    dense = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    pruned = load_model(str(tmp_path / "out"), dtype="float32", device="cpu")
    d_state, p_state = dense.state_dict(), pruned.state_dict()
    prunable = {f"model.layers.{li}.{name}.weight" for li, name, _ in mods}
    for name, t in d_state.items():
        if name in prunable:
            expected = t.clone()
            expected[magnitude_mask(t, 0.3)] = 0
            assert torch.equal(p_state[name], expected), name
        else:  # embeddings, norms, biases, lm_head untouched
            assert torch.equal(p_state[name], t), name
    total = sum(r["numel"] for r in records)
    zeros = sum(r["n_zero"] for r in records)
    assert abs(zeros - 0.3 * total) <= len(records)  # within one weight per matrix


def test_realized_sparsity_owl_and_layerif_within_one_weight_per_matrix(tiny_model_dir, tmp_path):
    mods = modules_of(tiny_model_dir)
    layers = sorted({m[0] for m in mods})
    ratios = {i: 1.0 + 2.0 * i for i in layers}
    for k, targets in enumerate(
        (
            alloc.owl(mods, 0.3, ratios, 0.08),
            alloc.layerif(mods, 0.3, {(i, c): float(i + (c == "mlp")) for i in layers for c in ("attention", "mlp")}),
        )
    ):
        records = prune_checkpoint(
            str(tiny_model_dir), tmp_path / f"o{k}", "magnitude", targets, device="cpu", dtype="float32", progress=False
        )
        for r in records:
            assert abs(r["n_zero"] - targets[(r["layer"], r["module"])] * r["numel"]) < 1
        total = sum(r["numel"] for r in records)
        assert abs(sum(r["n_zero"] for r in records) - 0.3 * total) <= len(records)


def test_owl_allocation_properties(caplog):
    ratios = {0: 1.5, 1: 4.0, 2: 0.5, 3: 2.2, 4: 3.1}
    s = alloc.owl_layer_sparsity(ratios, 0.2, 0.08)
    assert sum(s.values()) / len(s) == pytest.approx(0.2, abs=1e-12)
    assert max(s.values()) - min(s.values()) == pytest.approx(0.16)
    order_ratio = sorted(ratios, key=ratios.get)
    order_sparsity = sorted(s, key=s.get, reverse=True)
    assert order_ratio == order_sparsity  # more outliers -> lower sparsity
    assert alloc.owl_layer_sparsity({0: 1.0, 1: 1.0}, 0.2, 0.08) == {0: 0.2, 1: 0.2}
    clamped = alloc.owl([(0, "mlp.up_proj", 10), (1, "mlp.up_proj", 10)], 0.05, {0: 0.0, 1: 1.0}, 0.08)
    assert clamped[(0, "mlp.up_proj")] == pytest.approx(0.13) and clamped[(1, "mlp.up_proj")] == 0.01
    # magnitude-OWL (TTS-Pruning's prune_mag_outlier) has no clamp: int(numel * s) <= 0 prunes nothing
    mag = alloc.owl([(0, "mlp.up_proj", 10), (1, "mlp.up_proj", 10)], 0.05, {0: 0.0, 1: 1.0}, 0.08, "magnitude")
    assert mag[(0, "mlp.up_proj")] == pytest.approx(0.13) and mag[(1, "mlp.up_proj")] == 0.0
    # one layer far above the rest at the paper's S = 0.1, lam = 0.08 (not only lam > S): clamped, the mean leaves S
    ratios36 = {0: 10.0, **{i: 1.0 for i in range(1, 36)}}
    mods36 = [(i, "mlp.up_proj", 10) for i in range(36)]
    for method, floor, mean in (("wanda", 0.01, 0.10182), ("magnitude", 0.0, 0.10154)):
        with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
            t = alloc.owl(mods36, 0.1, ratios36, 0.08, method)
        assert t[(0, "mlp.up_proj")] == floor and sum(t.values()) / 36 == pytest.approx(mean, abs=1e-5)
        assert f"OWL: layer(s) 0 would get sparsity <= 0 (outlier ratios far above the rest); set to {floor}" in (
            caplog.text
        )
        assert f"the mean over layers is {mean:.4f}, not 0.1" in caplog.text
        caplog.clear()
    with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
        alloc.owl(mods36, 0.2, ratios36, 0.08)
    assert not caplog.text
    from prunetts.jobs import user_errors

    # S + mean(D') > 1: an error, not a full prune; a user error, so one line in the allocate job, no traceback
    with pytest.raises(user_errors(), match="would get sparsity 1.2"):
        alloc.owl([(i, "mlp.up_proj", 10) for i in range(4)], 0.9, {0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0}, 0.2)
    with pytest.raises(user_errors(), match="ratio of layer 1 is not finite"):
        alloc.owl([(i, "mlp.up_proj", 10) for i in range(3)], 0.2, {0: 1.0, 1: float("nan"), 2: 3.0}, 0.08)


def test_layerif_min_max_after_smoothing_spans_e1_to_e2():
    """TTS-Pruning's allocate_layer_sparsity min-maxes the smoothed, clipped scores again, so the per-layer
    sparsities always span [e1, e2] times eta (max / min = e2 / e1), however much the smoothing flattened them."""
    import numpy as np
    from scipy.signal import savgol_filter

    rng = np.random.default_rng(0)
    scores = rng.gamma(2.0, 1.0, 36)
    scores[0] *= 4  # a spike that the Savitzky-Golay filter flattens
    a = (scores - scores.min()) / (scores.max() - scores.min())
    smoothed = np.clip(savgol_filter(a, 5, 2), 0, 1)
    assert smoothed.max() - smoothed.min() < 0.9  # the case where the second min-max matters
    for direction in ("paper_code", "layerif_paper"):
        p = np.array(alloc.layerif_component(scores.tolist(), [100] * 36, 0.2, 0.05, 0.40, direction))
        assert p.mean() == pytest.approx(0.2)
        assert p.max() / p.min() == pytest.approx(0.40 / 0.05, rel=1e-6)
    s_hat = (smoothed - smoothed.min()) / (smoothed.max() - smoothed.min() + 1e-8)  # transcription, paper code
    p_hat = (1 - s_hat) * 0.35 + 0.05
    expected = np.clip(0.2 * 3600 / ((p_hat * 100).sum() + 1e-8) * p_hat, 0, 1)
    np.testing.assert_allclose(
        alloc.layerif_component(scores.tolist(), [100] * 36, 0.2, 0.05, 0.40, "paper_code"), expected, rtol=1e-12
    )


def test_layerif_equals_the_paper_code_with_unequal_layers_and_overshoot():
    """Literal transcription of TTS-Pruning's ``allocate_layer_sparsity`` on a step profile, whose Savitzky-Golay
    smoothing overshoots [0, 1] (so the clip matters), with parameter counts that differ between layers (so eta must
    weight by them: an unweighted mean would miss S)."""
    import numpy as np
    from scipy.signal import savgol_filter

    scores = np.array([0.0] * 10 + [10.0] * 6 + [2.0, 0.5] * 4)
    numels = np.array([400.0] * 10 + [100.0] * (len(scores) - 10))
    a = (scores - scores.min()) / (scores.max() - scores.min())
    smoothed = savgol_filter(a, 5, 2)
    assert smoothed.min() < 0 and smoothed.max() > 1  # the clip below changes the result
    s_hat = np.clip(smoothed, 0, 1)
    s_hat = (s_hat - s_hat.min()) / (s_hat.max() - s_hat.min() + 1e-8)
    p_hat = (1 - s_hat) * 0.35 + 0.05
    expected = np.clip(0.2 * numels.sum() / ((p_hat * numels).sum() + 1e-8) * p_hat, 0, 1)
    p = np.array(alloc.layerif_component(scores.tolist(), numels.tolist(), 0.2, 0.05, 0.40, "paper_code"))
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert (p * numels).sum() / numels.sum() == pytest.approx(0.2, abs=1e-9)
    assert p.mean() != pytest.approx(0.2, abs=1e-3)  # the plain mean differs: the weighting is exercised


def test_layerif_normalisation_and_rescaling():
    import numpy as np

    scores = [5.0, 1.0, 3.0, 0.0, 2.0, 4.0, 6.0]
    numels = [10] * 7
    p = np.array(alloc.layerif_component(scores, numels, 0.2, 0.05, 0.40, "paper_code", window=3, polyorder=1))
    assert (p * 10).sum() / 70 == pytest.approx(0.2)
    # no smoothing (window 1 is not allowed by scipy; use fewer layers than the window): plain min-max mapping
    p4 = np.array(alloc.layerif_component([0.0, 1.0, 2.0, 4.0], [1, 1, 1, 1], 0.2, 0.05, 0.40, "paper_code"))
    s_hat = np.array([0.0, 0.25, 0.5, 1.0])
    p_hat = (1 - s_hat) * 0.35 + 0.05
    np.testing.assert_allclose(p4, p_hat * 0.2 / p_hat.mean())
    rev = np.array(alloc.layerif_component([0.0, 1.0, 2.0, 4.0], [1, 1, 1, 1], 0.2, 0.05, 0.40, "layerif_paper"))
    assert np.argmax(rev) == 3 and np.argmin(rev) == 0  # layerif_paper: more influence -> more pruning
    assert np.argmax(p4) == 0
    # negative sums use |S| (as the paper code), constant scores give uniform S
    np.testing.assert_allclose(alloc.layerif_component([3.0] * 6, [2] * 6, 0.2, 0.05, 0.4, "paper_code"), [0.2] * 6)
    with pytest.raises(ValueError, match="not all finite"):
        alloc.layerif_component([1.0, float("nan"), 3.0, 2.0, 5.0, 4.0], [1] * 6, 0.2, 0.05, 0.4, "paper_code")
    # per component: attention and mlp each hit S (weighted by their parameter counts)
    mods = [(i, n, 6 if n.startswith("mlp") else 4) for i in range(5) for n in ("self_attn.q_proj", "mlp.up_proj")]
    t = alloc.layerif(
        mods, 0.3, {(i, c): float((i * 7 + (c == "mlp")) % 5) for i in range(5) for c in ("attention", "mlp")}
    )
    for comp in ("self_attn.q_proj", "mlp.up_proj"):
        assert sum(t[(i, comp)] for i in range(5)) / 5 == pytest.approx(0.3)


def test_layerif_smooths_from_window_layers_on_and_uses_absolute_sums():
    """Savitzky-Golay runs as soon as there are ``window`` layers (skipped only below it, METHODS §4.4); the sums
    enter as |S| (the paper code's ``abs``); each component's parameter-weighted sparsity is S also when the layers'
    components differ in size (d = the sum of the component's linears in that layer)."""
    import numpy as np
    from scipy.signal import savgol_filter

    scores = np.array([0.0, 10.0, 0.0, 10.0, 3.0])  # exactly window = 5 layers
    a = scores / 10.0
    s_hat = np.clip(savgol_filter(a, 5, 2), 0, 1)
    s_hat = (s_hat - s_hat.min()) / (s_hat.max() - s_hat.min() + 1e-8)
    p_hat = (1 - s_hat) * 0.35 + 0.05
    expected = 0.2 * 5 / (p_hat.sum() + 1e-8) * p_hat
    got = alloc.layerif_component(scores.tolist(), [1] * 5, 0.2, 0.05, 0.40, "paper_code")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    unsmoothed = alloc.layerif_component(scores[:4].tolist(), [1] * 4, 0.2, 0.05, 0.40, "paper_code")
    assert not np.allclose(got[:4], unsmoothed, atol=1e-3)  # the test tells smoothing from none
    # negative sums: |S|, so -4 ranks as 4 (the highest influence: the least pruning in paper_code)
    signed = alloc.layerif_component([-4.0, 0.0, 1.0, 2.0], [1] * 4, 0.2, 0.05, 0.40, "paper_code")
    np.testing.assert_allclose(
        signed, alloc.layerif_component([4.0, 0.0, 1.0, 2.0], [1] * 4, 0.2, 0.05, 0.40, "paper_code")
    )
    assert np.argmin(signed) == 0
    # layers whose attention linears differ in size: each component still hits S, weighted by its parameters
    sizes = {0: (8, 4), 1: (2, 4), 2: (4, 4), 3: (16, 4)}
    mods = [(i, n, m) for i, (q, o) in sizes.items() for n, m in (("self_attn.q_proj", q), ("self_attn.o_proj", o))]
    mods += [(i, "mlp.up_proj", 6) for i in sizes]
    t = alloc.layerif(
        mods, 0.3, {(i, c): float(i * (3 if c == "mlp" else 1)) for i in sizes for c in ("attention", "mlp")}
    )
    for comp in ("self_attn.", "mlp."):
        part = [(t[(i, n)], m) for i, n, m in mods if n.startswith(comp)]
        assert sum(s * m for s, m in part) / sum(m for _, m in part) == pytest.approx(0.3)
        assert len({round(s, 9) for s, _ in part}) > 1  # not the trivial uniform allocation


def test_layerif_capped_layers_are_reported(caplog):
    """A large S with a wide [e1, e2] pushes eta * p_hat above 1: clipped as the paper's code (the whole component
    of that layer goes), and the shortfall against S is logged instead of passing silently."""
    import numpy as np

    scores, numels = [1.0, 1.0, 1.0, 0.0], [1, 1, 1, 1]  # p_hat = [e1, e1, e1, e2]: eta = 0.5 * 4 / 0.55
    with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
        p = np.array(alloc.layerif_component(scores, numels, 0.5, 0.05, 0.40, "paper_code"))
    np.testing.assert_allclose(p, [0.05 * 2 / 0.55] * 3 + [1.0], rtol=1e-6)
    assert p.mean() < 0.5
    assert f"1 of 4 layers capped at sparsity 1.0 (eta = 3.636); this component's sparsity is {p.mean():.4f}" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
        alloc.layerif_component(scores, numels, 0.2, 0.05, 0.40, "paper_code")
    assert not caplog.text


def test_shortgpt_choice():
    bi = {0: 0.5, 1: 0.05, 2: 0.2, 3: 0.01, 4: 0.3, 5: 0.0}
    assert layers_to_remove(bi, 6, 2) == [1, 3]  # layer 5 is the last: never removed
    assert n_for_sparsity(0.2, 36) == 7 and n_for_sparsity(0.1, 28) == 3
    with pytest.raises(ValueError, match="cannot remove 6 of 6"):
        layers_to_remove(bi, 6, 6)
    with pytest.raises(ValueError, match="cannot remove 0 of 6"):  # removing nothing would be the dense model
        layers_to_remove(bi, 6, 0)
    with pytest.raises(ValueError, match="ShortGPT needs at least 2"):
        layers_to_remove({0: 0.1}, 1, 1)
    with pytest.raises(ValueError, match="Block Influence of layer 1 is nan; recompute the capture"):
        layers_to_remove({**bi, 1: float("nan")}, 6, 2)  # sorted() with a NaN key would return [0, 1]
    assert layers_to_remove({0: 0.3, 1: 0.1, 2: 0.1, 3: 0.1, 4: 0.0}, 5, 2) == [1, 2]  # ties: lower index first
    # round(S * L), an exact half to the even count (0.125 x 36 = 4.5 -> 4), and at least one layer
    assert n_for_sparsity(0.125, 36) == 4 and n_for_sparsity(0.375, 36) == 14
    assert n_for_sparsity(0.01, 28) == 1
    old = {"num_hidden_layers": 4, "layer_types": ["a", "b", "c", "d"], "max_window_layers": 2}
    cfg = pruned_config(old, [0, 2, 3])
    assert cfg == {"num_hidden_layers": 3, "layer_types": ["a", "c", "d"], "max_window_layers": 1}
    # only per-layer lists are sliced: a list that merely has L entries (Qwen's two EOS ids, L = 2) stays whole
    old = {"num_hidden_layers": 2, "eos_token_id": [151645, 151643], "layer_types": ["a", "b"]}
    assert pruned_config(old, [1]) == {"num_hidden_layers": 1, "eos_token_id": [151645, 151643], "layer_types": ["b"]}


def test_shortgpt_keeps_each_layers_attention_type_where_the_config_leaves_max_window_layers_out():
    """A Qwen2/Qwen3 config.json that turns the sliding window on without ``max_window_layers`` gets its class's
    default (28): layers 28 and up slide. Removing layers below 28 must not shift the sliding ones: the pruned config
    states the counted limit (it was left out, so the reloaded model made other layers sliding)."""
    from transformers import AutoConfig

    def layer_types(cfg):
        rest = {k: v for k, v in cfg.items() if k != "model_type"}
        return AutoConfig.for_model(cfg["model_type"], **rest).layer_types

    keep = list(range(3, 30))
    for family in ("qwen2", "qwen3"):
        old = dict(model_type=family, num_hidden_layers=30, use_sliding_window=True, sliding_window=4)
        new = pruned_config(old, keep)
        assert "sliding_attention" in layer_types(old)
        assert layer_types(new) == [layer_types(old)[i] for i in keep], family
        assert new["max_window_layers"] == 25
        # sliding window off: every layer attends fully whatever the limit, and the config stays as it was
        off = {**old, "use_sliding_window": False}
        assert pruned_config(off, keep) == {**off, "num_hidden_layers": 27}
    llama = dict(model_type="llama", num_hidden_layers=4)
    assert pruned_config(llama, [0, 1, 3]) == {**llama, "num_hidden_layers": 3}


def test_component_of_a_prunable_linear():
    assert alloc.component("self_attn.o_proj") == "attention" and alloc.component("mlp.down_proj") == "mlp"
    with pytest.raises(ValueError, match="'block_sparse_moe.w1' is neither in self_attn nor in mlp"):
        alloc.component("block_sparse_moe.w1")


def test_for_variant_gives_each_allocation_its_scores_and_options():
    """What the workflow's allocate job and ``prunetts prune`` both call, from the variant's id."""
    from prunetts.config import Variant, parse_variant

    mods = [(layer, name, 16) for layer in range(4) for name in ("self_attn.q_proj", "mlp.up_proj")]

    def targets(variant, scores=None, options=None):
        return alloc.for_variant(parse_variant(variant), mods, scores, options or {}, 4)

    def removed(t):
        return sorted({layer for (layer, _), s in t.items() if s == 1.0})

    bi = {0: 0.5, 1: 0.1, 2: 0.3, 3: 0.0}  # layer 3 is the last: never removed
    assert removed(targets("shortgpt-n2", bi)) == [1, 2]  # the explicit count, not round(S x L)
    assert removed(targets("shortgpt-s0.25", bi)) == [1]
    assert set(targets("wanda-uniform-s0.30").values()) == {0.3}
    # layer 3 has far more outliers: S - (D' - mean D') = 0.05 - 0.12 < 0, set as the paper's code per method
    ratios = {0: 1.0, 1: 1.0, 2: 1.0, 3: 9.0}
    wanda = targets("wanda-owl-s0.05", ratios, {"lambda": 0.08})
    assert (
        wanda[3, "mlp.up_proj"] == 0.01
        and targets("magnitude-owl-s0.05", ratios, {"lambda": 0.08})[3, "mlp.up_proj"] == 0
    )
    assert targets("wanda-owl-s0.05", ratios) == wanda  # lambda 0.08 when the options leave it out
    with pytest.raises(ValueError, match="unknown allocation 'random'"):
        alloc.for_variant(Variant("wanda", "random", 0.2), mods, None, {}, 4)


def test_block_influence_is_one_minus_the_cosine_so_the_least_changing_layer_goes():
    """BI_l = 1 - mean cos(input of l, input of l + 1): the layer whose output is most like its input has the lowest
    BI and is removed first (the score the workflow's ``layer_scores`` job and ``prunetts prune`` both use)."""
    from prunetts.scores import bi_scores

    capture_layers = [dict(layer=i, cos_mean=c) for i, c in enumerate([0.30, 0.95, 0.60, 0.99, 0.10])]
    bi = bi_scores(capture_layers)
    assert bi == pytest.approx({0: 0.70, 1: 0.05, 2: 0.40, 3: 0.01, 4: 0.90})
    assert layers_to_remove(bi, 5, 2) == [1, 3]  # the two most input-like layers (3 is below 4 = the last)


def test_shortgpt_checkpoint_reloads_and_generates(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from prunetts.capture import capture

    _, layers = capture(str(tiny_model_dir), WINDOWS, 4, "cpu", "float32", progress=False)
    bi = {i: 1 - c for i, c, _ in layers}
    mods = modules_of(tiny_model_dir)
    removed = layers_to_remove(bi, len(layers), 1)
    records = prune_checkpoint(str(tiny_model_dir), tmp_path / "sg", "shortgpt", alloc.shortgpt(mods, removed))
    assert {r["layer"] for r in records if r["target_sparsity"] == 1.0} == set(removed)
    cfg = json.loads((tmp_path / "sg" / "config.json").read_text())
    assert cfg["num_hidden_layers"] == len(layers) - 1
    if "layer_types" in cfg:
        assert len(cfg["layer_types"]) == len(layers) - 1
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "sg", dtype=torch.float32)
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(len(layers) - 1))
    dense = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    kept = [i for i in range(len(layers)) if i not in removed]
    for new, old in enumerate(kept):
        for (name, a), (_, b) in zip(
            model.model.layers[new].state_dict().items(), dense.model.layers[old].state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name
    out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=5, do_sample=False)  # KV cache works
    assert out.shape == (1, 8)


def test_shortgpt_records_count_the_zeros_the_kept_layers_already_have(tiny_model_dir, tmp_path):
    """ShortGPT on an already sparse checkpoint: the realized sparsity of a kept linear is its own zeros."""
    mods = modules_of(tiny_model_dir)
    sparse = prune_checkpoint(str(tiny_model_dir), tmp_path / "mag", "magnitude", alloc.uniform(mods, 0.5))
    records = prune_checkpoint(str(tmp_path / "mag"), tmp_path / "sg", "shortgpt", alloc.shortgpt(mods, [0]))
    zeros = {(r["layer"], r["module"]): r["n_zero"] for r in sparse}
    assert all(n > 0 for n in zeros.values())
    for r in records:
        want = r["numel"] if r["layer"] == 0 else zeros[r["layer"], r["module"]]
        assert r["n_zero"] == want, (r["layer"], r["module"])


@pytest.mark.parametrize("max_pending", [1, 512 * 1024**2])
def test_sharded_writer_round_trip(tiny_model_dir, tmp_path, max_pending):
    """Tensors streamed into planned shards, one add at a time (with at most one tensor waiting for the writer thread,
    or many): the files are byte for byte what writing each shard whole gives, and transformers loads them."""
    import json

    from transformers import AutoModelForCausalLM

    from prunetts.checkpoint import INDEX, Reader, Writer, write_safetensors

    reader = Reader(tiny_model_dir)
    names = reader.other_names() + [n for i in range(3) for n in reader.layer_names(i)]
    out = tmp_path / "sharded"
    writer = Writer(out, reader.layout(names), max_shard_bytes=20_000, max_pending_bytes=max_pending)
    for n in names:
        writer.add(reader.load([n]))
    writer.finish(reader.config, reader.dir)
    weight_map = json.loads((out / INDEX).read_text())["weight_map"]
    assert sorted(weight_map) == sorted(names) and len(set(weight_map.values())) > 2
    for shard in sorted(set(weight_map.values())):
        whole = tmp_path / "whole.safetensors"
        write_safetensors(whole, reader.load([n for n, f in weight_map.items() if f == shard]), {"format": "pt"})
        assert (out / shard).read_bytes() == whole.read_bytes(), shard
    again = Reader(out)
    for n in names:
        assert torch.equal(again.load([n])[n], reader.load([n])[n])
    AutoModelForCausalLM.from_pretrained(out)


def test_writer_refuses_what_its_plan_does_not_hold(tiny_model_dir, tmp_path):
    from prunetts.checkpoint import Reader, Writer

    reader = Reader(tiny_model_dir)
    names = reader.other_names()
    writer = Writer(tmp_path / "a", reader.layout(names))
    t = reader.load(names[:1])
    writer.add(t)
    with pytest.raises(ValueError, match="added twice"):
        writer.add(t)
    with pytest.raises(ValueError, match="not in the planned layout"):
        writer.add(reader.load(reader.layer_names(0)[:1]))
    with pytest.raises(ValueError, match="differs from the planned"):
        writer.add({names[1]: reader.load(names[1:2])[names[1]].double()})
    with pytest.raises(ValueError, match="never added"):
        writer.finish(reader.config)
    assert not (tmp_path / "a" / "config.json").exists()  # an incomplete checkpoint is never named as one


def test_writer_names_the_first_three_files_of_a_non_empty_output_directory(tiny_model_dir, tmp_path):
    """The refusal of a non-empty output directory names three of its files and counts the rest ("and 1 more" from
    the fourth file on)."""
    from prunetts.checkpoint import CheckpointError, Reader, Writer

    reader = Reader(tiny_model_dir)
    layout = reader.layout(reader.other_names())
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b", "c"):
        (out / name).write_text("")
    with pytest.raises(CheckpointError, match=r"\(holds a, b, c\); a checkpoint"):
        Writer(out, layout)
    (out / "d").write_text("")
    with pytest.raises(CheckpointError, match=r"\(holds a, b, c and 1 more\); a checkpoint"):
        Writer(out, layout)


def test_a_write_error_in_the_writer_thread_reaches_the_caller(tiny_model_dir, tmp_path, monkeypatch):
    """A failed write (disk full) in the background thread is raised in the pruning process, as one line, and the
    checkpoint is never named as complete."""
    from prunetts.checkpoint import CheckpointError, Reader, Writer

    reader = Reader(tiny_model_dir)
    names = reader.other_names() + reader.layer_names(0)
    real = Writer._write

    def failing(self, name, t):
        if name == names[-1]:
            raise OSError(28, "No space left on device")
        real(self, name, t)

    monkeypatch.setattr(Writer, "_write", failing)
    writer = Writer(tmp_path / "out", reader.layout(names))
    for n in names:
        writer.add(reader.load([n]))
    with pytest.raises(CheckpointError) as e:
        writer.finish(reader.config)
    assert str(e.value).startswith(
        f"{tmp_path / 'out'}: the disk filled up while writing the checkpoint (No space left"
    )
    assert str(e.value).endswith("free some space and run it again") and "\n" not in str(e.value)
    with pytest.raises(RuntimeError, match="earlier checkpoint write failed"):  # a retry cannot name it complete
        writer.finish(reader.config)
    assert not (tmp_path / "out" / "config.json").exists() and not list((tmp_path / "out").glob("model*"))

    monkeypatch.setattr(Writer, "_write", lambda *_: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    writer = Writer(tmp_path / "out2", reader.layout(names))
    writer.add(reader.load(names[:1]))
    with pytest.raises(OSError, match="Input/output error"):  # other write errors pass through as they are
        writer.finish(reader.config)

    # after the tensors: the tokenizer files, the index, the caller's files and config.json
    monkeypatch.undo()
    from prunetts import checkpoint

    def full(*_a, **_k):
        raise OSError(122, "Disk quota exceeded")

    monkeypatch.setattr(checkpoint.shutil, "copyfile", full)
    writer = Writer(tmp_path / "out3", reader.layout(names))
    writer.add(reader.load(names))
    with pytest.raises(CheckpointError, match=r"out3: the disk filled up while writing the checkpoint \(Disk quota"):
        writer.finish(reader.config, tiny_model_dir)
    assert not (tmp_path / "out3" / "config.json").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_disk_full_mid_shard_is_one_line_through_the_context_manager(tiny_model_dir, tmp_path):
    """A real full disk fails inside the shard file's buffer (its header is still buffered when the tensor's write
    or seek fails): closing that file on the way out flushes into the full disk again, which must not replace the
    one-line CheckpointError with an OSError traceback (prune jobs show only CheckpointError as one line)."""
    from prunetts.checkpoint import CheckpointError, Reader, Writer

    reader = Reader(tiny_model_dir)
    names = reader.other_names() + reader.layer_names(0)
    with pytest.raises(CheckpointError, match="the disk filled up while writing the checkpoint"):
        with Writer(tmp_path / "out", reader.layout(names), max_pending_bytes=1) as writer:
            writer.shards = [(Path("/dev/full"), shard_names) for _, shard_names in writer.shards]
            for n in names:
                writer.add(reader.load([n]))
            writer.finish(reader.config)


def test_a_disk_without_room_for_the_checkpoint_stops_the_prune_before_any_layer(tiny_model_dir, tmp_path, monkeypatch):
    """The checkpoint's size is known from the source's headers: a disk without room for it is one line before the
    calibration pass or any layer, and nothing is created."""
    import os
    from collections import namedtuple

    from prunetts import checkpoint
    from prunetts.checkpoint import CheckpointError, Reader, byte_size, prunable_modules_from_shapes, tensor_shapes
    from prunetts.layerwise import LayerRunner
    from prunetts.pruning.pruner import prune_checkpoint

    reader = Reader(tiny_model_dir)
    size = reader.tensor_bytes(list(reader.files))
    assert size == sum(f.stat().st_size for f in tiny_model_dir.glob("*.safetensors")) - sum(
        8 + int.from_bytes(f.read_bytes()[:8], "little") for f in tiny_model_dir.glob("*.safetensors")
    )
    usage = namedtuple("usage", "total used free")
    free = {"bytes": size - 1}
    real = shutil.disk_usage

    def disk_usage(path):
        assert os.path.exists(path)
        return usage(real(path).total, 0, free["bytes"])

    def never(*_a, **_k):
        raise AssertionError("a layer was loaded before the disk check")

    monkeypatch.setattr(checkpoint.shutil, "disk_usage", disk_usage)
    monkeypatch.setattr(LayerRunner, "embed", never)
    monkeypatch.setattr(LayerRunner, "load_layer", never)
    out = tmp_path / "deep" / "out"
    allocation = {(li, name): 0.5 for li, name, _ in prunable_modules_from_shapes(tensor_shapes(tiny_model_dir))}
    for method in ("magnitude", "wanda"):
        with pytest.raises(CheckpointError) as e:
            prune_checkpoint(str(tiny_model_dir), str(out), method, allocation, windows=[[1, 2, 3]], device="cpu")
        assert str(e.value) == (
            f"{out}: not enough disk space for the checkpoint: its tensors take {byte_size(size)} and "
            f"{byte_size(size - 1)} are free there; free some space or write it elsewhere"
        )
        assert not (tmp_path / "deep").exists()
    free["bytes"] = size
    monkeypatch.undo()
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", disk_usage)
    prune_checkpoint(str(tiny_model_dir), str(out), "magnitude", allocation, device="cpu", progress=False)
    assert (out / "config.json").is_file()


def test_a_prune_into_a_directory_holding_an_earlier_checkpoint_stops_before_any_layer(
    tiny_model_dir, tmp_path, monkeypatch
):
    """A library caller pruning into a directory that holds an earlier checkpoint would mix the two (an earlier
    checkpoint's extra shards stay beside the new index): one line naming what the directory holds, before the
    calibration pass or any layer, and the earlier files are untouched. An empty directory is fine."""
    from prunetts.checkpoint import CheckpointError, prunable_modules_from_shapes, tensor_shapes
    from prunetts.layerwise import LayerRunner
    from prunetts.pruning.pruner import prune_checkpoint

    allocation = {(li, name): 0.5 for li, name, _ in prunable_modules_from_shapes(tensor_shapes(tiny_model_dir))}
    out = tmp_path / "out"
    prune_checkpoint(str(tiny_model_dir), str(out), "magnitude", allocation, device="cpu", progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def never(*_a, **_k):
        raise AssertionError("a layer was loaded before the output directory was checked")

    monkeypatch.setattr(LayerRunner, "embed", never)
    monkeypatch.setattr(LayerRunner, "load_layer", never)
    for method in ("magnitude", "wanda", "shortgpt"):
        alloc = {k: 1.0 if k[0] == 0 else 0.0 for k in allocation} if method == "shortgpt" else allocation
        with pytest.raises(CheckpointError) as e:
            prune_checkpoint(str(tiny_model_dir), str(out), method, alloc, windows=[[1, 2, 3]], device="cpu")
        assert str(e.value).startswith(f"{out}: the output directory is not empty (holds ")
        assert "choose a new directory or empty this one" in str(e.value)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    (empty := tmp_path / "empty").mkdir()
    prune_checkpoint(str(tiny_model_dir), str(empty), "magnitude", allocation, device="cpu", progress=False)
    assert (empty / "config.json").is_file()


def test_a_failed_prune_stops_the_writer_thread_before_the_error_propagates(tiny_model_dir, tmp_path, monkeypatch):
    """An error mid-prune (a CUDA OOM, Ctrl-C) must not leave the writer thread writing into --out while the caller
    cleans it up: when the error reaches the caller, the thread has ended and no file appears afterwards."""
    import threading
    import time

    from prunetts.checkpoint import Writer, prunable_modules_from_shapes, tensor_shapes
    from prunetts.layerwise import LayerRunner
    from prunetts.pruning.pruner import prune_checkpoint

    real_write, real_unload = Writer._write, LayerRunner.unload_layer

    def slow_write(self, name, t):
        time.sleep(0.05)
        real_write(self, name, t)

    def failing_unload(self, i):
        if i == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        real_unload(self, i)

    monkeypatch.setattr(Writer, "_write", slow_write)
    monkeypatch.setattr(LayerRunner, "unload_layer", failing_unload)
    out = tmp_path / "out"
    allocation = {(li, name): 0.5 for li, name, _ in prunable_modules_from_shapes(tensor_shapes(tiny_model_dir))}
    with pytest.raises(RuntimeError, match="simulated"):
        prune_checkpoint(str(tiny_model_dir), str(out), "magnitude", allocation, device="cpu", progress=False)
    assert not [t for t in threading.enumerate() if t.name.startswith("prunetts-writer")]
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())
    time.sleep(0.3)
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before
    assert not (out / "config.json").exists()


def test_write_safetensors_is_read_back_by_safetensors_itself(tmp_path):
    """Our writer against the reference reader: every dtype a checkpoint may hold, 0-d and empty tensors, metadata,
    the 8-byte aligned header; non-contiguous tensors are refused rather than written wrong."""
    import struct

    from safetensors import safe_open

    from prunetts.checkpoint import write_safetensors

    g = torch.Generator().manual_seed(0)
    tensors = {
        "w": torch.randn(5, 3, generator=g),
        "bf": torch.randn(7, generator=g).to(torch.bfloat16),
        "half": torch.randn(2, 2, generator=g).half(),
        "f64": torch.randn(3, generator=g).double(),
        "fp8": torch.randn(4, generator=g).to(torch.float8_e4m3fn),
        "i64": torch.tensor(3),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "t.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and len(raw) == 8 + n + sum(t.numel() * t.element_size() for t in tensors.values())
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"format": "pt"} and sorted(f.keys()) == sorted(tensors)
        for name, t in tensors.items():
            back = f.get_tensor(name)
            assert back.dtype == t.dtype and back.shape == t.shape, name
            assert back.reshape(-1).view(torch.uint8).tolist() == t.reshape(-1).view(torch.uint8).tolist(), name
    with pytest.raises(ValueError, match="contiguous"):
        write_safetensors(tmp_path / "bad.safetensors", {"t": torch.randn(4, 4).t()})


@pytest.mark.parametrize("family,stored", [("llama", torch.float16), ("qwen2", torch.float32)])
def test_a_rounding_compute_dtype_never_rounds_a_kept_weight(family, stored, tmp_path):
    """bf16 compute (the GPU default) on an fp16 or fp32 checkpoint: masks are scored on the stored values and every
    kept weight, bias and norm is written back bit for bit; only sequential Wanda's activations are bf16."""
    from safetensors.torch import load_file

    from prunetts.capture import capture
    from tests.conftest import build_tiny

    build_tiny(family, tmp_path / "src", dtype=stored)
    source = load_file(tmp_path / "src" / "model.safetensors")
    mods = modules_of(tmp_path / "src")
    allocation = {(li, name): 0.3 for li, name, _ in mods}
    linear, _ = capture(str(tmp_path / "src"), WINDOWS, 4, "cpu", "float32", progress=False)
    stats = {k: s for k, (s, _) in linear.items()}
    prunable = {f"model.layers.{li}.{name}.weight" for li, name, _ in mods}
    for method, mode in (("magnitude", "sequential"), ("wanda", "one_pass"), ("wanda", "sequential")):
        out = {}
        for dtype in ("bfloat16", "float32"):
            out[dtype] = tmp_path / f"{method}-{mode}-{dtype}"
            prune_checkpoint(
                str(tmp_path / "src"),
                out[dtype],
                method,
                allocation,
                stats=stats,
                windows=WINDOWS,
                wanda_mode=mode,
                device="cpu",
                dtype=dtype,
                progress=False,
            )
        got = load_file(out["bfloat16"] / "model.safetensors")
        exact = load_file(out["float32"] / "model.safetensors")
        assert got.keys() == source.keys()
        for name, t in source.items():
            assert got[name].dtype == stored, name
            if name in prunable:  # pruned entries are zero, every other entry is the stored value
                kept = got[name] != 0
                assert torch.equal(got[name][kept], t[kept]), (method, mode, name)
                assert int((~kept).sum()) == int((exact[name] == 0).sum()), name  # the same count per row / matrix
            else:
                assert torch.equal(got[name], t), name
        if mode == "one_pass" or method == "magnitude":  # no activations involved: the same masks as fp32 compute
            assert all(torch.equal(got[n], exact[n]) for n in source), (method, mode)


def _variant_checkpoint(kind: str, out):
    """Checkpoint layouts beyond the standard fixtures: a sharded bf16 Llama with tied embeddings and attention /
    MLP biases, and a Qwen2 whose upper layers use sliding-window attention (per-layer ``layer_types``)."""
    from tests.conftest import build_tiny

    if kind == "llama-tied-biases-sharded-bf16":
        return build_tiny(
            "llama",
            out,
            layers=4,
            dtype=torch.bfloat16,
            max_shard_size="40KB",
            tie_word_embeddings=True,
            attention_bias=True,
            mlp_bias=True,
        )
    return build_tiny("qwen2", out, layers=4, use_sliding_window=True, sliding_window=8, max_window_layers=2)


@pytest.mark.parametrize("kind", ["llama-tied-biases-sharded-bf16", "qwen2-sliding-window"])
def test_sequential_wanda_and_shortgpt_on_other_checkpoint_layouts(kind, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from prunetts.capture import capture
    from prunetts.checkpoint import Reader, read_header

    src = _variant_checkpoint(kind, tmp_path / "src")
    if kind.endswith("bf16"):
        assert len(list(src.glob("model-*.safetensors"))) > 1  # really sharded
    mods = modules_of(src)
    allocation = alloc.uniform(mods, 0.4)
    prune_checkpoint(
        str(src), tmp_path / "w", "wanda", allocation, windows=WINDOWS, batch_size=4, device="cpu", progress=False
    )
    ours = zero_masks(tmp_path / "w")
    ref = brute_force_sequential_wanda(src, allocation)
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    before, after = Reader(src), Reader(tmp_path / "w")
    # shards as large as the source's, so about as many files (not one per 512 MiB: 30 for Qwen3-8B's 5)
    sizes = {f: sum(m["data_offsets"][1] - m["data_offsets"][0] for m in read_header(f).values()) for f in (
        set(before.files.values()) | set(after.files.values()))}  # fmt: skip
    largest = max(sizes[f] for f in set(before.files.values()))
    assert before.largest_shard_bytes() == largest
    out_sizes = [sizes[f] for f in set(after.files.values())]
    assert max(out_sizes) <= largest and len(out_sizes) <= len(set(before.files.values())) + 1
    if kind.endswith("bf16"):
        assert len(out_sizes) > 1
        # the index's metadata as transformers wrote the source's (unstructured pruning keeps every parameter)
        index = "model.safetensors.index.json"
        assert (
            json.loads((tmp_path / "w" / index).read_text())["metadata"]
            == json.loads((src / index).read_text())["metadata"]
        )
    prunable = {f"model.layers.{li}.{n}.weight" for li, n, _ in mods}
    names = before.other_names() + [n for i in range(4) for n in before.layer_names(i)]
    assert sorted(names) == sorted(after.other_names() + [n for i in range(4) for n in after.layer_names(i)])
    for n in names:
        a, b = before.load([n])[n], after.load([n])[n]
        assert a.dtype == b.dtype, n
        if n in prunable:
            assert torch.equal(b[b != 0], a[b != 0]), n
        else:  # embeddings, norms, biases (and no lm_head written for tied embeddings)
            assert torch.equal(a, b), n
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "w", dtype=torch.float32)
    if kind.startswith("llama"):
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=12, do_sample=False).shape == (1, 15)

    _, layers = capture(str(src), WINDOWS, 4, "cpu", "float32", progress=False)
    removed = layers_to_remove({i: 1 - c for i, c, _ in layers}, 4, 2)
    prune_checkpoint(str(src), tmp_path / "sg", "shortgpt", alloc.shortgpt(mods, removed))
    cfg = json.loads((tmp_path / "sg" / "config.json").read_text())
    old = json.loads((src / "config.json").read_text())
    kept = [i for i in range(4) if i not in removed]
    assert cfg["num_hidden_layers"] == 2
    if "layer_types" in old:
        assert cfg["layer_types"] == [old["layer_types"][i] for i in kept]
    sg = AutoModelForCausalLM.from_pretrained(tmp_path / "sg", dtype=torch.float32)
    assert [layer.self_attn.layer_idx for layer in sg.model.layers] == [0, 1]
    assert sg.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=12, do_sample=False).shape == (1, 15)
    stored = {}
    for f in (tmp_path / "sg").glob("*.safetensors"):
        stored.update(load_file(f))
        assert sum(m["data_offsets"][1] - m["data_offsets"][0] for m in read_header(f).values()) <= largest
    if kind.endswith("bf16"):
        assert len(list((tmp_path / "sg").glob("*.safetensors"))) > 1
        meta = json.loads((tmp_path / "sg" / "model.safetensors.index.json").read_text())["metadata"]
        assert meta["total_parameters"] == sg.num_parameters()  # what save_pretrained of the smaller model writes
    for new, old_i in enumerate(kept):
        for n in before.layer_names(old_i):
            assert torch.equal(stored[n.replace(f"layers.{old_i}.", f"layers.{new}.", 1)], before.load([n])[n]), n


def test_tied_checkpoint_storing_the_table_as_lm_head_only_prunes_as_the_usual_layout(tmp_path):
    """transformers ties a checkpoint whose shared table is stored only as ``lm_head.weight`` (re-exports do this):
    capture and sequential Wanda read the embedding from that name (they raised KeyError), with the same results as
    the usual layout, and the written checkpoint keeps the source's layout."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from prunetts.capture import capture
    from tests.conftest import build_tiny

    usual = build_tiny("qwen3", tmp_path / "usual", tie_word_embeddings=True)
    other = tmp_path / "other"
    shutil.copytree(usual, other)
    tensors = load_file(other / "model.safetensors")
    tensors["lm_head.weight"] = tensors.pop("model.embed_tokens.weight")
    save_file(tensors, other / "model.safetensors", metadata={"format": "pt"})
    assert torch.equal(AutoModelForCausalLM.from_pretrained(other).model.embed_tokens.weight, tensors["lm_head.weight"])

    lin_a, layers_a = capture(str(usual), WINDOWS, 4, "cpu", "float32", progress=False)
    lin_b, layers_b = capture(str(other), WINDOWS, 4, "cpu", "float32", progress=False)
    assert layers_a == layers_b and all(torch.equal(lin_a[k][0], lin_b[k][0]) for k in lin_a)
    allocation = alloc.uniform(modules_of(usual), 0.4)
    for src in (usual, other):
        prune_checkpoint(
            str(src), tmp_path / f"w-{src.name}", "wanda", allocation, windows=WINDOWS, batch_size=4, device="cpu",
            progress=False,
        )  # fmt: skip
    masks_a, masks_b = zero_masks(tmp_path / "w-usual"), zero_masks(tmp_path / "w-other")
    assert masks_a.keys() == masks_b.keys() and all(torch.equal(m, masks_b[k]) for k, m in masks_a.items())
    written = load_file(tmp_path / "w-other" / "model.safetensors")
    assert "lm_head.weight" in written and "model.embed_tokens.weight" not in written
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "w-other", dtype=torch.float32)
    assert torch.equal(model.model.embed_tokens.weight, tensors["lm_head.weight"])
    assert model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=6, do_sample=False).shape == (1, 9)


def overflowing_copy(src, dst, layer: int = 0):
    """A copy of ``src`` whose layer-``layer`` ``down_proj`` is scaled by 1e6: its outputs overflow float16 (inf, then
    NaN downstream), while float32 still computes them (also used by the capture and CLI tests)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    tensors[f"model.layers.{layer}.mlp.down_proj.weight"] *= 1e6
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_nonfinite_activation_statistics_stop_wanda_and_owl(tiny_qwen3_dir, tmp_path):
    """An inf/NaN statistic is never among the k smallest Wanda scores, and no score exceeds M x a NaN mean: without
    a check, float16 overflow would silently make Wanda prune (almost) nothing and give OWL an outlier ratio of 0."""
    from prunetts.checkpoint import tensor_shapes
    from prunetts.models import ModelError
    from prunetts.scores import owl_outlier_ratios

    mods = modules_of(tiny_qwen3_dir)
    allocation = alloc.uniform(mods, 0.5)
    hot = overflowing_copy(tiny_qwen3_dir, tmp_path / "hot")
    run = dict(device="cpu", progress=False)
    with pytest.raises(ModelError, match=r"^Wanda: layer 1 self_attn\.q_proj: .*float16 overflow.*CLI --dtype"):
        prune_checkpoint(str(hot), tmp_path / "seq", "wanda", allocation, windows=WINDOWS, dtype="float16", **run)
    shapes = tensor_shapes(tiny_qwen3_dir)
    stats = {(li, n): torch.ones(shapes[f"model.layers.{li}.{n}.weight"][1], dtype=torch.float64) for li, n, _ in mods}
    stats[(1, "mlp.down_proj")][5] = float("nan")
    with pytest.raises(ModelError, match=r"^Wanda: layer 1 mlp\.down_proj: .*recompute the capture .*capture\.dtype"):
        prune_checkpoint(
            str(tiny_qwen3_dir), tmp_path / "one", "wanda", allocation, stats=stats, wanda_mode="one_pass", **run
        )
    assert not (tmp_path / "one" / "model.safetensors").exists()
    stats[(1, "mlp.down_proj")][5] = float("inf")
    with pytest.raises(ModelError, match=r"^OWL: layer 1 mlp\.down_proj: the input activations are inf/NaN"):
        owl_outlier_ratios(str(tiny_qwen3_dir), stats, 2.0)
    # in float32 the same checkpoint computes, and Wanda prunes what it is asked to
    records = prune_checkpoint(str(hot), tmp_path / "f32", "wanda", allocation, windows=WINDOWS, dtype="float32", **run)
    assert all(r["n_pruned"] == r["numel"] // 2 for r in records)


def _with_rotary_buffers(src, dst):
    """A copy of checkpoint ``src`` that also stores each layer's ``self_attn.rotary_emb.inv_freq``, as old Llama
    checkpoints do (a persistent buffer in older transformers)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    cfg = json.loads((src / "config.json").read_text())
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, head_dim, 2).float() / head_dim))
    tensors = load_file(dst / "model.safetensors")
    for i in range(cfg["num_hidden_layers"]):
        tensors[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = inv_freq.clone()
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_stored_rotary_inv_freq_buffers_are_skipped(tmp_path):
    """Old Llama checkpoints store ``rotary_emb.inv_freq`` per layer, which transformers recomputes from the config
    and ignores on loading: pruning skips them too (a strict layer load would reject them) and writes exactly the
    checkpoint it writes without them."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from tests.conftest import build_tiny

    clean = build_tiny("llama", tmp_path / "clean")
    old = _with_rotary_buffers(clean, tmp_path / "old")
    mods = modules_of(old)
    assert mods == modules_of(clean)  # 1-D, not a .weight: never a prunable linear
    for method, allocation, extra in (
        ("magnitude", alloc.uniform(mods, 0.4), {}),
        ("wanda", alloc.uniform(mods, 0.4), {"windows": WINDOWS}),
        ("shortgpt", alloc.shortgpt(mods, [1]), {}),
    ):
        outs = {}
        for name, src in (("clean", clean), ("old", old)):
            outs[name] = tmp_path / f"{method}-{name}"
            prune_checkpoint(str(src), outs[name], method, allocation, device="cpu", progress=False, **extra)
        with safe_open(str(outs["old"] / "model.safetensors"), framework="pt") as f:
            assert not [n for n in f.keys() if "inv_freq" in n], method
        assert (outs["old"] / "model.safetensors").read_bytes() == (outs["clean"] / "model.safetensors").read_bytes()
        model = AutoModelForCausalLM.from_pretrained(outs["old"], dtype=torch.float32)
        assert len(model.model.layers) == (2 if method == "shortgpt" else 3)
        assert model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False).shape == (1, 7)


def test_writer_shard_plan_names_index_and_side_files(tmp_path):
    """Shards hold at most max_shard_bytes (a tensor that exactly fills one stays in it), are named
    model-0000k-of-0000n as save_pretrained names them, the index records the total size and parameters, and the side
    files (tokenizer, licence, custom code) travel while the model card does not. Headers are 8-byte aligned whatever
    the names' lengths."""
    import json
    import struct

    from prunetts.checkpoint import INDEX, Writer

    src = tmp_path / "src"
    src.mkdir()
    for name in ("tokenizer.json", "LICENSE", "tokenization_x.py", "README.md"):
        (src / name).write_text(name)
    tensors = {f"t{'x' * k}": torch.arange(2, dtype=torch.float32) + k for k in range(5)}  # 8 bytes each
    layout = [(n, "F32", [2]) for n in tensors]
    out = tmp_path / "out"
    writer = Writer(out, layout, max_shard_bytes=16)
    for n, t in tensors.items():
        writer.add({n: t})
    writer.finish({"a": 1}, side_files_from=src)
    index = json.loads((out / INDEX).read_text())
    assert index["metadata"] == {"total_parameters": 10, "total_size": 40}
    files = [f"model-0000{k}-of-00003.safetensors" for k in (1, 2, 3)]
    assert index["weight_map"] == dict(zip(tensors, [files[0]] * 2 + [files[1]] * 2 + [files[2]], strict=True))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*files, INDEX, "config.json", "tokenizer.json", "LICENSE", "tokenization_x.py"]
    )
    for f in files:
        (n,) = struct.unpack("<Q", (out / f).read_bytes()[:8])
        assert n % 8 == 0, f


def test_writer_holds_at_most_max_pending_bytes_of_unwritten_tensors(tmp_path):
    """Back-pressure: add waits for the writer thread once the unwritten tensors would exceed max_pending_bytes, so
    pruning an 8B model never queues a whole model's tensors in memory."""
    from prunetts.checkpoint import Writer

    tensors = {f"t{k}": torch.full((4,), float(k)) for k in range(6)}  # 16 bytes each
    writer = Writer(tmp_path / "out", [(n, "F32", [4]) for n in tensors], max_pending_bytes=32)
    seen = []
    for n, t in tensors.items():
        writer.add({n: t})
        seen.append(writer.pending_bytes)
    assert max(seen) <= 32
    writer.finish({"a": 1})
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("method", ["wanda", "shortgpt"])
def test_tensors_outside_the_layers_are_written_one_at_a_time(tiny_model_dir, tmp_path, monkeypatch, method):
    """The embedding table and lm_head (1.2 GB each at Qwen3-8B's size) never wait for the writer together, and both
    are written before the prune reads the embedding table again for the calibration windows."""
    from prunetts.checkpoint import LAYER_RE, Reader, Writer
    from prunetts.layerwise import LayerRunner

    writers, loads = [], []
    real_init, real_load, real_embed = Writer.__init__, Reader.load, LayerRunner.embed

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        writers.append(self)

    def load(self, names):
        if writers:  # what the writer still holds when these tensors are read
            loads.append((tuple(names), len(writers[0].pending)))
        return real_load(self, names)

    def embed(self, *args, **kwargs):
        loads.append(("embed", len(writers[0].pending)))
        return real_embed(self, *args, **kwargs)

    monkeypatch.setattr(Writer, "__init__", init)
    monkeypatch.setattr(Reader, "load", load)
    monkeypatch.setattr(LayerRunner, "embed", embed)
    mods = modules_of(tiny_model_dir)
    allocation = alloc.uniform(mods, 0.3) if method == "wanda" else alloc.shortgpt(mods, [0])
    prune_checkpoint(str(tiny_model_dir), tmp_path / "out", method, allocation, windows=WINDOWS, progress=False)
    others = Reader(tiny_model_dir).other_names()
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= set(others)
    firsts = [(names, held) for names, held in loads if names == "embed" or not LAYER_RE.match(names[0])]
    assert [names for names, _ in firsts][: len(others)] == [(n,) for n in others]  # one at a time
    assert all(held == 0 for _, held in firsts[: len(others) + (method == "wanda")])  # the previous one written
    if method == "wanda":
        assert firsts[len(others)][0] == "embed"


def test_owl_peak_range_bounds_the_most_pruned_layer_over_all_outlier_ratios():
    """The bounds ``owl_range_problem`` checks before the capture are attained and never crossed."""
    import random

    from prunetts.pruning.allocation import owl_layer_sparsity, owl_peak_range

    rng = random.Random(0)
    for n_layers in (1, 2, 3, 7):
        least, most = owl_peak_range(0.5, 0.1, n_layers)
        peaks = [max(owl_layer_sparsity({i: rng.random() ** rng.choice((0.1, 1, 8)) for i in range(n_layers)}, 0.5,
                                         0.1).values()) for _ in range(3000)]  # fmt: skip
        assert least - 1e-12 <= min(peaks) and max(peaks) <= most + 1e-12
        one_high = {i: float(i == 0) for i in range(n_layers)}  # one layer at the top: the least
        one_low = {i: float(i != 0) for i in range(n_layers)}  # one layer at the bottom: the most
        assert max(owl_layer_sparsity(one_high, 0.5, 0.1).values()) == pytest.approx(least)
        assert max(owl_layer_sparsity(one_low, 0.5, 0.1).values()) == pytest.approx(most)


def test_owl_at_the_safe_lambda_never_stops_and_the_quoted_lambda_is_safe():
    """The quoted lambda is rounded down (0.2593 rounded to nearest gave 1.0001); at the exact bound, the most-pruned
    layer is 1 up to rounding (S + mean - 0 against S + 2 lambda (L - 1) / L) and is pruned whole, not refused."""
    import re

    from prunetts.pruning.allocation import owl, owl_range_problem

    worst = {0: 0.0, **{i: 1.0 for i in range(1, 28)}}  # one layer at the bottom: the most-pruned layer's maximum
    modules = [(i, "mlp.down_proj", None) for i in range(28)]
    for sparsity, lam in ((0.5, 0.2593), (0.46, 0.28), (0.2, 0.4)):
        error, warning = owl_range_problem(sparsity, lam, 28)
        assert error is None
        if warning:
            safe = float(re.search(r"a lambda of at most (\d\.\d{4}) cannot", warning)[1])
            assert owl_range_problem(sparsity, safe, 28) == (None, None)
            assert max(owl(modules, sparsity, worst, safe).values()) <= 1.0
        else:
            assert max(owl(modules, sparsity, worst, lam).values()) <= 1.0
    assert max(owl(modules, 0.46, worst, 0.28).values()) == 1.0  # exactly at the bound, 1 + 1e-16 before the clamp
    error, _ = owl_range_problem(0.97, 0.0901, 6)  # just past 1: printed with the digits that show it
    assert "at least 1.000033333333 > 1" in error and "at most 0.0180 (never above 1)" in error


def test_layerif_warns_of_a_layer_pruned_nearly_whole_below_the_cap(caplog):
    """28 layers at S = 0.2, one mid-stack layer whose positive influence sum is far below the rest: the second
    min-max sends it to e2 (as it does some layer whatever the scores), and the rescale to S puts it at 0.96, below
    the cap, whose warning is silent."""
    import logging

    import numpy as np

    rng = np.random.default_rng(0)
    scores = (10 + 0.1 * rng.random(28)).tolist()
    scores[13] = 0.0
    with caplog.at_level(logging.WARNING, logger="prunetts"):
        p = alloc.layerif_component(scores, [1] * 28, 0.2, 0.05, 0.40, "paper_code", label="mlp")
    assert 0.9 < p[13] < 1.0 and max(p[:13] + p[14:]) < 0.9
    assert "LayerIF: layer(s) 13 get the mlp sparsity 0.9" in caplog.text and "capped" not in caplog.text
    assert "the layer with the lowest smoothed influence always gets e2 = 0.4, times eta = 2.4" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prunetts"):
        alloc.layerif_component((10 + rng.random(28)).tolist(), [1] * 28, 0.2, 0.05, 0.40, "paper_code")
    assert "LayerIF" not in caplog.text


def test_owl_with_equal_outlier_ratios_is_uniform_and_says_so(caplog):
    """All layers with the same outlier ratio (no score above M x the mean at a large M: D = 0 everywhere): OWL's
    min-max divides by zero in the reference (NaN sparsities); here every layer gets S, and the log says the OWL
    variant is the uniform one, not silently."""
    mods = [(i, "mlp.up_proj", 10) for i in range(4)]
    for method in ("wanda", "magnitude"):
        with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
            t = alloc.owl(mods, 0.3, dict.fromkeys(range(4), 0.0), 0.08, method)
        assert set(t.values()) == {0.3}
        assert "OWL: every layer has the same outlier ratio (0.0 %" in caplog.text
        assert "this OWL variant is the uniform one" in caplog.text
        caplog.clear()
    with caplog.at_level("WARNING", logger="prunetts.pruning.allocation"):
        alloc.owl(mods, 0.3, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.01}, 0.08)  # one layer apart: real OWL, no warning
        alloc.owl(mods[:1], 0.3, {0: 2.0}, 0.08)  # a single layer: nothing to tell apart
    assert "same outlier ratio" not in caplog.text
