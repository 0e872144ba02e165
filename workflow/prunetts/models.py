"""Loading and saving HF causal LMs, and the one architecture accessor.

Qwen2 (s1.1-7B, q/k/v biases), Qwen3 (q_norm/k_norm, ``layer_types``) and Llama share the decoder layout
``model.model.layers[i]`` with ``self_attn.{q,k,v,o}_proj`` and ``mlp.{gate,up,down}_proj``; everything
architecture-specific goes through ``Arch`` so no code is copied per family. The prunable set is every ``nn.Linear``
inside a decoder layer: never embeddings, ``lm_head``, norms or biases.

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


def model_type_problem(model_type) -> str | None:
    """The line for a ``model_type`` prunetts cannot prune, or None."""
    if model_type in SUPPORTED_MODEL_TYPES:
        return None
    if model_type is None:
        return (
            f"config.json has no model_type (supported: {', '.join(SUPPORTED_MODEL_TYPES)}); restore the checkpoint's "
            "own config.json"
        )
    return f"model_type {model_type!r} is not supported (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"


@dataclass(frozen=True)
class Arch:
    """Accessor for the decoder stack of a supported causal LM."""

    model_type: str

    @staticmethod
    def of(model) -> Arch:
        return Arch.of_config(model.config)

    @staticmethod
    def of_config(config) -> Arch:
        """The accessor for a ``PretrainedConfig``: checkable before any weight is read."""
        mt = getattr(config, "model_type", None)
        if problem := model_type_problem(mt):
            raise ModelError(problem)
        return Arch(mt)

    def decoder(self, model):
        """The base model holding ``embed_tokens``, ``layers``, ``norm`` and ``rotary_emb``."""
        return model.model

    def layers(self, model):
        return self.decoder(model).layers

    # The linear whose output only joins the residual stream at the end of the layer (Qwen2, Qwen3 and Llama alike):
    # a pass that only needs the layer's input statistics needs its input, never its output.
    output_projection = "mlp.down_proj"

    def prunable_linears(self, layer) -> dict:
        """Every nn.Linear inside one decoder layer, by name relative to the layer (e.g. ``self_attn.q_proj``)."""
        import torch.nn as nn

        return {name: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}


def resolve_dtype(name: str, device: str):
    import torch

    if name == "auto":
        # bf16 on GPU; fp32 on CPU, where bf16 matmuls are ~6x slower (ENVIRONMENT.md)
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, DTYPES[name])


# set by a workflow job (jobs.job_logging): "1" = given a GPU, where ``auto`` must not quietly mean the CPU; "0" =
# given none (gpu: 0), where ``auto`` must not take a GPU that the scheduler gave another job
REQUIRE_GPU_ENV = "PRUNETTS_REQUIRE_GPU"


def resolve_device(name: str = "auto") -> str:
    """``auto`` = cuda if torch sees one, else cpu (an error instead in a job that was given a GPU: an 8B model in
    fp32 on the CPU would run until the time limit; cpu in a job given ``gpu: 0``); any other name must be a device
    this process can use (checked here, in one line, rather than by a kernel failing after the model is loaded)."""
    import os

    import torch

    if name == "auto":
        if os.environ.get(REQUIRE_GPU_ENV) == "0":
            return "cpu"
        if torch.cuda.is_available():
            return "cuda"
        if os.environ.get(REQUIRE_GPU_ENV) == "1":
            raise ModelError(
                f"device auto: this job was given a GPU but torch {torch.__version__} sees none (built with CUDA "
                f"{torch.version.cuda}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); fix the "
                "node's driver or the environment's torch build, or set the stage's device: cpu"
            )
        return "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ModelError(f"device {name!r}: not a torch device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ModelError(f"device {name!r}: torch {torch.__version__} sees no CUDA GPU here; use cpu or auto")
        if dev.index is not None and dev.index >= n:
            raise ModelError(f"device {name!r}: only {n} CUDA GPU(s) here (cuda:0..cuda:{n - 1})")
    elif dev.type != "cpu":
        raise ModelError(f"device {name!r}: prunetts runs on cpu or cuda")
    return name


# JSON files of a checkpoint directory that transformers parses; a garbled one is named instead of a decoder traceback
_JSON_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)
# any one of these is a tokenizer transformers can load (fast, SentencePiece, or BPE vocab + merges)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_RESTORE = "restore it from the original checkpoint (a checkpoint under results/: delete its directory and rerun)"


def check_local_checkpoint(path: str | Path, weights: bool = True) -> None:
    """A local model directory must hold a config, valid JSON files and complete safetensors weights (pickled .bin
    files are refused, never unpickled); each problem is one line naming the file."""
    import json

    from prunetts.checkpoint import CheckpointError, read_header

    p = Path(path)
    if not p.is_dir():
        return  # a hub id: transformers resolves it (offline runs fail there with its own message)
    if not (p / "config.json").is_file():
        raise ModelError(f"{p}: no config.json; point the model path at a Hugging Face checkpoint directory")
    for name in _JSON_FILES:
        f = p / name
        if f.is_file():
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # nested past the decoder's limit
                raise ModelError(f"{f}: not valid JSON ({e}); {_RESTORE}") from None
    if not weights:
        return
    shards = sorted(p.glob("*.safetensors"))
    if not shards:
        raise ModelError(f"{p}: no *.safetensors weights; convert the checkpoint to safetensors (pickle is refused)")
    for f in shards:
        try:
            read_header(f)  # also checks that the file is as long as its header says (truncation)
        except CheckpointError as e:
            raise ModelError(f"{e}; {_RESTORE}") from None


def _load_error(path: str, e: Exception, trust_remote_code: bool) -> ModelError:
    text = " ".join(str(e).split())
    if "trust_remote_code" in text and not trust_remote_code:
        return ModelError(
            f"{path}: the checkpoint needs its own Python code (trust_remote_code), which is off; set "
            "trust_remote_code: true in its models entry only if you trust that code"
        )
    return ModelError(f"{path}: cannot load ({type(e).__name__}: {text[:300]}); {_RESTORE}")


def load_model(path: str, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False):
    """Load a causal LM for inference (eval mode)."""
    from transformers import AutoModelForCausalLM

    check_local_checkpoint(path)
    device = resolve_device(device)
    config = load_config(path, trust_remote_code)
    Arch.of_config(config)  # before reading 16 GB of weights
    if Path(path).is_dir():  # transformers would fill a missing tensor with random values and only warn
        check_weights(path, _on_meta(config, trust_remote_code))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except _load_errors() as e:
        raise _load_error(path, e, trust_remote_code) from None
    return model.to(device).eval()


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    check_local_checkpoint(path, weights=False)
    if Path(path).is_dir() and not any((Path(path) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(
            f"{path}: no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the tokenizer files of the model it was made "
            "from into that directory"
        )
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a garbled tokenizer.json
        raise _load_error(path, e, trust_remote_code) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _load_errors() -> tuple[type[Exception], ...]:
    """What transformers raises for a checkpoint it cannot use: OSError (missing files), ValueError (unknown
    model_type, remote code refused), KeyError / TypeError and huggingface_hub's strict-dataclass validation errors
    (a config field of the wrong type)."""
    from huggingface_hub.errors import StrictDataclassError

    return (OSError, ValueError, KeyError, TypeError, StrictDataclassError)


def load_config(path: str, trust_remote_code: bool = False):
    """The model's ``PretrainedConfig``; a missing, garbled or remote-code config is one line naming the path."""
    from transformers import AutoConfig

    check_local_checkpoint(path, weights=False)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except _load_errors() as e:
        raise _load_error(path, e, trust_remote_code) from None


