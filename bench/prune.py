"""Pruning benchmarks, side by side in one run (ratios are the result; absolute times on 2 noisy cores mean little).

    python bench/prune.py [--quick] [--llmcompressor-python /path/to/venv/bin/python] [--repeats 3] [--parts abc]

(a) The unstructured grid (magnitude, wanda x uniform, owl, layerif x 2 sparsities = 12 variants) as the workflow runs
    it (calibration, dense capture, OWL scores and LayerIF influence computed once and shared) vs 12 independent runs
    that each compute what they need (what a per-variant script such as the reference repos does), on a random Qwen3 of
    realistic shape scaled to this machine. Same library code, in one process (no process starts on either side), same
    calibration tokens; checkpoints checked byte-identical; one untimed warm-up run first, and the sides alternate which
    goes first. The paper's own code loads LayerIF scores computed once: the ratio with the influence counted once on
    both sides is printed too. The stages keep config/paper.yaml's proportions, which decide the ratio: LayerIF's texts
    carry 0.75 x the calibration tokens ((9 + 3) x 256 against 16 x 256; the paper config's (300 + 96) x 512 against 128
    x 2048 is 0.77 x). More LayerIF texts (``--layerif-texts``) make the shared side look better, since the independent
    runs recompute the influence four times. Three Wanda settings: sequential (the reference: its per-layer passes
    depend on the variant and cannot be shared, but for layer 0's statistics, 1/L of them), as the paper's code runs it
    (sequential under uniform and OWL, one-pass with the matrix as comparison group under LayerIF: config/paper.yaml)
    and one-pass throughout (statistics from the shared capture).
(b) Peak RSS of pruning a bf16 checkpoint with sequential Wanda, in a fresh process: prunetts's layer-by-layer
    pruner; the standalone CLI's whole run with OWL (calibration, dense capture, OWL scores, sequential Wanda,
    checkpoint write, in one process); and loading the whole model with ``from_pretrained``, pruning in memory and
    ``save_pretrained`` (the reference repos' pattern), each as a multiple of the checkpoint size. ``--b-shape
    qwen3-8b``: a random checkpoint of Qwen3-8B's exact shape (16.4 GB in bf16).
(c) Optional: Wanda against llm-compressor's ``WandaPruningModifier`` on identical calibration tokens (it pins
    transformers 5.15-5.17, so it runs from its own virtual environment): wall time and mask agreement. prunetts
    reads the checkpoint, prunes and writes the pruned one; llm-compressor is timed for ``oneshot`` alone and with
    ``from_pretrained`` and ``save_pretrained`` around it (the same work as prunetts's). Each side runs
    ``--repeats`` times, alternating (llm-compressor's time varies by a third between runs on these machines); the
    ratios are of the medians. ``--grid-repeats`` does the same for (a). Two shapes: the (a) model, and one at
    the (b) model's width (hidden 2048, 4 layers), where matrix products are a larger share of both sides' time.
    Two pairings (``--c-modes``): sequential Wanda against llm-compressor's ``sequential`` pipeline, and prunetts's
    dense capture plus one-pass Wanda (timed together, as the workflow's capture and prune jobs) against its
    ``basic`` pipeline, which calibrates every layer in one forward of the dense model and then prunes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
C4 = REPO.parent / "shared" / "data" / "benchmarks" / "c4_demo.jsonl"


def machine() -> str:
    """The kernel, host and CPU the numbers were measured on: these VMs land on different hosts, and the widest
    vector units decide the fp32 matmul peak (AVX-512 doubles AVX2's) and so how much of a ratio matrix products are."""
    kernel = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return kernel
    field = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        field.setdefault(key.strip(), value.strip())
    flags = field.get("flags", "").split()
    simd = [f for f in ("avx2", "avx512f", "amx_bf16") if f in flags] or ["no AVX2"]
    return f"{kernel}, {field.get('model name', 'unknown CPU')} ({' '.join(simd)}), {os.cpu_count()} cores"


def build_random(out: Path, hidden: int, inter: int, layers: int, heads: int, kv: int, dtype: str, seed: int = 0):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from prunetts.demo.tokenizer import build_tokenizer

    tok = build_tokenizer()
    cfg = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=hidden // heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    del model


# Qwen3-8B's shape (its config.json: vocabulary, width, MLP, layers, heads, norms, rotary base, untied head)
QWEN3_8B = dict(
    vocab_size=151936,
    hidden_size=4096,
    intermediate_size=12288,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=False,
)
QUICK_8B = {**QWEN3_8B, "vocab_size": 512, "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32}  # fmt: skip


def build_random_streamed(out: Path, config_kwargs: dict, max_shard_bytes: int, seed: int = 0) -> None:
    """A random bf16 Qwen3 checkpoint written tensor by tensor (a model too large to build in memory: Qwen3-8B's
    fp32 init alone would take 33 GB): names and shapes from the model built on the meta device, weights N(0, 0.02),
    norms 1, shards of at most ``max_shard_bytes`` (the bench: 4 GiB; Qwen3-8B on the hub has 5 of <= 4 GB)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from prunetts.checkpoint import SAFETENSORS_DTYPES, Writer
    from prunetts.demo.tokenizer import build_tokenizer

    cfg = Qwen3Config(**config_kwargs, dtype="bfloat16")
    with torch.device("meta"):
        shapes = {n: list(t.shape) for n, t in Qwen3ForCausalLM(cfg).state_dict().items()}
    code = SAFETENSORS_DTYPES["bfloat16"]
    gen = torch.Generator().manual_seed(seed)
    with Writer(out, [(n, code, shape) for n, shape in shapes.items()], max_shard_bytes=max_shard_bytes) as w:
        for name, shape in shapes.items():
            if name.endswith("norm.weight"):
                t = torch.ones(shape, dtype=torch.bfloat16)
            else:
                t = torch.empty(shape, dtype=torch.bfloat16).normal_(0.0, 0.02, generator=gen)
            w.add({name: t})
        w.finish(cfg.to_dict())
    build_tokenizer().save_pretrained(out)  # for the CLI's calibration windows (ids below any vocabulary here)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))


# ---- (a) shared grid vs independent runs -------------------------------------------------------------------------
WANDA_SETTINGS = {  # label -> pruning.wanda
    "sequential": {"mode": "sequential", "group": "row"},
    "as the paper's code (LayerIF one-pass, matrix)": {
        "mode": "sequential",
        "group": "row",
        "by_allocation": {"layerif": {"mode": "one_pass", "group": "matrix"}},
    },
    "one_pass": {"mode": "one_pass", "group": "row"},
}


def grid(model: Path, work: Path, a, label: str) -> None:
    from prunetts import capture as cap
    from prunetts import scores as sc
    from prunetts.calibration import load_texts, packed_windows
    from prunetts.checkpoint import prunable_modules_from_shapes, tensor_shapes
    from prunetts.cli import run_prune
    from prunetts.config import Variant, wanda_setting
    from prunetts.influence import aggregate_positive, compute_influence, split_calibration_texts
    from prunetts.models import load_model, load_tokenizer
    from prunetts.pruning.allocation import for_variant
    from prunetts.pruning.pruner import prune_checkpoint

    variants = [
        Variant(m, al, s) for m in ("magnitude", "wanda") for al in ("uniform", "owl", "layerif") for s in (0.1, 0.2)
    ]
    common = dict(
        calibration=str(C4),
        text_field="text",
        calibration_mode="pack",
        n_samples=a.n_samples,
        seqlen=a.seqlen,
        seed=0,
        owl_m=7.0,
        owl_lambda=0.08,
        layerif_e1=0.05,
        layerif_e2=0.40,
        layerif_direction="paper_code",
        influence_train=None,
        influence_val=None,
        influence_text_field=None,
        n_train=a.n_train,
        n_val=a.n_val,
        influence_max_len=a.seqlen,
        projection_dim=a.projection_dim,
        device="cpu",
        dtype="float32",
        batch_size=8,
        trust_remote_code=False,
        shortgpt_layers=None,
    )

    def setting(v) -> dict:
        return {f"wanda_{k}": val for k, val in wanda_setting(WANDA_SETTINGS[label], v.allocation).items()}

    def run_one(v, out: Path) -> None:
        """One variant as a per-variant script prunes it: the CLI's whole run, computing all it needs."""
        ns = dict(model=str(model), revision=None, method=v.method, allocation=v.allocation, sparsity=v.sparsity)
        run_prune(Namespace(**ns, out=str(out), **setting(v), **common))

    def independent(out: Path) -> float:
        t0 = time.perf_counter()
        for v in variants:
            run_one(v, out / v.id)
        return time.perf_counter() - t0

    def shared(out: Path) -> tuple[float, float, float]:
        """Total time, the part spent pruning the Wanda variants, and the LayerIF influence's."""
        t0 = time.perf_counter()
        tok = load_tokenizer(str(model))
        texts = load_texts(str(C4))
        windows = packed_windows(texts, tok, a.n_samples, a.seqlen, 0)
        linear, _ = cap.capture(str(model), windows, 8, "cpu", "float32", progress=False)
        stats = {k: s for k, (s, _) in linear.items()}
        owl_scores = sc.owl_outlier_ratios(str(model), stats, 7.0)
        train, val = split_calibration_texts(texts, a.n_train, a.n_val, 0)
        t_inf = time.perf_counter()
        lm = load_model(str(model), "float32", "cpu")
        layerif_scores = aggregate_positive(
            compute_influence(lm, tok, train, val, a.seqlen, a.projection_dim, 0, progress=False)
        )
        del lm
        t_inf = time.perf_counter() - t_inf
        modules = prunable_modules_from_shapes(tensor_shapes(model))
        n_layers = json.loads((model / "config.json").read_text())["num_hidden_layers"]
        t_wanda = 0.0
        for v in variants:
            scores = {"owl": owl_scores, "layerif": layerif_scores}.get(v.allocation)
            options = {"owl": {"lambda": 0.08}, "layerif": {}}.get(v.allocation, {})
            targets = for_variant(v, modules, scores, options, n_layers)
            t1 = time.perf_counter()
            prune_checkpoint(
                str(model),
                str(out / v.id),
                v.method,
                targets,
                windows=windows,
                stats=stats,
                **setting(v),
                device="cpu",
                dtype="float32",
                progress=False,
            )
            t_wanda += time.perf_counter() - t1 if v.method == "wanda" else 0.0
        return time.perf_counter() - t0, t_wanda, t_inf

    # untimed warm-up, so that neither side's first run pays the process's one-off costs (first calls of torch's and
    # transformers' code paths; the first timed run took 3x the later ones without it)
    run_one(next(v for v in variants if v.method == "wanda" and v.allocation == "layerif"), work / "warm-up")
    shutil.rmtree(work / "warm-up")
    indep_s, shared_s, wanda_s, influence_s = [], [], [], []
    for r in range(a.grid_repeats):  # alternating which side goes first, as in (c)
        for side in ("indep", "shared") if r % 2 == 0 else ("shared", "indep"):
            shutil.rmtree(work / side, ignore_errors=True)
            if side == "indep":
                indep_s.append(independent(work / "indep"))
            else:
                total, in_wanda, in_influence = shared(work / "shared")
                shared_s.append(total)
                wanda_s.append(in_wanda)
                influence_s.append(in_influence)
    same = all(
        (work / "shared" / v.id / "model.safetensors").read_bytes()
        == (work / "indep" / v.id / "model.safetensors").read_bytes()
        for v in variants
    )
    print(
        f"\n(a) unstructured grid, 12 variants, Wanda {label}, {a.n_samples} x {a.seqlen} calibration "
        f"tokens, LayerIF {a.n_train}/{a.n_val} texts, projection {a.projection_dim}; identical checkpoints: {same}"
    )
    med_i, med_s = statistics.median(indep_s), statistics.median(shared_s)
    runs = f"median of {a.grid_repeats} alternating runs" if a.grid_repeats > 1 else "one run"
    ratios = [sh / ind for sh, ind in zip(shared_s, indep_s, strict=True)]
    print(f"    {'12 independent runs':<28}{med_i:>9.1f} s   {runs}")
    print(
        f"    {'shared capture (workflow)':<28}{med_s:>9.1f} s   ratio of medians {med_s / med_i:.3f}"
        + (f" (per run {min(ratios):.3f}-{max(ratios):.3f})" if len(ratios) > 1 else "")
    )
    print(f"      of which pruning the 6 Wanda variants {statistics.median(wanda_s):.1f} s")
    # the paper's code loads LayerIF scores computed once (pickles); the independent runs here each compute them,
    # four runs in all: counted once on both sides, the ratio is the shared side over the independent minus 3 of them
    med_f = statistics.median(influence_s)
    print(
        f"      of which the LayerIF influence {med_f:.1f} s (computed by each of the 4 independent LayerIF runs); "
        f"counted once on both sides: ratio {med_s / (med_i - 3 * med_f):.3f}"
    )


# ---- (b) peak RSS -------------------------------------------------------------------------------------------------
RSS_CHILD = r"""
import json, sys, time

def vm(key):  # this process's own counters (ru_maxrss would include the parent's, kept across exec)
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))

mode, src, out, n, seqlen, c4 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
import os, torch, transformers, prunetts.pruning.pruner  # the import baseline, measured before any weight is read
torch.set_num_threads(int(os.environ["PRUNETTS_BENCH_THREADS"]))  # the parent's count: both modes alike
baseline = vm("VmRSS:")
windows = [[(13 * i + 7 * j) % 250 for j in range(seqlen)] for i in range(n)]
t0 = time.perf_counter()
if mode == "prunetts":
    from prunetts.checkpoint import prunable_modules_from_shapes, tensor_shapes
    from prunetts.pruning.pruner import prune_checkpoint
    mods = prunable_modules_from_shapes(tensor_shapes(src))
    recs = prune_checkpoint(src, out, "wanda", {(l, m): 0.5 for l, m, _ in mods}, windows=windows, device="cpu",
                            dtype="float32", progress=False)
    realized = sum(r["n_zero"] for r in recs) / sum(r["numel"] for r in recs)
    assert tensor_shapes(out) == tensor_shapes(src), "the pruned checkpoint's tensors differ from the source's"
elif mode == "cli-owl":  # the standalone CLI's whole path: calibration, capture, OWL scores, sequential Wanda, write
    from prunetts.cli import main as cli
    assert cli(["prune", "--model", src, "--method", "wanda", "--allocation", "owl", "--sparsity", "0.5",
                "--calibration", c4, "--n-samples", str(n), "--seqlen", str(seqlen), "--device", "cpu",
                "--dtype", "float32", "--out", out]) in (0, None)
    realized = json.load(open(out + "/prunetts_prune.json"))["realized_sparsity_prunable_linears"]
else:  # whole model in memory, reference style (fp32 compute, as on CPU), saved with save_pretrained
    import torch
    from transformers import AutoModelForCausalLM
    from prunetts.pruning.wanda import wanda_mask
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    layers = model.model.layers
    inps = model.model.embed_tokens(torch.tensor(windows))
    pos = torch.arange(seqlen).unsqueeze(0)
    pe = model.model.rotary_emb(inps, pos)
    with torch.no_grad():
        for layer in layers:
            lins = {n: m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
            sq = {}
            hooks = [m.register_forward_hook(lambda m_, i, o, n=n: sq.__setitem__(
                n, sq.get(n, 0) + (i[0].double().reshape(-1, i[0].shape[-1]) ** 2).sum(0))) for n, m in lins.items()]
            layer(inps, position_embeddings=pe, position_ids=pos)
            for h in hooks:
                h.remove()
            for n, m in lins.items():
                m.weight[wanda_mask(m.weight, sq[n], 0.5)] = 0
            inps = layer(inps, position_embeddings=pe, position_ids=pos)
    model.to(torch.bfloat16).save_pretrained(out)
    lin = [p for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2]
    realized = sum(int((p == 0).sum()) for p in lin) / sum(p.numel() for p in lin)
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss": vm("VmHWM:"), "baseline": baseline,
                  "realized": realized}))
"""


def peak_rss(model: Path, work: Path, a, shape: str) -> None:
    size = dir_bytes(model)
    print(
        f"\n(b) peak RSS pruning a bf16 Qwen3 checkpoint of {size / 1e9:.2f} GB ({shape}) with sequential Wanda, "
        f"{a.rss_samples} x {a.rss_seqlen} calibration tokens, fresh process"
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for mode in ("prunetts", "cli-owl", "whole-model"):
        if mode == "whole-model" and 2 * size > memory:  # fp32 compute, as on CPU: twice the bf16 checkpoint
            print(
                f"    {'whole model, fp32 (reference)':<32} not run: its fp32 weights alone ({2 * size / 1e9:.0f} GB) "
                f"exceed this machine's {memory / 1e9:.0f} GB"
            )
            continue
        out = work / f"rss-{mode}"
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_CHILD,
                mode,
                str(model),
                str(out),
                str(a.rss_samples),
                str(a.rss_seqlen),
                str(C4),
            ],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        if proc.returncode:
            print(proc.stderr[-2000:])
            raise SystemExit(f"{mode} run failed")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        label = {
            "prunetts": "layer by layer (prunetts)",
            "cli-owl": "prunetts prune, OWL (+ capture)",
            "whole-model": "whole model, fp32 (reference)",
        }[mode]
        print(
            f"    {label:<32} peak RSS {r['peak_rss'] / 1e9:5.2f} GB = {r['peak_rss'] / size:4.2f} x checkpoint; "
            f"above the {r['baseline'] / 1e9:.2f} GB import baseline: {(r['peak_rss'] - r['baseline']) / size:4.2f} x"
            f"   ({r['seconds']:.0f} s, sparsity {r['realized']:.3f})"
        )
        shutil.rmtree(out, ignore_errors=True)


# ---- (c) llm-compressor -------------------------------------------------------------------------------------------
LLMC_CHILD = r"""
import json, os, sys, time, torch
torch.set_num_threads(int(os.environ["PRUNETTS_BENCH_THREADS"]))  # prunetts's count in the parent, not all cores
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import WandaPruningModifier
from transformers import AutoModelForCausalLM
src, out, windows_file, save_dir, pipeline = sys.argv[1:6]
windows = json.load(open(windows_file))
ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
t_load = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
t0 = time.perf_counter()
oneshot(model=model, dataset=ds, recipe=[WandaPruningModifier(sparsity=0.5, mask_structure="0:0",
        targets=["re:.*layers\\.\\d+\\..*_proj$"], ignore=["re:.*lm_head"])],
        num_calibration_samples=len(windows), max_seq_length=len(windows[0]), shuffle_calibration_samples=False,
        pipeline=pipeline)
secs = time.perf_counter() - t0
model.save_pretrained(save_dir)
total = time.perf_counter() - t_load
masks = {n: (p == 0).flatten().tolist() for n, p in model.named_parameters() if n.endswith("_proj.weight")}
torch.save({n: torch.tensor(m) for n, m in masks.items()}, out)
print(json.dumps({"seconds": secs, "with_load_save": total}))
"""


def child_env() -> dict:
    """The environment of a measured child process: this process's torch thread count, so that both sides of a
    ratio compute on the same number of cores (torch's default in a child is every core of the machine)."""
    import torch

    return {**os.environ, "PRUNETTS_BENCH_THREADS": str(torch.get_num_threads())}


# (c)'s two pairings: prunetts's Wanda mode -> llm-compressor's calibration pipeline computing the same masks
LLMC_PIPELINES = {
    "sequential": "sequential",  # each layer's statistics from the pruned layers before it (the reference)
    "one_pass": "basic",  # every layer's statistics from one forward of the dense model
}


def llmcompressor(model: Path, work: Path, a, shape: str, mode: str = "sequential") -> None:
    import torch

    from prunetts import capture as cap
    from prunetts.checkpoint import Reader, prunable_modules_from_shapes, tensor_shapes
    from prunetts.pruning.pruner import prune_checkpoint

    work.mkdir(parents=True, exist_ok=True)
    pipeline = LLMC_PIPELINES[mode]
    print(
        f"\n(c) Wanda {mode} vs llm-compressor WandaPruningModifier, pipeline {pipeline!r} (50 %, fp32 CPU, same "
        f"{a.n_samples} x {a.seqlen} tokens), {shape}"
    )
    if not a.llmcompressor_python:
        print("    skipped: pass --llmcompressor-python (a venv with llmcompressor==0.14.0.1 and torch==2.13.0)")
        return
    windows = [[(13 * i + 7 * j) % 250 for j in range(a.seqlen)] for i in range(a.n_samples)]
    (work / "windows.json").write_text(json.dumps(windows))
    mods = prunable_modules_from_shapes(tensor_shapes(model))
    theirs_s, theirs_io_s, ours_s = [], [], []
    for _ in range(a.repeats):  # alternating, so that a slow spell of the machine hits both sides
        shutil.rmtree(work / "llmc-out", ignore_errors=True)
        cmd = [a.llmcompressor_python, "-c", LLMC_CHILD, str(model), str(work / "llmc_masks.pt")]
        proc = subprocess.run(
            cmd + [str(work / "windows.json"), str(work / "llmc-out"), pipeline],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        if proc.returncode:
            why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
            print("    llm-compressor failed:", why)
            return
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        theirs_s.append(r["seconds"])
        theirs_io_s.append(r["with_load_save"])
        shutil.rmtree(work / "ours", ignore_errors=True)  # as llm-compressor's output above: no old files to replace
        t0 = time.perf_counter()
        stats = None
        if mode == "one_pass":  # the dense capture, as the workflow's capture job computes it, counted here
            linear, _ = cap.capture(str(model), windows, 8, "cpu", "float32", progress=False)
            stats = {k: s for k, (s, _) in linear.items()}
        prune_checkpoint(
            str(model),
            str(work / "ours"),
            "wanda",
            {(li, m): 0.5 for li, m, _ in mods},
            windows=windows,
            stats=stats,
            wanda_mode=mode,
            device="cpu",
            dtype="float32",
            progress=False,
        )
        ours_s.append(time.perf_counter() - t0)
    theirs = torch.load(work / "llmc_masks.pt")  # our own file, written just above by the child process
    ours = Reader(work / "ours")
    agree = total = 0
    for layer, name, _ in mods:
        key = f"model.layers.{layer}.{name}.weight"
        mine = (ours.load([key])[key] == 0).flatten()
        agree += int((mine == theirs[key]).sum())
        total += mine.numel()
    med_ours = statistics.median(ours_s)
    runs = f"median of {a.repeats} alternating runs (min-max)"
    label = "prunetts load+prune+save" if mode == "sequential" else "prunetts load+capture+prune+save"
    print(f"    {label:<33}{med_ours:>5.1f} s   {runs}: {min(ours_s):.1f}-{max(ours_s):.1f} s")
    for label, times in (("llm-compressor oneshot", theirs_s), ("llm-compressor load+oneshot+save", theirs_io_s)):
        med = statistics.median(times)
        print(
            f"    {label:<33}{med:>5.1f} s   {runs}: {min(times):.1f}-{max(times):.1f} s   "
            f"prunetts / this: {med_ours / med:.3f}"
        )
    print(f"    mask agreement {agree / total * 100:.3f} % of {total:,} weights")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test of the script)")
    ap.add_argument("--llmcompressor-python", help="python of a venv with llmcompressor installed")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side in part (c)")
    ap.add_argument("--grid-repeats", type=int, default=1, help="runs of each side in part (a)")
    ap.add_argument("--parts", default="abc", help="which parts to run, e.g. 'c'")
    ap.add_argument(
        "--windows",
        type=int,
        default=16,
        help="calibration windows of 256 tokens in (a) and (c) (default 16; the paper's 128 windows of 2048 tokens, at "
        "the (a) model's 1/8 of Qwen3-8B's width, are 128 windows of 256); LayerIF's texts follow in "
        "config/paper.yaml's proportion",
    )
    ap.add_argument(
        "--layerif-texts",
        nargs=2,
        type=int,
        metavar=("TRAIN", "VAL"),
        help="LayerIF training / validation texts in (a) (default 9 3 per 16 windows: config/paper.yaml's proportions)",
    )
    ap.add_argument(
        "--b-shape",
        choices=("small", "qwen3-8b"),
        default="small",
        help="(b)'s checkpoint: ~2.2 GB (24 layers, hidden 2048), or Qwen3-8B's shape (16.4 GB, written tensor by "
        "tensor; needs ~35 GB of disk in TMPDIR; the whole-model side is not run where it would not fit in memory)",
    )
    ap.add_argument(
        "--c-modes",
        default="sequential,one_pass",
        help="(c)'s Wanda modes, comma-separated: sequential (against llm-compressor's sequential pipeline), one_pass "
        "(prunetts's dense capture and one-pass Wanda against its basic pipeline)",
    )
    ap.add_argument("--settings", help="comma-separated indices of the (a) Wanda settings to run (default: all)")
    a = ap.parse_args(argv)
    # (a) model: 6 layers of a Qwen3 at 1/8 of Qwen3-8B's width; (b) model: ~2.2 GB bf16
    a.hidden, a.inter, a.layers, a.heads, a.kv = (512, 1536, 6, 8, 2) if not a.quick else (64, 128, 3, 4, 2)
    a.n_samples, a.seqlen, a.n_train, a.n_val, a.projection_dim = (
        (a.windows, 256, round(9 * a.windows / 16), round(3 * a.windows / 16), 1024)
        if not a.quick
        else (4, 64, 6, 2, 64)
    )
    if a.layerif_texts:
        a.n_train, a.n_val = a.layerif_texts
    a.big_hidden, a.big_inter, a.big_layers = (2048, 5632, 24) if not a.quick else (128, 256, 2)
    a.wide_layers = 4 if not a.quick else 2
    a.rss_samples, a.rss_seqlen = (4, 256) if not a.quick else (2, 32)
    import torch

    torch.set_num_threads(2)
    print(f"machine: {machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = work / "model-a"
        build_random(small, a.hidden, a.inter, a.layers, a.heads, a.kv, "float32")
        chosen = {int(i) for i in a.settings.split(",")} if a.settings else set(range(len(WANDA_SETTINGS)))
        for i, label in enumerate(WANDA_SETTINGS if "a" in a.parts else []):
            if i not in chosen:
                continue
            grid(small, work / f"grid-{i}", a, label)
        if "c" in a.parts:
            modes = a.c_modes.split(",")
            for mode in modes:
                llmcompressor(small, work / "llmc", a, f"the (a) model: hidden {a.hidden}, {a.layers} layers", mode)
            wide = work / "model-c"
            build_random(wide, a.big_hidden, a.big_inter, a.wide_layers, 16, 4, "float32")
            for mode in modes:
                llmcompressor(wide, work / "llmc-wide", a, f"hidden {a.big_hidden}, {a.wide_layers} layers", mode)
            shutil.rmtree(wide)
        if "b" not in a.parts:
            return
        big = work / "model-b"
        if a.b_shape == "qwen3-8b":
            t0 = time.perf_counter()
            build_random_streamed(big, QWEN3_8B if not a.quick else QUICK_8B, 4 * 1024**3 if not a.quick else 2**19)
            print(f"\n(built the random Qwen3-8B-shaped checkpoint in {time.perf_counter() - t0:.0f} s)")
            c = QWEN3_8B if not a.quick else QUICK_8B
            shape = (
                f"Qwen3-8B's shape{' (--quick: scaled down)' if a.quick else ''}: {c['num_hidden_layers']} layers, "
                f"hidden {c['hidden_size']}, MLP {c['intermediate_size']}, {c['num_attention_heads']}/"
                f"{c['num_key_value_heads']} heads, {len(list(big.glob('*.safetensors')))} shards"
            )
            peak_rss(big, work, a, shape)
        else:
            build_random(big, a.big_hidden, a.big_inter, a.big_layers, 16, 4, "bfloat16")
            peak_rss(big, work, a, f"{a.big_layers} layers, hidden {a.big_hidden}")


if __name__ == "__main__":
    main()
