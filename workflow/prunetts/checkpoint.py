"""Streaming access to HF safetensors checkpoints, one decoder layer at a time.

Pruning an 8B model must not hold the dense and the pruned model together: the reader loads the tensors of one layer
(``model.layers.{i}.*``) on demand, the writer appends processed tensors to output shards and writes the index at the
end. ``tensor_shapes`` reads only the JSON headers (no torch import), which is all the allocation step needs.

Only safetensors are read (pickled ``.bin`` checkpoints are refused); hub ids are resolved through the local HF cache
/ ``snapshot_download``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
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


class CheckpointError(ValueError):
    pass


def looks_local(path: str) -> bool:
    """Whether a missing ``path`` was meant as a local path rather than a hub id (``name`` or ``org/name``): anything
    absolute, relative to '.'/'~', deeper, or whose first part is an existing local directory (``models/lama``, a
    typo). The config check uses it for models and data sources alike."""
    if path.startswith(("/", ".", "~")) or path.count("/") > 1 or "\\" in path:
        return True
    head = path.split("/", 1)[0]
    return "/" in path and Path(head).is_dir()


def local_path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a model: a file, or a local directory that does not exist; None for a directory or a
    hub id."""
    p = Path(path).expanduser()
    if p.is_dir():
        return None
    if p.exists():
        return "a file, not a checkpoint directory"
    if looks_local(str(path)):
        return "no such directory; give an HF checkpoint directory or a hub id (org/name)"
    return None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (hub and datasets errors span many), else its type's name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def is_commit(revision: str | None) -> bool:
    """A full 40-character commit sha: the only revision that pins (a branch or tag moves; a short sha resolves only
    online)."""
    return bool(revision) and re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def model_ref(path: str, revision: str | None) -> str:
    """One string for a model (or dataset): its path or hub id, ``hub-id@revision`` when pinned (hub ids cannot contain
    '@')."""
    return f"{path}@{revision}" if revision else str(path)


def split_ref(ref: str | os.PathLike) -> tuple[str, str | None]:
    """``model_ref``'s inverse: ``(path or hub id, revision or None)``; an existing path is never split."""
    ref = str(ref)
    if "@" not in ref or Path(ref).expanduser().exists():
        return ref, None
    path, revision = ref.rsplit("@", 1)
    return path, revision or None


