"""The pruning suite on a CUDA device, checked against the CPU results. Needs a GPU: skipped elsewhere.

    python -m pytest -q -ra tests/gpu                          # on a machine with a CUDA device
    PRUNETTS_TEST_DEVICE=cpu python -m pytest -q tests/gpu     # dry run of this file's code on CPU (CPU vs CPU)

What a GPU changes, and what each test pins:
- masks are scored in float32 on the checkpoint's stored values, whatever the compute dtype, and GPU masks run the
  torch path of ``masks.py``: magnitude and one-pass Wanda must write the CPU checkpoint byte for byte, in float32
  and in bf16 compute;
- sequential Wanda's statistics come from GPU matmuls and attention kernels: masks agree with the CPU's except for
  scores within rounding of a row's threshold (float32), and less closely in bf16 (reported, loosely bounded);
- capture statistics agree with the CPU's to float32 rounding; LayerIF influence scores (also the scores from token
  factors that bench/layerif_sketch.py computes on the device) to 1 % (correlation > 0.999): DataInf's
  n*u_k - sum_i c_i K_ik cancels, which magnifies the gradients' float32 rounding; the gradients' CountSketch is
  bit-identical between runs (its index_add_ runs in deterministic mode);
- the pruner holds one decoder layer at a time on the device: peak device memory far below the model's size;
- the CLI runs end to end with ``--device cuda`` and the ShortGPT checkpoint generates on the device.
"""

from __future__ import annotations

import os

import pytest
import torch

from prunetts.capture import capture
from prunetts.models import load_model, load_tokenizer
from prunetts.pruning import allocation as alloc
from prunetts.pruning.pruner import prune_checkpoint
from tests.conftest import build_tiny, modules_of, zero_masks

DEVICE = os.environ.get("PRUNETTS_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device (see tests/gpu docstring)"
)
WINDOWS = [[(11 * i + 3 * j + 5) % 250 for j in range(96)] for i in range(12)]


def _targets(model_dir):
    """A different sparsity per matrix, so a wrong (layer, module) pairing cannot go unnoticed."""
    return {(layer, name): 0.15 + 0.05 * layer + 0.01 * len(name) for layer, name, _ in modules_of(model_dir)}


def _weights(model_dir) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(model_dir.glob("*.safetensors")))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_magnitude_and_one_pass_wanda_write_the_cpu_checkpoint(tiny_model_dir, tmp_path, dtype):
    stats = {
        k: s for k, (s, _) in capture(str(tiny_model_dir), WINDOWS, 4, "cpu", "float32", progress=False)[0].items()
    }
    targets = _targets(tiny_model_dir)
    for method, extra in (("magnitude", {}), ("wanda", dict(wanda_mode="one_pass", stats=stats))):
        for group in ("row", "matrix") if method == "wanda" else ("row",):
            kw = dict(wanda_group=group, progress=False, **extra)
            cpu, dev = tmp_path / f"{method}-{group}-cpu", tmp_path / f"{method}-{group}-dev"
            prune_checkpoint(str(tiny_model_dir), cpu, method, targets, device="cpu", dtype="float32", **kw)
            prune_checkpoint(str(tiny_model_dir), dev, method, targets, device=DEVICE, dtype=dtype, **kw)
            assert _weights(cpu) == _weights(dev), (method, group)


@pytest.mark.parametrize("dtype,least", [("float32", 0.999), ("bfloat16", 0.99)])
def test_sequential_wanda_masks_agree_with_the_cpu(tiny_model_dir, tmp_path, dtype, least):
    targets = _targets(tiny_model_dir)
    kw = dict(windows=WINDOWS, batch_size=4, progress=False)
    records = prune_checkpoint(
        str(tiny_model_dir), tmp_path / "dev", "wanda", targets, device=DEVICE, dtype=dtype, **kw
    )
    prune_checkpoint(str(tiny_model_dir), tmp_path / "cpu", "wanda", targets, device="cpu", dtype="float32", **kw)
    dev, cpu = zero_masks(tmp_path / "dev"), zero_masks(tmp_path / "cpu")
    same = sum(int((dev[k] == cpu[k]).sum()) for k in cpu)
    total = sum(m.numel() for m in cpu.values())
    print(f"sequential Wanda, {DEVICE} {dtype} vs cpu float32: {same / total:.5f} of {total} weights agree")
    assert same / total >= least
    for r in records:  # the exact per-row count holds on any device
        cols = dev[(r["layer"], r["module"])].shape[1]
        assert (dev[(r["layer"], r["module"])].sum(1) == int(cols * r["target_sparsity"])).all()


def test_capture_statistics_agree_with_the_cpu(tiny_model_dir):
    lin_cpu, layers_cpu = capture(str(tiny_model_dir), WINDOWS, 4, "cpu", "float32", progress=False)
    lin_dev, layers_dev = capture(str(tiny_model_dir), WINDOWS, 4, DEVICE, "float32", progress=False)
    assert lin_cpu.keys() == lin_dev.keys()
    for key, (s, n) in lin_cpu.items():
        s_dev, n_dev = lin_dev[key]
        assert n == n_dev and s_dev.device.type == "cpu" and s_dev.dtype == torch.float64
        torch.testing.assert_close(s_dev, s, rtol=1e-4, atol=1e-6)
    for (i, c, n), (i2, c2, n2) in zip(layers_cpu, layers_dev, strict=True):
        assert (i, n) == (i2, n2) and c2 == pytest.approx(c, abs=1e-5)


