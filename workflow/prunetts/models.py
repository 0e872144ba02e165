"""Loading and saving HF causal LMs, and the one architecture accessor.

Qwen2 (s1.1-7B, q/k/v biases), Qwen3 (q_norm/k_norm, ``layer_types``) and Llama share the decoder layout
``model.model.layers[i]`` with ``self_attn.{q,k,v,o}_proj`` and ``mlp.{gate,up,down}_proj``; everything
architecture-specific goes through ``Arch`` so no code is copied per family. The prunable set is every ``nn.Linear``
inside a decoder layer (METHODS §1.2): never embeddings, ``lm_head``, norms or biases.

Safety: weights load only from safetensors (``use_safetensors=True``) and ``trust_remote_code`` is off unless the
model's config entry turns it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3", "llama")
DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class ModelError(ValueError):
    """The model cannot be used (unsupported architecture, missing safetensors, ...): message names it."""


@dataclass(frozen=True)
class Arch:
    """Accessor for the decoder stack of a supported causal LM."""

    model_type: str

    @staticmethod
    def of(model) -> Arch:
        mt = getattr(model.config, "model_type", None)
        if mt not in SUPPORTED_MODEL_TYPES:
            raise ModelError(f"model_type {mt!r} is not supported (supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
        return Arch(mt)

    def decoder(self, model):
        """The base model holding ``embed_tokens``, ``layers``, ``norm`` and ``rotary_emb``."""
        return model.model

    def layers(self, model):
        return self.decoder(model).layers

    def prunable_linears(self, layer) -> dict:
        """Every nn.Linear inside one decoder layer, by name relative to the layer (e.g. ``self_attn.q_proj``)."""
        import torch.nn as nn

        return {name: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}


def resolve_dtype(name: str, device: str):
    import torch

    if name == "checkpoint":
        return "auto"  # transformers: the dtype stored in the checkpoint's config
    if name == "auto":
        # bf16 on GPU; fp32 on CPU, where bf16 matmuls are ~6x slower (ENVIRONMENT.md)
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, DTYPES[name])


def resolve_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def check_local_checkpoint(path: str | Path) -> None:
    """A local model directory must hold a config and safetensors weights (pickled .bin files are refused)."""
    p = Path(path)
    if not p.is_dir():
        return  # a hub id: transformers resolves it (offline runs fail there with its own message)
    if not (p / "config.json").is_file():
        raise ModelError(f"{p}: no config.json; point the model path at a Hugging Face checkpoint directory")
    if not any(p.glob("*.safetensors")):
        raise ModelError(f"{p}: no *.safetensors weights; convert the checkpoint to safetensors (pickle is refused)")


def load_model(path: str, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False):
    """Load a causal LM for inference (eval mode)."""
    from transformers import AutoModelForCausalLM

    check_local_checkpoint(path)
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code, use_safetensors=True
    )
    Arch.of(model)
    return model.to(device).eval()


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def save_model(model, tokenizer, out: str | Path) -> None:
    """Save as a normal HF checkpoint (safetensors) with its tokenizer."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def prunable_modules(path: str, trust_remote_code: bool = False) -> list[tuple[int, str, int]]:
    """``[(layer, module, numel)]`` of every prunable linear, from the config alone (meta device, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    arch = Arch.of(model)
    return [
        (li, name, lin.weight.numel())
        for li, layer in enumerate(arch.layers(model))
        for name, lin in arch.prunable_linears(layer).items()
    ]