def resolve(path: str | os.PathLike, revision: str | None = None, weights: bool = True) -> Path:
    """A local checkpoint directory, or the local snapshot of a hub id at ``revision`` (a commit sha, tag or branch;
    None = the hub's default branch), downloaded if allowed; ``weights=False`` fetches all but the safetensors (what
    a tokenizer needs). A snapshot's folder is named by its commit (``hub_commit``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        if revision:
            raise CheckpointError(
                f"{path}: revision {revision!r} given for a local directory; a revision pins a hub id, drop it"
            )
        return p
    problem = local_path_problem(path)
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
    except (OSError, ValueError) as e:  # every hub error is one of these; the library's messages span many lines
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
        raise CheckpointError(
            f"{at}: cannot get the checkpoint from the Hugging Face hub ({type(e).__name__}: {first_line(e)}); {fix}, "
            "or give a local checkpoint directory"
        ) from None


def hub_commit(path: str | os.PathLike, resolved: Path) -> str | None:
    """The commit a hub id resolved to (its snapshot folder's name); None for a local directory."""
    return None if Path(path).expanduser().is_dir() else resolved.name


def weight_files(ckpt: Path) -> dict[str, Path]:
    """tensor name -> safetensors file."""
    if (ckpt / INDEX).is_file():
        try:
            index = json.loads((ckpt / INDEX).read_text())
            return {name: ckpt / fname for name, fname in index["weight_map"].items()}
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
            raise CheckpointError(f"{ckpt / INDEX}: unreadable ({e}); delete the checkpoint and rerun") from None
    if (ckpt / SINGLE).is_file():
        return {name: ckpt / SINGLE for name in read_header(ckpt / SINGLE)}
    if any(ckpt.glob("*.bin")) or any(ckpt.glob("*.pt")):
        raise CheckpointError(f"{ckpt}: only pickled weights (*.bin); convert to safetensors, pickle is not loaded")
    raise CheckpointError(f"{ckpt}: no {SINGLE} or {INDEX}")


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
    except (OSError, ValueError, struct.error, TypeError, KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{file}: not a readable safetensors file ({e}); delete it and rerun") from None
    size = os.path.getsize(file)
    if size < 8 + n + end:
        raise CheckpointError(f"{file}: truncated ({size} of {8 + n + end} bytes); delete it and rerun")
    return header


def tensor_shapes(path: str | os.PathLike) -> dict[str, list[int]]:
    ckpt = resolve(path)
    shapes = {}
    for file in sorted(set(weight_files(ckpt).values())):
        shapes.update({name: meta["shape"] for name, meta in read_header(file).items()})
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


class Reader:
    """Tensors of a checkpoint by name, loaded lazily from the safetensors files."""

    def __init__(self, path: str | os.PathLike, revision: str | None = None):
        self.dir = resolve(path, revision)
        self.files = weight_files(self.dir)
        try:
            self.config = json.loads((self.dir / "config.json").read_text())
        except (OSError, ValueError) as e:
            config = self.dir / "config.json"
            raise CheckpointError(f"{config}: unreadable ({e}); restore the checkpoint's config") from None

    def layer_names(self, layer: int) -> list[str]:
        prefix = f"model.layers.{layer}."
        return sorted(n for n in self.files if n.startswith(prefix))

    def other_names(self) -> list[str]:
        return sorted(n for n in self.files if not LAYER_RE.match(n))

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
                raise CheckpointError(f"{file}: cannot read tensors ({e}); delete it and rerun") from None
        return out


SAFETENSORS_DTYPES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
}


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write contiguous CPU tensors as one safetensors file (the format of huggingface/safetensors: little-endian u64
    header length, JSON header padded with spaces to 8 bytes, then the raw bytes in header order). Each tensor's
    memory is written as it is: ``safetensors.torch.save_file`` first copies every tensor into a bytes object, which
    doubles the memory of a 512 MiB shard while it is written (the write itself takes the same time)."""
    import torch

    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    names = sorted(tensors)
    offset = 0
    for name in names:
        t = tensors[name]
        dtype = SAFETENSORS_DTYPES.get(str(t.dtype).removeprefix("torch."))
        if dtype is None or t.device.type != "cpu" or not t.is_contiguous():
            raise ValueError(f"{name}: cannot write a {t.dtype} tensor on {t.device} (contiguous CPU tensors only)")
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in names:
            t = tensors[name]
            if t.numel():
                f.write(memoryview(t.detach().reshape(-1).view(torch.uint8).numpy()))


class Writer:
    """Appends tensors to shards of at most ``max_shard_bytes`` (512 MiB: the pending shard is all the writer holds
    in memory); ``finish`` names the shards and writes the index."""

    def __init__(self, out_dir: str | os.PathLike, max_shard_bytes: int = 512 * 1024**2):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max = max_shard_bytes
        self.pending: dict = {}
        self.pending_bytes = 0
        self.shards: list[tuple[Path, list[str]]] = []
        self.total = 0

    def add(self, tensors: dict) -> None:
        for name, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            if self.pending and self.pending_bytes + nbytes > self.max:
                self._flush()
            self.pending[name] = t.detach().contiguous().cpu()
            self.pending_bytes += nbytes
            self.total += nbytes

    def _flush(self) -> None:
        tmp = self.dir / f".shard-{len(self.shards):05d}.safetensors"
        write_safetensors(tmp, self.pending, metadata={"format": "pt"})
        self.shards.append((tmp, sorted(self.pending)))
        self.pending, self.pending_bytes = {}, 0

    def finish(self, config: dict, side_files_from: Path | None = None) -> None:
        if self.pending:
            self._flush()
        if len(self.shards) == 1:
            os.replace(self.shards[0][0], self.dir / SINGLE)
        else:
            weight_map = {}
            for i, (tmp, names) in enumerate(self.shards):
                fname = f"model-{i + 1:05d}-of-{len(self.shards):05d}.safetensors"
                os.replace(tmp, self.dir / fname)
                weight_map.update(dict.fromkeys(names, fname))
            index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
            (self.dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (self.dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if side_files_from is not None:
            # plus the checkpoint's own code (auto_map: a tokenizer or config class), needed to reload it
            for src in [side_files_from / n for n in SIDE_FILES] + sorted(side_files_from.glob("*.py")):
                if src.is_file():
                    shutil.copyfile(src, self.dir / src.name)
