"""Train the demo model: a tiny ``Qwen3ForCausalLM`` on the demo task (see ``task.py``), saved as an HF checkpoint.

Run once; the result is committed under ``resources/demo-qwen3`` (README: seed, steps, wall time, accuracy):

    python -m prunetts.demo.train --out resources/demo-qwen3 --steps 800 --lr 3e-3 --seed 0 --threads 2

Training mixes complete traces (the model stops thinking by itself, then answers ``The answer is $\\boxed{a}$``) with
traces cut at a random point and closed exactly as s1 budget forcing closes them (``\\n<|im_start|>answer\\nFinal
Answer:``), answered with the accumulator of the last line reached. So the model knows both delimiters and, when cut
off, answers from its partial state, like a real reasoning model guessing under a budget. The forced delimiter tokens
carry no loss: the model never learns to stop early on its own.

Training is deterministic for a given seed, thread count and torch / transformers build (``training.json`` records
them) on a given CPU; another thread count (measured) or, likely, a CPU with other vector units sums float32 in
another order and trains a similar model, not the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from importlib.metadata import version
from pathlib import Path

import torch

from prunetts.demo import task
from prunetts.demo.tokenizer import build_tokenizer

MODEL_KWARGS = dict(
    hidden_size=96,
    intermediate_size=256,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    max_position_embeddings=512,
    rope_theta=10000.0,
    tie_word_embeddings=True,
)
TRUNCATED_FRACTION = 0.25


def build_model(tokenizer, seed: int):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_KWARGS,
    )
    return Qwen3ForCausalLM(config)


def prompt_text(tokenizer, p: task.Problem) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": p.question}], tokenize=False, add_generation_prompt=True
    )


def example_segments(tokenizer, p: task.Problem, rng: random.Random) -> list[tuple[str, bool]]:
    """(text, trained) segments of one training sequence."""
    thinking = task.trace(p)
    head = [(prompt_text(tokenizer, p) + task.THINK_START, False)]
    if rng.random() >= TRUNCATED_FRACTION:
        return head + [
            (thinking + "<|im_start|>", True),
            ("answer", False),
            ("\n" + task.answer_text(p.answer) + "<|im_end|>", True),
        ]
    cut = rng.randint(1, len(thinking) - 1)
    partial = thinking[:cut]
    guess = task.partial_answer(partial)
    closing = ("" if partial.endswith("\n") else "\n") + task.THINK_END + "\n" + task.FINAL_ANSWER
    return head + [
        (partial, True),
        (closing, False),
        (f" $\\boxed{{{guess if guess is not None else 0}}}$<|im_end|>", True),
    ]


def encode_batch(tokenizer, problems, rng: random.Random):
    seqs, masks = [], []
    for p in problems:
        ids, train = [], []
        for text, trained in example_segments(tokenizer, p, rng):
            seg = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += seg
            train += [trained] * len(seg)
        seqs.append(ids)
        masks.append(train)
    n = max(map(len, seqs))
    input_ids = torch.full((len(seqs), n), tokenizer.pad_token_id)
    labels = torch.full((len(seqs), n), -100)
    attn = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, (ids, train) in enumerate(zip(seqs, masks, strict=True)):
        t = torch.tensor(ids)
        input_ids[i, : len(ids)] = t
        attn[i, : len(ids)] = 1
        labels[i, : len(ids)] = torch.where(torch.tensor(train), t, torch.tensor(-100))
    return input_ids, attn, labels


def train(
    out: Path,
    steps: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 2e-3,
    log_every: int = 50,
    threads: int | None = None,
) -> list[float]:
    """Train and save; returns the logged training losses (one per ``log_every`` steps)."""
    if threads:
        torch.set_num_threads(threads)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, min(200, steps // 10))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = random.Random(seed)
    pool = task.sample_problems("train", 20000, seed=seed, unique=False)
    losses, running, t0 = [], 0.0, time.time()
    for step in range(steps):
        batch = [pool[rng.randrange(len(pool))] for _ in range(batch_size)]
        input_ids, attn, labels = encode_batch(tokenizer, batch, rng)
        loss = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % log_every == 0:
            losses.append(running / log_every)
            print(f"step {step + 1}/{steps} loss {losses[-1]:.4f} ({time.time() - t0:.0f}s)", flush=True)
            running = 0.0
    wall = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = dict(
        seed=seed,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        # the thread count and the libraries fix the float32 reduction order: with them the run repeats bit for bit
        threads=torch.get_num_threads(),
        wall_s=round(wall, 1),
        final_loss=losses[-1] if losses else None,
        torch=torch.__version__,
        transformers=version("transformers"),
        tokenizers=version("tokenizers"),
        n_params=sum(p.numel() for p in model.parameters()),
    )
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    return losses


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    train(a.out, a.steps, a.seed, a.batch_size, a.lr, threads=a.threads)


if __name__ == "__main__":
    main()
