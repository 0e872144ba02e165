"""Shared fixtures: tiny random models of each supported family, the demo checkpoint, the real benchmark files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO / "resources" / "demo-qwen3"


def _default_bench_data() -> Path:
    """``../shared/data/benchmarks`` beside the checkout (or beside any parent folder, for clones in subfolders)."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "benchmarks"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "data" / "benchmarks"


BENCH_DATA = Path(os.environ.get("PRUNETTS_BENCH_DATA") or _default_bench_data())

FAMILIES = ("qwen2", "qwen3", "llama")


def bench_file(name: str) -> Path:
    path = BENCH_DATA / name
    if not path.is_file():
        raise FileNotFoundError(
            f"real benchmark file {path} not found; set PRUNETTS_BENCH_DATA to the folder holding {name}"
        )
    return path


def tiny_config(family: str, vocab_size: int, layers: int = 3, **overrides):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    common.update(overrides)
    if family == "qwen2":
        return Qwen2Config(**common)
    if family == "qwen3":
        return Qwen3Config(head_dim=8, **common)
    return LlamaConfig(**common)


def build_tiny(
    family: str, out: Path, seed: int = 0, layers: int = 3, dtype=None, max_shard_size=None, **overrides
) -> Path:
    """A random checkpoint saved by transformers; ``dtype`` (a torch dtype) and ``max_shard_size`` change how it is
    stored, ``overrides`` go to the config (e.g. ``tie_word_embeddings=True``)."""
    import torch
    from transformers import AutoModelForCausalLM

    from prunetts.demo.tokenizer import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = tiny_config(family, len(tok), layers, **overrides)
    cfg.eos_token_id = tok.eos_token_id
    cfg.pad_token_id = tok.pad_token_id
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # random biases too (HF inits them to zero), so tests can tell they are never pruned
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.02)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(out, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    tok.save_pretrained(out)
    return out


def modules_of(model_dir) -> list[tuple[int, str, int]]:
    """``(layer, module, numel)`` of every prunable linear of a checkpoint, from its safetensors headers."""
    from prunetts.checkpoint import prunable_modules_from_shapes, tensor_shapes

    return prunable_modules_from_shapes(tensor_shapes(model_dir))


def zero_masks(model_dir) -> dict:
    """``{(layer, module): bool tensor}`` of the zero weights of every prunable linear of a checkpoint."""
    from prunetts.models import Arch, load_model

    model = load_model(str(model_dir), dtype="float32", device="cpu")
    arch = Arch.of(model)
    return {
        (li, name): (lin.weight == 0)
        for li, layer in enumerate(arch.layers(model))
        for name, lin in arch.prunable_linears(layer).items()
    }


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_model_dir(request, tmp_path_factory) -> Path:
    """A random tiny checkpoint of each family (Qwen2 has q/k/v biases, Qwen3 q/k norms)."""
    return build_tiny(request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"))


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    return build_tiny("qwen3", tmp_path_factory.mktemp("tiny-qwen3-single"))


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    if not (DEMO_MODEL / "config.json").is_file():
        raise FileNotFoundError(f"{DEMO_MODEL} is missing: it ships with the repo (see README, demo model)")
    return DEMO_MODEL


def fake_hub(cache: Path, repo_id: str, snapshots: dict[str, Path], main: str) -> Path:
    """A Hugging Face hub cache (the HF_HUB_CACHE layout) holding ``repo_id`` at each commit of ``snapshots`` (commit ->
    checkpoint directory to copy), with the default branch at ``main``: hub ids resolve from it offline."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for commit, src in snapshots.items():
        shutil.copytree(src, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(main)
    return cache


def perturbed_copy(src: Path, dst: Path, seed: int = 1) -> Path:
    """A copy of checkpoint ``src`` with noise on every weight matrix: same shapes and files, different magnitudes (a
    later revision of the same model)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    gen = torch.Generator().manual_seed(seed)
    for f in dst.glob("*.safetensors"):
        tensors = load_file(f)
        for name, t in tensors.items():
            if t.ndim == 2 and t.is_floating_point():
                tensors[name] = t + t.std() * torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.dtype)
        save_file(tensors, f, metadata={"format": "pt"})
    return dst


@pytest.fixture(autouse=True)
def _keep_thread_settings():
    """A test that runs a job in-process (``jobs.*`` set torch's thread count and OMP_NUM_THREADS for the job's
    process) must not leave them changed for the tests after it."""
    import torch

    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp
