"""Would one forward pass per layer do? Wanda "true sequential" (within a layer too) against the reference's masks.

    python bench/true_sequential.py [--quick] [--windows 16] [--sparsities 0.1 0.2 0.5]

The reference sequential Wanda (``prunetts.pruning.pruner``, as locuslab/wanda and llm-compressor) runs each decoder
layer twice: once dense for the statistics of all its linears, then pruned for the next layer's inputs. That second
pass is why no exact sequential Wanda gets near half of llm-compressor's time (README, Performance (c)). GPTQ's
``--true-sequential`` order would need one: each linear is pruned from statistics of its input as the already pruned
linears before it in the same layer produce it (q/k/v from the layer input, o_proj from the pruned attention, gate/up
after the pruned attention block, down_proj from the pruned gate/up), and the layer's one pass is also the next
layer's input. Here that order runs with the whole calibration set as one batch, so a forward pre-hook can measure a
linear's input over every window and prune it before it multiplies; the masks are then compared with the reference's
on the same tokens. A mode is worth offering only if it agrees with the reference as llm-compressor does (>= 99.9 %).
No timing is printed: the saving is the pass count, one forward per layer against two (one for the last layer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from prune import C4, REPO, build_random, machine  # noqa: E402  (bench/prune.py: the (a) model and the C4 sample)

DEMO = REPO / "resources" / "demo-qwen3"


def zero_masks(runner, layer, i: int) -> dict:
    return {(i, n): (lin.weight == 0).cpu() for n, lin in runner.arch.prunable_linears(layer).items()}


def true_sequential(model: str, windows: list, allocation: dict) -> dict:
    """Zero patterns of every prunable linear after one within-layer sequential pass per layer."""
    import torch

    from prunetts.checkpoint import Reader
    from prunetts.layerwise import LayerRunner
    from prunetts.pruning.wanda import wanda_mask

    runner = LayerRunner(Reader(model), "cpu", "float32")
    hidden = runner.embed(windows, len(windows))  # one batch: each linear sees every window before it runs
    masks = {}
    for i in range(runner.n_layers):
        layer = runner.load_layer(i)
        hooks = []
        for name, lin in runner.arch.prunable_linears(layer).items():

            def prune_then_run(linear, args, name=name, i=i):
                x = args[0].reshape(-1, args[0].shape[-1]).float()
                runner.prune(name, linear, wanda_mask(linear.weight, x.square().sum(0).double(), allocation[(i, name)]))

            hooks.append(lin.register_forward_pre_hook(prune_then_run))
        with torch.no_grad():
            hidden = runner.forward(i, layer, hidden, out=hidden)
        for h in hooks:
            h.remove()
        masks.update(zero_masks(runner, layer, i))
        runner.unload_layer(i)
    return masks


def reference(model: str, windows: list, allocation: dict, out: Path) -> dict:
    from prunetts.checkpoint import Reader
    from prunetts.layerwise import LayerRunner
    from prunetts.pruning.pruner import prune_checkpoint

    prune_checkpoint(model, out, "wanda", allocation, windows=windows, device="cpu", dtype="float32", progress=False)
    runner = LayerRunner(Reader(out), "cpu", "float32")
    masks = {}
    for i in range(runner.n_layers):
        masks.update(zero_masks(runner, runner.load_layer(i), i))
        runner.unload_layer(i)
    return masks


def compare(label: str, model: Path, a, work: Path) -> None:
    """Print the agreement at each sparsity; ``work`` holds the reference's checkpoints."""
    from prunetts.calibration import load_texts, packed_windows
    from prunetts.checkpoint import prunable_modules_from_shapes, tensor_shapes
    from prunetts.models import load_tokenizer
    from prunetts.pruning import allocation as alloc

    windows = packed_windows(load_texts(str(C4)), load_tokenizer(str(model)), a.windows, a.seqlen, 0)
    modules = prunable_modules_from_shapes(tensor_shapes(str(model)))
    print(f"{label}: {a.windows} x {a.seqlen} calibration tokens, uniform allocation, comparison group: row")
    for s in a.sparsities:
        allocation = alloc.uniform(modules, s)
        ref = reference(str(model), windows, allocation, work / f"{model.name}-{s}")
        ts = true_sequential(str(model), windows, allocation)
        assert ref.keys() == ts.keys()
        same = sum(int((ref[k] == ts[k]).sum()) for k in ref)
        total = sum(ref[k].numel() for k in ref)
        first = [k for k in ref if k[0] == 0]  # layer 0's q/k/v see the same inputs on both sides
        same0 = all(bool((ref[k] == ts[k]).all()) for k in first if k[1].endswith(("q_proj", "k_proj", "v_proj")))
        print(f"    sparsity {s:.2f}: mask agreement {100 * same / total:8.4f} % of {total:,} weights"
              f"   (layer 0 q/k/v identical: {same0})")  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test of the script)")
    ap.add_argument("--windows", type=int, default=16, help="calibration windows")
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.1, 0.2, 0.5])
    a = ap.parse_args(argv)
    a.seqlen = 256 if not a.quick else 32
    import torch

    torch.set_num_threads(2)
    print(
        f"machine: {machine()}, torch {torch.__version__}; within-layer sequential Wanda (1 forward per layer) vs the "
        "reference (2)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        random = work / "random"
        shape = (512, 1536, 6, 8, 2) if not a.quick else (64, 128, 2, 4, 2)
        build_random(random, *shape, "float32")
        compare(f"random Qwen3, hidden {shape[0]}, MLP {shape[1]}, {shape[2]} layers (bench/prune.py (a))", random,
                a, work)  # fmt: skip
        compare("trained demo model (resources/demo-qwen3)", DEMO, a, work)


if __name__ == "__main__":
    main()