def _on_meta(config, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def meta_model(path: str, trust_remote_code: bool = False):
    """``(config, model, arch)`` with the model built on the meta device from the config alone (no weights)."""
    config = load_config(path, trust_remote_code)
    model = _on_meta(config, trust_remote_code)
    return config, model, Arch.of(model)


def check_weights(path: str | Path, model) -> None:
    """One line when the safetensors of local checkpoint ``path`` do not hold every tensor of ``model`` (built from
    its config.json on the meta device) at its shape: a config.json from another model size, or weights missing.
    Tied tensors (lm_head = embedding) count as present when one of their names is stored. A stored tensor the
    model lacks (a layer beyond the config's count) would be dropped silently by transformers: also one line."""
    from prunetts.checkpoint import IGNORED_RE, CheckpointError, tensor_shapes

    stored = tensor_shapes(path)
    groups: dict[int, tuple[list[int], list[str]]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), (list(t.shape), []))[1].append(name)
    known = {n for _, names in groups.values() for n in names}
    extra = sorted(n for n in stored if n not in known and not IGNORED_RE.search(n))
    if extra:
        raise CheckpointError(
            f"{path}: the weights hold {extra[0]}{f' and {len(extra) - 1} more' if len(extra) > 1 else ''}, which "
            "config.json's model has no place for; the config does not match the weights: restore the checkpoint's "
            "own config.json"
        )
    for expected, names in groups.values():
        present = [n for n in names if n in stored]
        wrong = next((n for n in present if list(stored[n]) != expected), None)
        problem = None
        if not present:
            problem = f"no tensor {names[0]} (the model config.json describes has one)"
        elif wrong:
            problem = f"{wrong} has shape {list(stored[wrong])}, config.json implies {expected}"
        if problem:
            raise CheckpointError(
                f"{path}: {problem}; the config does not match the weights: restore the checkpoint's own config.json "
                "(or its missing weights)"
            )


def prunable_modules(path: str, trust_remote_code: bool = False) -> list[tuple[int, str, int]]:
    """``[(layer, module, numel)]`` of every prunable linear, from the config alone (meta device, no weights)."""
    _, model, arch = meta_model(path, trust_remote_code)
    return [
        (li, name, lin.weight.numel())
        for li, layer in enumerate(arch.layers(model))
        for name, lin in arch.prunable_linears(layer).items()
    ]
