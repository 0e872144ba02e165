"""Crash-safe progress of one generation job: a JSON Lines side file next to the output Parquet.

Line 1 is a fingerprint of everything the samples depend on (checkpoint files, benchmark, seed, budgets, sampling,
delimiters, dtype, code version); every further line is one finished problem's ``Outcome`` (thinking ids, answer ids
per cut, timings), flushed and fsynced as soon as the problem's last answer is done. A rerun whose fingerprint
matches skips those problems; because every sequence samples from its own seeded stream, the remaining problems come
out exactly as they would have in the uninterrupted run, so the final Parquet is the same (timings aside). A torn
last line (a kill mid-write) is ignored, as is any other line that does not decode (its problem runs again). A side
file with another fingerprint is set aside as ``*.stale`` and the job starts over.

One job at a time writes a journal: ``<journal>.lock`` carries a POSIX (fcntl) lock for the job's lifetime. When
Snakemake is killed without clean-up on a login node, its Slurm jobs run on; a rerun (after ``--unlock``) submits
the same generation jobs again, and each new job now waits for the old one instead of generating the same samples
on a second GPU, then finds every problem in the journal. The kernel releases the lock when the holder ends, even
on SIGKILL or a lost node's lease, so no stale lock outlives a job. On a file system without POSIX locks the job
warns and runs unlocked, as before.

The side file is not a Snakemake output, so Snakemake does not delete it when the job fails, and it stays after the
Parquet is written: when a job of a group fails, Snakemake deletes the outputs of every job in the group (the Slurm
profile groups generate with grade, so a failed grading would delete the finished generations), and the rerun then
rewrites the Parquet from the journal without loading the model.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
from pathlib import Path

from prunetts.generation.budget_forcing import Cut
from prunetts.generation.sweep import Outcome

log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX: the directory entry is the directory's data)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a platform or file system that cannot open directories: the rename is as durable as it gets
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_fingerprint(model_path: str, code: bool = False) -> dict:
    """Names, sizes and modification times of a local checkpoint's files (a rewritten checkpoint restarts the job),
    its .py files too for ``code`` (trust_remote_code: they are the model then); a hub id is taken as is."""
    p = Path(model_path)
    if not p.is_dir():
        return {"model": model_path}
    suffixes = {".json", ".safetensors", ".bin", ".model"} | ({".py"} if code else set())
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in suffixes)
    return {"model": str(p.resolve()), "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _encode(problem_id: str, o: Outcome) -> str:
    return json.dumps(
        {
            "problem_id": problem_id,
            "thinking": o.thinking,
            "stopped": o.stopped,
            "wait_at": o.wait_at,
            "think_seconds": o.think_seconds,
            "answers": [
                [c.n_tokens, c.hit_budget, ids, o.answer_seconds.get(c, 0.0), o.answer_stopped[c]]
                for c, ids in o.answers.items()
            ],
        },
        separators=(",", ":"),
    )


def _decode(line: str) -> tuple[str, Outcome]:
    d = json.loads(line)
    o = Outcome(d["thinking"], d["stopped"], d["wait_at"], think_seconds=d["think_seconds"])
    for n, hit, ids, secs, stopped in d["answers"]:
        o.answers[Cut(n, hit)] = ids
        o.answer_seconds[Cut(n, hit)] = secs
        o.answer_stopped[Cut(n, hit)] = bool(stopped)
    return d["problem_id"], o


def _holder() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    return f"host {socket.gethostname()}, pid {os.getpid()}" + (f", Slurm job {job}" if job else "")


def acquire(lock_path: Path):
    """The open lock file, exclusively locked (waiting for another holder); None where locks are not supported."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock_path, "a+")  # noqa: SIM115 (held for the job's lifetime)
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            log.warning("%s: no lock (%s); a second job on this journal would generate the same samples", lock_path, e)
            f.close()
            return None
        f.seek(0)
        holder = f.read().strip() or "another process"
        log.warning("%s: another job (%s) is writing this journal; waiting for it to end", lock_path, holder)
        fcntl.lockf(f, fcntl.LOCK_EX)
        log.info("%s: the other job ended; going on from its journal", lock_path)
    f.seek(0)
    f.truncate()
    f.write(_holder() + "\n")
    f.flush()
    return f


class Journal:
    def __init__(self, path: str | os.PathLike, fingerprint: dict):
        self.path = Path(path)
        self.header = json.dumps({"fingerprint": fingerprint}, sort_keys=True, default=str)
        self.outcomes: dict[str, Outcome] = {}
        self._lock = acquire(self.path.with_name(self.path.name + ".lock"))  # before reading: the holder may append
        if self.path.exists():
            self._load()
        if not self.outcomes:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.header + "\n")
        self._f = open(self.path, "a")  # noqa: SIM115 (open for the job's lifetime)

    def _load(self) -> None:
        lines = self.path.read_bytes().split(b"\n")
        if lines[0] != self.header.encode():
            stale = self.path.with_name(self.path.name + ".stale")
            log.warning("%s: was written for other inputs; moved to %s, starting over", self.path, stale)
            self.path.replace(stale)
            return
        for number, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            try:  # every line is ASCII (json.dumps): other bytes (a disk error) are a corrupt line, not a crash
                pid, o = _decode(line.decode("ascii"))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):  # UnicodeDecodeError is a ValueError
                log.warning(
                    "%s: ignoring line %d, torn (the job was killed while writing it) or corrupt; its problem is "
                    "generated again",
                    self.path,
                    number,
                )
                continue
            self.outcomes[pid] = o
        # rewrite without the torn line so later appends start on a fresh line
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write("\n".join([self.header, *(_encode(p, o) for p, o in self.outcomes.items())]) + "\n")
            f.flush()
            # on disk before the rename, and the rename itself after it: a power cut must leave the old journal or
            # the new one, never a renamed empty file, whose missing header would start the job over
            os.fsync(f.fileno())
        tmp.replace(self.path)
        _fsync_dir(self.path.parent)
        log.info("%s: %d finished problems from an earlier run", self.path, len(self.outcomes))

    def record(self, problem_id: str, outcome: Outcome) -> None:
        self._f.write(_encode(problem_id, outcome) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.outcomes[problem_id] = outcome

    def close(self) -> None:
        self._f.close()
        if self._lock is not None:
            self._lock.close()  # releases the lock