@pytest.mark.parametrize("projection_dim", [0, 64])
def test_influence_scores_agree_with_the_cpu(tiny_qwen3_dir, projection_dim):
    from prunetts.demo.render import calibration_texts
    from prunetts.influence import compute_influence, split_texts

    train, val = split_texts(calibration_texts(12), 6, 3, seed=0)
    tok = load_tokenizer(str(tiny_qwen3_dir))
    scores = {}
    for device in ("cpu", DEVICE):
        model = load_model(str(tiny_qwen3_dir), dtype="float32", device=device)
        rows = compute_influence(model, tok, train, val, 48, projection_dim, seed=0, progress=False)
        scores[device] = torch.tensor([r["influence"] for r in rows], dtype=torch.float64)
        del model
    a, b = scores["cpu"], scores[DEVICE]
    # float32 gradients differ in rounding between the devices; DataInf's n*u_k - sum_i c_i K_ik can cancel
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.999
    torch.testing.assert_close(b, a, rtol=1e-2, atol=1e-3 * float(a.abs().max()))


@pytest.mark.parametrize("dim,kind", [(0, "countsketch"), (64, "countsketch"), (64, "kronecker")])
def test_factored_influence_on_the_device_agrees_with_the_cpu(tiny_qwen3_dir, dim, kind):
    """bench/layerif_sketch.py's path on a GPU: token factors from the device model, Gram and sketches computed on
    the device, against compute_influence on the CPU."""
    from prunetts.demo.render import calibration_texts
    from prunetts.influence import _scored_groups, compute_influence, factored_influence, split_texts, token_factors

    train, val = split_texts(calibration_texts(12), 6, 3, seed=0)
    tok = load_tokenizer(str(tiny_qwen3_dir))
    cpu = load_model(str(tiny_qwen3_dir), dtype="float32", device="cpu")
    a = torch.tensor([r["influence"] for r in compute_influence(cpu, tok, train, val, 48, dim, 0, False, sketch=kind)])
    model = load_model(str(tiny_qwen3_dir), dtype="float32", device=DEVICE)
    f = [token_factors(model, tok, part, 48, progress=False) for part in (train, val)]
    rows = factored_influence(_scored_groups(model, None), *f, dim, 0, kind, DEVICE)
    b = torch.tensor([r["influence"] for r in rows])
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.999
    torch.testing.assert_close(b, a, rtol=1e-2, atol=1e-3 * float(a.abs().max()))


@pytest.mark.parametrize("p", [256, 8192])
def test_count_sketch_is_deterministic_on_the_device(p):
    """The CountSketch's index_add_ (atomics on CUDA) runs in deterministic mode, switched on around it only: two runs
    of the sketch from a text's factors give the same vector bit for bit, within float32 rounding of the CPU's."""
    from prunetts.influence import _project

    g = torch.Generator().manual_seed(0)
    X, D = torch.randn(512, 1024, generator=g), torch.randn(512, 4096, generator=g) * 1e-3
    parts = [torch.randint(p, (4096,), generator=g), torch.randint(2, (4096,), generator=g).float() * 2 - 1]
    parts += [torch.randint(p, (1024,), generator=g), torch.randint(2, (1024,), generator=g).float() * 2 - 1]
    dev = [t.to(DEVICE) for t in parts]
    first = _project(X.to(DEVICE), D.to(DEVICE), dev, p)
    assert first.device.type == DEVICE
    assert torch.equal(_project(X.to(DEVICE), D.to(DEVICE), dev, p), first)
    assert not torch.are_deterministic_algorithms_enabled()  # switched back off
    cpu = _project(X, D, parts, p)
    torch.testing.assert_close(first.cpu(), cpu, rtol=1e-4, atol=1e-4 * float(cpu.abs().max()))


def test_device_memory_holds_one_layer_not_the_model(tmp_path):
    if DEVICE != "cuda":
        pytest.skip("device memory is measured on CUDA only")
    model_dir = build_tiny("llama", tmp_path / "m", layers=24, hidden_size=512, intermediate_size=1536)
    weights = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))  # float32, as computed
    layer = weights / 24  # an upper bound: embeddings and lm_head are counted in too
    windows = [[(7 * i + j) % 250 for j in range(128)] for i in range(8)]
    targets = alloc.uniform(modules_of(model_dir), 0.5)
    kw = dict(windows=windows, device="cuda", dtype="float32", progress=False)
    # a first run allocates what stays for the process (cuBLAS workspaces, up to tens of MB): part of the baseline
    prune_checkpoint(str(model_dir), tmp_path / "warm-up", "wanda", targets, **kw)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    prune_checkpoint(str(model_dir), tmp_path / "out", "wanda", targets, **kw)
    peak = torch.cuda.max_memory_allocated() - base
    print(f"peak device memory {peak / 1e6:.1f} MB for a {weights / 1e6:.1f} MB checkpoint")
    assert peak < 0.25 * weights and peak < 3 * layer + 64e6


def test_cli_and_shortgpt_on_the_device(tiny_qwen3_dir, tmp_path):
    import json

    from transformers import AutoModelForCausalLM

    from prunetts.cli import main
    from tests.conftest import bench_file

    common = ["--model", str(tiny_qwen3_dir), "--calibration", str(bench_file("c4_demo.jsonl"))]
    common += ["--n-samples", "8", "--seqlen", "128", "--device", DEVICE, "--dtype", "auto"]
    for method, out in (("wanda", tmp_path / "wanda"), ("shortgpt", tmp_path / "sg")):
        args = ["prune", "--method", method, "--allocation", "owl", "--sparsity", "0.3", "--out", str(out)]
        assert main(args + common) == 0
        summary = json.loads((out / "prunetts_prune.json").read_text())
        if method == "wanda":
            assert summary["realized_sparsity_prunable_linears"] == pytest.approx(0.3, abs=0.03)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "sg", dtype=torch.bfloat16).to(DEVICE)
    ids = torch.tensor([[1, 2, 3, 4]], device=DEVICE)
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape == (1, 12) and out.device.type == torch.device(DEVICE).type
