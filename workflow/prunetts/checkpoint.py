"""Streaming access to HF safetensors checkpoints, one decoder layer at a time.

Pruning an 8B model must not hold the dense and the pruned model together: the reader loads the tensors of one layer
(``model.layers.{i}.*``) on demand, the writer streams processed tensors into output shards planned from the source's
layout (a background thread writes while the next layer is computed) and writes the index at the end.
``tensor_shapes`` reads only the JSON headers (no torch import), which is all the allocation step needs.

Only safetensors are read (pickled ``.bin`` checkpoints are refused); hub ids are resolved through the local HF cache
/ ``snapshot_download``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import struct
from collections import deque
from pathlib import Path

LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
# rotary inverse frequencies that old Llama checkpoints store (model.layers.{i}.self_attn.rotary_emb.inv_freq):
# transformers recomputes them from the config (a non-persistent buffer, no longer a module's state), so the reader
# skips them: they are neither loaded into a layer nor written to a pruned checkpoint
IGNORED_RE = re.compile(r"(^|\.)rotary_emb\.inv_freq$")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# files copied verbatim next to the weights (tokenizer, chat template, generation defaults)
SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.json",
    # the licence travels with derived weights (Llama's and Gemma's terms require it); the model card does not: it
    # describes the dense model's evaluations
    "LICENSE",
    "LICENSE.txt",
    "LICENSE.md",
    "NOTICE",
    "USE_POLICY.md",
)
# named chat templates (tokenizer.apply_chat_template(chat_template="tool_use")): transformers saves each as
# additional_chat_templates/<name>.jinja, and a tokenizer loaded without them silently falls back to the default
CHAT_TEMPLATE_DIR = "additional_chat_templates"


class CheckpointError(ValueError):
    pass


def looks_local(path: str) -> bool:
    """Whether a missing ``path`` was meant as a local path rather than a hub id (``name`` or ``org/name``): anything
    absolute, relative to '.'/'~', deeper, or whose first part is an existing local directory (``models/lama``, a
    typo). The config check uses it for models and data sources alike."""
    if _local_by_form(path):
        return True
    head = path.split("/", 1)[0]
    # ``Qwen/Qwen3-8B`` beside a local ``Qwen/`` folder (e.g. an earlier ``--out Qwen/Qwen3-8B-wanda``) is still the
    # hub id when the hub cache holds that model
    return "/" in path and Path(head).is_dir() and not _in_hub_cache(path)


def _local_by_form(path: str) -> bool:
    """A path by its spelling alone: absolute, relative to '.'/'~', deeper than ``org/name``, or with a backslash."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1 or "\\" in path


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds a snapshot of model ``repo_id`` (no network access)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except (ImportError, ValueError, OSError):  # not a valid repo id, or no readable cache
        return False


def local_path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a model: a file, or a local directory that does not exist; None for a directory or a
    hub id."""
    p = Path(path).expanduser()
    if p.is_dir():
        return None
    if p.exists():
        return "a file, not a checkpoint directory"
    text = str(path)
    if looks_local(text):
        if not _local_by_form(text):
            # org/name read as a path because a folder org/ is here: say so, or the advice reads as a riddle
            head = text.split("/", 1)[0]
            return (
                f"no such directory (read as a local path: a folder {head}/ is in the working directory and the hub "
                f"cache holds no {text}); correct the path, or for the hub model fetch it into the cache first "
                f"(hf download {text})"
            )
        return "no such directory; give an HF checkpoint directory or a hub id (org/name)"
    return None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (hub and datasets errors span many), else its type's name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def hub_transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's own errors, which huggingface_hub lets through unwrapped: a connection dropped or timed out
    past its retries while downloading a file (``http_get`` re-raises ``httpx2.ReadTimeout``, ``RemoteProtocolError``,
    ``ConnectError``), or a proxy failure. huggingface_hub >= 1 uses httpx (2.x: httpx2), whose ``HTTPError`` is
    neither an ``OSError`` nor a ``ValueError``, unlike requests' errors before 1.0."""
    try:
        from huggingface_hub.utils import httpx  # the client module huggingface_hub uses, whatever its name
    except ImportError:  # huggingface_hub < 1: requests, whose errors are OSErrors
        return ()
    return (httpx.HTTPError,)


def is_commit(revision: str | None) -> bool:
    """A full 40-character commit sha: the only revision that pins (a branch or tag moves; a short sha resolves only
    online)."""
    return bool(revision) and re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def model_ref(path: str, revision: str | None) -> str:
    """One string for a model (or dataset): its path or hub id, ``hub-id@revision`` when pinned (hub ids cannot contain
    '@'); a path in one spelling (``one_spelling``)."""
    path = one_spelling(str(path))
    return f"{path}@{revision}" if revision else path


def one_spelling(source):
    """A local path or hub id as the workflow's params and cache keys hold it: "./models/m/" and "models/m" are one
    model, which would otherwise rerun every job of the grid and miss the between-workflow cache (``os.path.normpath``;
    an absolute and a relative spelling stay two). Anything else (None, a number) as it is."""
    return os.path.normpath(source) if isinstance(source, str) and source else source


def split_ref(ref: str | os.PathLike) -> tuple[str, str | None]:
    """``model_ref``'s inverse: ``(path or hub id, revision or None)``; an existing path is never split."""
    ref = str(ref)
    if "@" not in ref or Path(ref).expanduser().exists():
        return ref, None
    path, revision = ref.rsplit("@", 1)
    return path, revision or None


def resolve(path: str | os.PathLike, revision: str | None = None, weights: bool = True, hub: bool = False) -> Path:
    """A local checkpoint directory, or the local snapshot of a hub id at ``revision`` (a commit sha, tag or branch;
    None = the hub's default branch), downloaded if allowed; ``weights=False`` fetches all but the safetensors (what
    a tokenizer needs). A snapshot's folder is named by its commit (``hub_commit``). ``hub``: the caller already
    took ``path`` for a hub id (the CLI, before creating ``--out``, which may add a local folder named like the
    hub id's organisation): no local-path guess."""
    p = Path(path).expanduser()
    if p.is_dir():
        if revision:
            raise CheckpointError(
                f"{path}: revision {revision!r} given for a local directory; a revision pins a hub id, drop it"
            )
        return p
    problem = None if hub else local_path_problem(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    patterns = ["*.json", "*.jinja", "*.txt", "*.model", "*.py", "LICENSE*", "NOTICE*", "USE_POLICY*"]
    patterns += ["*.safetensors"] if weights else []
    at = model_ref(str(path), revision)
    try:
        return Path(snapshot_download(str(path), revision=revision, allow_patterns=patterns))
    # every hub error is an OSError or ValueError, and the HTTP client's own errors pass through; the library's
    # messages span many lines
    except (OSError, ValueError, *hub_transport_errors()) as e:
        if isinstance(e, GatedRepoError):
            fix = "accept the model's terms on huggingface.co and log in (hf auth login), or set HF_TOKEN"
        elif isinstance(e, RepositoryNotFoundError):
            fix = "check the id (org/name), or log in if it is private"
        elif isinstance(e, RevisionNotFoundError):
            fix = "check the revision: a commit sha, tag or branch of that repository"
        elif isinstance(e, LocalEntryNotFoundError):
            what = "that revision is" if revision else "the model is"
            fix = f"the hub is unreachable and {what} not in the local cache (HF_HOME); download it first"
        else:
            fix = "check the id and the network"
        # an id of the org/name form may have been meant as a relative path from another working directory
        maybe_path = not hub and isinstance(e, (LocalEntryNotFoundError, RepositoryNotFoundError))
        local = f" (no directory {path} under the working directory {os.getcwd()})" if maybe_path else ""
        raise CheckpointError(
            f"{at}: cannot get the checkpoint from the Hugging Face hub ({type(e).__name__}: {first_line(e)}); {fix}, "
            f"or give a local checkpoint directory{local}"
        ) from None


def hub_commit(path: str | os.PathLike, resolved: Path) -> str | None:
    """The commit a hub id resolved to (its snapshot folder's name); None for a local directory."""
    return None if Path(path).expanduser().is_dir() else resolved.name


def weight_files(ckpt: Path) -> dict[str, Path]:
    """tensor name -> safetensors file. ``model.safetensors`` first, as transformers picks it (a directory that also
    holds an index must not be pruned from one set of weights and evaluated from the other)."""
    if (ckpt / SINGLE).is_file():
        return {name: ckpt / SINGLE for name in read_header(ckpt / SINGLE)}
    if (ckpt / INDEX).is_file():
        try:
            index = json.loads((ckpt / INDEX).read_text())
            files = {name: ckpt / fname for name, fname in index["weight_map"].items()}
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
            raise CheckpointError(f"{ckpt / INDEX}: unreadable ({e}); delete the checkpoint and rerun") from None
        # transformers' rule: by the names, not resolved (a hub snapshot's shards are symlinks into its blobs/)
        outside = sorted({f for f in index["weight_map"].values() if Path(f).anchor or ".." in Path(f).parts})
        if outside:
            raise CheckpointError(
                f"{ckpt / INDEX}: names the shard {outside[0]}, outside the checkpoint directory (transformers "
                "refuses it too); restore the checkpoint's own index"
            )
        missing = sorted({f.name for f in files.values() if not f.is_file()})
        if missing:  # e.g. an offline hub snapshot whose weights were never downloaded (only its tokenizer was)
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise CheckpointError(
                f"{ckpt}: {missing[0]}{more} named by {INDEX} missing; download the weights (a hub id: run once "
                "with network access, or hf download) or restore the file"
            )
        return files
    if any(ckpt.glob("*.bin")) or any(ckpt.glob("*.pt")):
        raise CheckpointError(f"{ckpt}: only pickled weights (*.bin); convert to safetensors, pickle is not loaded")
    raise CheckpointError(
        f"{ckpt}: no {SINGLE} or {INDEX}; download the weights (a hub id: run once with network access, or hf "
        "download) or save the model with save_pretrained (safetensors)"
    )


def read_header(file: Path) -> dict[str, dict]:
    """The safetensors JSON header: name -> {dtype, shape, data_offsets} (metadata dropped)."""
    try:
        with open(file, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        end = max((int(meta["data_offsets"][1]) for meta in header.values()), default=0)
    # RecursionError: JSON nested past the decoder's limit; OverflowError: an offset of Infinity
    except (
        OSError,
        ValueError,
        struct.error,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        RecursionError,
        OverflowError,
    ) as e:
        raise CheckpointError(
            f"{file}: not a readable safetensors file ({e}); restore it from its source (in a hub cache: delete it "
            "and rerun)"
        ) from None
    size = os.path.getsize(file)
    if size < 8 + n + end:
        raise CheckpointError(
            f"{file}: truncated ({size} of {8 + n + end} bytes); restore it from its source (in a hub cache: delete "
            "it and rerun)"
        )
    return header


def tensor_shapes(path: str | os.PathLike) -> dict[str, list[int]]:
    """name -> shape of every tensor the checkpoint's loaders see: for a sharded checkpoint, those the index names,
    each read from the shard the index places it in (transformers and ``Reader`` load by the index; a tensor stored in
    a shard but not indexed would be missing from the model, so it is an error here, before any work)."""
    ckpt = resolve(path)
    files = weight_files(ckpt)
    headers = {file: read_header(file) for file in sorted(set(files.values()))}
    shapes = {}
    for name, file in files.items():
        meta = headers[file].get(name)
        if meta is None:
            raise CheckpointError(f"{file}: has no tensor {name}, which {INDEX} places there; re-download it")
        shapes[name] = meta["shape"]
    for file, header in headers.items():
        unlisted = sorted(n for n in header if n not in files)
        if unlisted:
            more = f" and {len(unlisted) - 1} more" if len(unlisted) > 1 else ""
            raise CheckpointError(
                f"{file}: holds {unlisted[0]}{more}, which {INDEX} does not list (a loader would leave it out of "
                f"the model); restore the checkpoint's own {INDEX} or re-download the checkpoint"
            )
    return shapes


def prunable_modules_from_shapes(shapes: dict[str, list[int]]) -> list[tuple[int, str, int]]:
    """``[(layer, module, numel)]``: every 2-D ``.weight`` inside a decoder layer (for Qwen2/Qwen3/Llama exactly the
    ``nn.Linear`` set of ``models.Arch.prunable_linears``; norms are 1-D, biases are not ``.weight``)."""
    out = []
    for name, shape in shapes.items():
        m = LAYER_RE.match(name)
        if m and m[2].endswith(".weight") and len(shape) == 2:
            out.append((int(m[1]), m[2][: -len(".weight")], shape[0] * shape[1]))
    return sorted(out)


def num_layers(config: dict) -> int:
    return int(config["num_hidden_layers"])


def context_length(config: dict) -> int | None:
    """The positions a model config.json serves: ``max_position_embeddings``, times the factor of a linear, dynamic
    or YaRN RoPE scaling (YaRN from its ``original_max_position_embeddings``), as vLLM derives its ``max_model_len``
    (Qwen2.5's YaRN recipe leaves max_position_embeddings at 32768 for 131072 positions; Llama 3.1's ``llama3``
    scaling is already in it). None when the config does not say."""
    ctx = config.get("max_position_embeddings")
    if not isinstance(ctx, int) or isinstance(ctx, bool):
        return None
    scaling = config.get("rope_scaling") or config.get("rope_parameters") or {}
    kind = scaling.get("rope_type") or scaling.get("type") if isinstance(scaling, dict) else None
    factor = scaling.get("factor") if isinstance(scaling, dict) else None
    if kind in ("linear", "dynamic", "yarn") and isinstance(factor, (int, float)) and factor > 1:
        base = scaling.get("original_max_position_embeddings") if kind == "yarn" else None
        return int((base if isinstance(base, int) else ctx) * factor)
    return ctx


class Reader:
    """Tensors of a checkpoint by name, loaded lazily from the safetensors files."""

    def __init__(self, path: str | os.PathLike, revision: str | None = None, hub: bool = False):
        self.dir = resolve(path, revision, hub=hub)
        self.files = {n: f for n, f in weight_files(self.dir).items() if not IGNORED_RE.search(n)}
        self._headers: dict[Path, dict] = {}
        config = self.dir / "config.json"
        try:
            self.config = json.loads(config.read_text())
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested past the decoder's limit
            raise CheckpointError(f"{config}: unreadable ({e}); restore the checkpoint's config") from None
        n_layers = self.config.get("num_hidden_layers") if isinstance(self.config, dict) else None
        if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
            from prunetts.models import model_type_problem

            model_type = self.config.get("model_type") if isinstance(self.config, dict) else None
            if isinstance(model_type, str) and (problem := model_type_problem(model_type)):  # e.g. GPT-2's n_layer
                raise CheckpointError(f"{path}: {problem}")
            what = "is not a JSON object" if not isinstance(self.config, dict) else "has no num_hidden_layers >= 1"
            raise CheckpointError(f"{config}: {what}; restore the checkpoint's own config.json")
        stored = {int(m[1]) for n in self.files if (m := LAYER_RE.match(n))}
        # e.g. multi-token-prediction layers stored after the decoder's: they would be dropped from the output
        beyond = min((i for i in stored if i >= n_layers), default=None)
        if beyond is not None:
            raise CheckpointError(
                f"{self.dir}: tensors of layer {beyond}, beyond num_hidden_layers = {n_layers} in config.json; "
                "prunetts prunes Qwen2/Qwen3/Llama decoders only: remove those tensors or fix the config"
            )
        absent = min(set(range(n_layers)) - stored, default=None)
        if absent is not None:
            raise CheckpointError(
                f"{self.dir}: no tensors of layer {absent}, but num_hidden_layers = {n_layers} in config.json; the "
                "config does not match the weights: restore the checkpoint's own config.json or its missing weights"
            )

    def layer_names(self, layer: int) -> list[str]:
        prefix = f"model.layers.{layer}."
        return sorted(n for n in self.files if n.startswith(prefix))

    def other_names(self) -> list[str]:
        return sorted(n for n in self.files if not LAYER_RE.match(n))

    def layout(self, names: list[str]) -> list[tuple[str, str, list[int]]]:
        """``(name, dtype code, shape)`` of each of ``names`` as stored (from the files' headers): a Writer's plan."""
        out = []
        for n in names:
            meta = self._header(self.files[n]).get(n)
            if meta is None:
                raise CheckpointError(f"{self.files[n]}: has no tensor {n}, which {INDEX} places there; re-download it")
            out.append((n, meta["dtype"], meta["shape"]))
        return out

    def tensor_bytes(self, names: list[str]) -> int:
        """Bytes of ``names``' data as stored."""
        return sum(_nbytes(dtype, shape) for _, dtype, shape in self.layout(names))

    def largest_shard_bytes(self) -> int:
        """The tensor bytes of the source's largest weight file: a pruned checkpoint written in shards of at most this
        has about as many files as its source (e.g. Qwen3-8B: 5 of <= 4 GB; a single-file source stays one file)."""
        return max(
            sum(m["data_offsets"][1] - m["data_offsets"][0] for m in self._header(f).values())
            for f in set(self.files.values())
        )

    def _header(self, file: Path) -> dict:
        """``read_header(file)``, read once per file."""
        if file not in self._headers:
            self._headers[file] = read_header(file)
        return self._headers[file]

    def load(self, names: list[str]) -> dict:
        from safetensors import safe_open

        out = {}
        by_file: dict[Path, list[str]] = {}
        for n in names:
            by_file.setdefault(self.files[n], []).append(n)
        for file, group in by_file.items():
            try:
                with safe_open(str(file), framework="pt") as f:
                    for n in group:
                        out[n] = f.get_tensor(n)
            except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt files
                raise CheckpointError(
                    f"{file}: cannot read tensors ({e}); restore it from its source (in a hub cache: delete it and "
                    "rerun)"
                ) from None
        return out


# torch dtype name -> (safetensors dtype code, bytes per element)
_DTYPES = {
    "float64": ("F64", 8),
    "float32": ("F32", 4),
    "float16": ("F16", 2),
    "bfloat16": ("BF16", 2),
    "float8_e4m3fn": ("F8_E4M3", 1),
    "float8_e5m2": ("F8_E5M2", 1),
    "int64": ("I64", 8),
    "int32": ("I32", 4),
    "int16": ("I16", 2),
    "int8": ("I8", 1),
    "uint64": ("U64", 8),
    "uint32": ("U32", 4),
    "uint16": ("U16", 2),
    "uint8": ("U8", 1),
    "bool": ("BOOL", 1),
}
SAFETENSORS_DTYPES = {name: code for name, (code, _) in _DTYPES.items()}
DTYPE_BYTES = dict(_DTYPES.values())


def byte_size(n: int) -> str:
    """``n`` bytes for a message: '15.26 GB', '3.4 MB', '812 kB' (decimal units, as ``df -H``)."""
    for unit, scale, digits in (("GB", 1e9, 2), ("MB", 1e6, 1)):
        if n >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{math.ceil(n / 1e3)} kB"


def free_space_problem(out_dir: str | os.PathLike, needed: int) -> str | None:
    """Why a checkpoint of ``needed`` tensor bytes cannot be written to ``out_dir`` (created or not) for lack of
    disk space, or None. The paper's grid writes 33 pruned checkpoints of 15-16 GB: a full disk should stop a prune
    before its calibration pass, not at its last shard."""
    probe = Path(out_dir).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:  # e.g. a path through a file: the write itself will name the problem
        return None
    if free >= needed:
        return None
    return (
        f"{out_dir}: not enough disk space for the checkpoint: its tensors take {byte_size(needed)} and "
        f"{byte_size(free)} are free there; free some space or write it elsewhere"
    )


def _nbytes(dtype: str, shape: list[int]) -> int:
    """Bytes of a tensor of safetensors ``dtype`` code and ``shape``."""
    if dtype not in DTYPE_BYTES:  # e.g. F8_E8M0 scales or complex tensors of a checkpoint this writer cannot copy
        raise CheckpointError(
            f"a tensor of safetensors dtype {dtype}: not one prunetts writes ({', '.join(DTYPE_BYTES)}); "
            "convert the checkpoint to bf16 or fp16 first"
        )
    return math.prod(shape) * DTYPE_BYTES[dtype]


def safetensors_header(entries: dict[str, tuple[str, list[int]]], metadata: dict | None = None):
    """The first bytes of a safetensors file holding ``entries`` (name -> (dtype code, shape)), and each tensor's
    byte offset in the file. The format of huggingface/safetensors: little-endian u64 header length, the JSON header
    padded with spaces to 8 bytes, then the raw bytes in the header's (sorted) order."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name in sorted(entries):
        dtype, shape = entries[name]
        nbytes = _nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    start = 8 + len(raw)
    offsets = {name: start + header[name]["data_offsets"][0] for name in entries}
    return struct.pack("<Q", len(raw)) + raw, offsets


def _entry(name: str, t) -> tuple[str, list[int]]:
    dtype = SAFETENSORS_DTYPES.get(str(t.dtype).removeprefix("torch."))
    if dtype is None or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError(f"{name}: cannot write a {t.dtype} tensor on {t.device} (contiguous CPU tensors only)")
    return dtype, list(t.shape)


def _raw(t):
    """The tensor's memory as bytes, without a copy."""
    import torch

    return memoryview(t.detach().reshape(-1).view(torch.uint8).numpy())


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write contiguous CPU tensors as one safetensors file. Each tensor's memory is written as it is:
    ``safetensors.torch.save_file`` first copies every tensor into a bytes object, which doubles the memory."""
    head, _ = safetensors_header({name: _entry(name, t) for name, t in tensors.items()}, metadata)
    with open(path, "wb") as f:
        f.write(head)
        for name in sorted(tensors):
            if tensors[name].numel():
                f.write(_raw(tensors[name]))


class Writer:
    """Writes a checkpoint's tensors, given one at a time, into safetensors shards of at most ``max_shard_bytes``.

    The shards are planned up front from ``layout`` (name, dtype code, shape of every tensor, in the order they will be
    added: a pruned checkpoint has the source's), so each shard's header is known before its first tensor arrives and
    every tensor is written at its final offset as soon as it is added, by a background thread while the caller
    computes the next layer. The writer holds only tensors not yet written, at most ``max_pending_bytes`` (and any
    single larger tensor); ``add`` waits for the thread beyond that. The files equal what writing each shard whole
    would give, byte for byte. ``finish`` checks that every planned tensor was written, then names the shards and
    writes the index. Use it as a context manager: when the caller fails, ``__exit__`` drops the queued writes and
    waits for the one in progress, so no file appears after the error (a CLI cleaning up ``--out``). A failed write
    fails every later ``add`` and ``finish``."""

    def __init__(
        self,
        out_dir: str | os.PathLike,
        layout: list[tuple[str, str, list[int]]],
        max_shard_bytes: int = 512 * 1024**2,
        max_pending_bytes: int = 512 * 1024**2,
    ):
        from concurrent.futures import ThreadPoolExecutor

        self.dir = Path(out_dir)
        groups: list[dict[str, tuple[str, list[int]]]] = []
        size = self.total = self.numel = 0
        for name, dtype, shape in layout:  # the rule of a buffer flushed before the tensor that would overflow it
            nbytes = _nbytes(dtype, shape)
            if not groups or size + nbytes > max_shard_bytes:
                groups.append({})
                size = 0
            groups[-1][name] = (dtype, list(shape))
            size += nbytes
            self.total += nbytes
            self.numel += math.prod(shape)
        if self.dir.is_dir() and any(self.dir.iterdir()):  # before the caller computes any layer
            held = sorted(p.name for p in self.dir.iterdir())
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            raise CheckpointError(
                f"{self.dir}: the output directory is not empty (holds {', '.join(held[:3])}{more}); a checkpoint "
                "written over another would mix their shards and index: choose a new directory or empty this one"
            )
        problem = free_space_problem(self.dir, self.total)
        if problem:
            raise CheckpointError(problem)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shards = [(self.dir / f".shard-{i:05d}.safetensors", sorted(g)) for i, g in enumerate(groups)]
        self.plan: dict[str, tuple[int, int, tuple[str, list[int]]]] = {}
        self.heads = []
        for i, group in enumerate(groups):
            head, offsets = safetensors_header(group, {"format": "pt"})
            self.heads.append(head)
            self.plan.update({name: (i, offsets[name], group[name]) for name in group})
        self.left = [len(names) for _, names in self.shards]  # tensors each shard still waits for
        self.written: set[str] = set()
        self.max_pending = max_pending_bytes
        self.pending: deque = deque()  # (future, nbytes) in submission order
        self.pending_bytes = 0
        self.files: dict[int, object] = {}  # open shard files, used by the writer thread only
        self.failed: BaseException | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="prunetts-writer")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is not None:
            self._stop()

    def _check(self) -> None:
        if self.failed is not None:
            raise RuntimeError(f"an earlier checkpoint write failed ({self.failed!r}); the shards are incomplete")

    def add(self, tensors: dict) -> None:
        self._check()
        for name, t in tensors.items():
            t = t.detach().contiguous().cpu()
            planned = self.plan.get(name)
            if planned is None or name in self.written:
                raise ValueError(f"{name}: {'added twice' if planned else 'not in the planned layout'}")
            if _entry(name, t) != planned[2]:
                raise ValueError(f"{name}: {_entry(name, t)} differs from the planned {planned[2]}")
            self.written.add(name)
            nbytes = t.numel() * t.element_size()
            while self.pending and self.pending_bytes + nbytes > self.max_pending:
                self._wait_oldest()
            self.pending.append((self.pool.submit(self._write, name, t), nbytes))
            self.pending_bytes += nbytes

    def wait(self) -> None:
        """Wait until every tensor added so far is written (and so freed by the writer)."""
        while self.pending:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, nbytes = self.pending.popleft()
        self.pending_bytes -= nbytes
        try:
            future.result()  # re-raises the thread's error, if any
        except BaseException as e:
            self.failed = e
            self._raise_if_disk_full(e)
            raise

    def _raise_if_disk_full(self, e: BaseException) -> None:
        """A full disk or quota (e.g. other jobs writing theirs) as one line."""
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckpointError(
                f"{self.dir}: the disk filled up while writing the checkpoint ({e.strerror}; "
                f"{byte_size(self.total)} in all); free some space and run it again"
            ) from None

    def _write(self, name: str, t) -> None:
        shard, offset, _ = self.plan[name]
        f = self.files.get(shard)
        if f is None:
            f = self.files[shard] = open(self.shards[shard][0], "wb")  # noqa: SIM115 - closed with its last tensor
            f.write(self.heads[shard])
        if t.numel():
            f.seek(offset)
            f.write(_raw(t))
        self.left[shard] -= 1
        if not self.left[shard]:
            self.files.pop(shard).close()

    def _drain(self) -> None:
        try:
            self.wait()
        finally:
            self._stop()

    def _stop(self) -> None:
        """Drop the queued writes, wait for the one in progress, close the shard files (shards some planned tensor
        never reached stay unnamed ``.shard-*`` files)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()
        self.pending_bytes = 0
        for f in self.files.values():
            # a shard left open failed or never got its last tensor: a close that flushes into a full disk again
            # (ENOSPC) must not replace the error that stopped the writer with a traceback
            with contextlib.suppress(OSError):
                f.close()
        self.files.clear()

    def finish(self, config: dict, side_files_from: Path | None = None, before_config=None) -> None:
        """Rename the shards into place, copy the side files, call ``before_config()`` (a caller's own files), and
        write config.json last."""
        self._check()
        self._drain()
        missing = [name for name in self.plan if name not in self.written]
        if missing:
            raise ValueError(f"{len(missing)} planned tensors were never added, e.g. {missing[0]}")
        try:
            if len(self.shards) == 1:
                os.replace(self.shards[0][0], self.dir / SINGLE)
            else:
                weight_map = {}
                for i, (tmp, names) in enumerate(self.shards):
                    fname = f"model-{i + 1:05d}-of-{len(self.shards):05d}.safetensors"
                    os.replace(tmp, self.dir / fname)
                    weight_map.update(dict.fromkeys(names, fname))
                # as save_pretrained writes it (total_parameters: what the checkpoint stores; a tied head is not)
                index = {
                    "metadata": {"total_parameters": self.numel, "total_size": self.total},
                    "weight_map": weight_map,
                }
                (self.dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
            if side_files_from is not None:
                # plus the checkpoint's own code (auto_map: a tokenizer or config class), needed to reload it
                for src in [side_files_from / n for n in SIDE_FILES] + sorted(side_files_from.glob("*.py")):
                    if src.is_file():
                        shutil.copyfile(src, self.dir / src.name)
                templates = sorted((side_files_from / CHAT_TEMPLATE_DIR).glob("*.jinja"))
                if templates:
                    (self.dir / CHAT_TEMPLATE_DIR).mkdir(exist_ok=True)
                for src in templates:
                    shutil.copyfile(src, self.dir / CHAT_TEMPLATE_DIR / src.name)
            if before_config is not None:
                before_config()
            # config.json last, atomically: a directory killed before this point does not load as a checkpoint (without
            # it the tokenizer or chat template could be missing from one that looks complete)
            tmp = self.dir / "config.json.tmp"
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.dir / "config.json")
        except OSError as e:  # the index, side files, the caller's files, config.json
            self._raise_if_disk_full(e)
            raise


def write_one_by_one(reader: Reader, writer: Writer, names: list[str]) -> None:
    """Copy ``names`` unchanged from ``reader`` to ``writer``, each written before the next is read: at Qwen3-8B's
    size the embedding table and ``lm_head`` are 1.2 GB each, which the writer would otherwise hold together (and
    while the prune reads the embedding table again for the calibration windows)."""
    for name in names:
        writer.add(reader.load([name]))
        writer.wait()
