"""Times the end of the DAG (rules aggregate, plot_accuracy, plot_diff, plot_thinking) on synthetic grades of the demo
grid (config/config.yaml) and of the paper's grid (config/paper.yaml: 17 variants of s1.1-7B and 18 of Qwen3-8B x 4
benchmarks x 3 seeds x 5 budgets, 403,200 traces), side by side in one run.

    python bench/aggregate.py [--fraction 1.0] [--keep DIR]

The grades have the real schema and plausible content: accuracy falls with sparsity and rises with the budget (one
draw per problem and seed, so a trace right at one budget stays right at a larger one), problems differ in difficulty,
wrong answers repeat across seeds (maj@k ties), some traces abstain (no answer, more often at the budget), a few are
unparsable or timed out, thinking tokens are cut at the budget. Every job runs in a fresh Python process, as Snakemake
runs it, and reports its wall time (from the call of its ``prunetts.jobs`` function: the pandas / matplotlib imports it
makes included, the interpreter start not), its peak RSS and the Python warnings it raised; the plots are timed on one
figure, the largest benchmark's (the rules make one per model and benchmark). ``--fraction`` scales every benchmark's
problem count (0.05 for a quick look). Checks: one stats row per cell, Holm families of (variants - 1) x budgets tests,
one summary table per (model, benchmark), every figure written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from prunetts import artifacts  # noqa: E402
from prunetts.config import parse_variant, variants  # noqa: E402

# problems and kind of each benchmark, and the logit of a mid-difficulty problem for dense at the largest budget
PAPER_BENCHES = {"math500": (500, "math", 2.2), "aime24": (30, "int", -0.2), "amc23": (40, "int", 1.0)}
PAPER_BENCHES["gpqa_diamond"] = (198, "choice", 0.4)
PENALTY = {"magnitude": 6.0, "wanda": 3.0, "shortgpt": 9.0}  # logit lost per unit of sparsity
MATH_GOLDS = ("\\frac{3}{4}", "2\\sqrt{3}", "\\pi", "(2,-1)", "x^2+1", "-\\frac{1}{2}")

CHILD = """
import json, resource, sys, time, warnings
sys.path.insert(0, {workflow!r})
from prunetts import jobs
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    getattr(jobs, args.pop("job"))(*args.pop("args"), **args)
wall = time.perf_counter() - t0
print(json.dumps(dict(wall=wall, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      warnings=[str(w.message)[:200] for w in caught])))
"""


def grid(config: str, fraction: float) -> dict:
    cfg = yaml.safe_load((REPO / "config" / config).read_text())
    if config == "paper.yaml":
        benches = PAPER_BENCHES
    else:
        benches = {name: (opts.get("limit") or 80, "int", 1.5) for name, opts in cfg["benchmarks"].items()}
    return dict(
        models=list(cfg["models"]),
        variants={model: variants(cfg, model) for model in cfg["models"]},  # models differ in ShortGPT layer counts
        benches={b: (max(4, round(n * fraction)), kind, base) for b, (n, kind, base) in benches.items()},
        seeds=cfg["generation"]["seeds"],
        budgets=cfg["generation"]["budgets"],
    )


def _golds(kind: str, n: int, rng) -> list[str]:
    if kind == "choice":
        return ["ABCD"[i] for i in rng.integers(0, 4, n)]
    ints = [str(x) for x in rng.integers(0, 1000, n)]
    if kind == "int":
        return ints
    return [g if rng.random() < 0.6 else f"{MATH_GOLDS[i % len(MATH_GOLDS)]}+{i}" for i, g in enumerate(ints)]


def _distractors(kind: str, gold: str) -> list[str]:
    """The few wrong answers of a problem, shared by every variant and seed (so wrong answers agree)."""
    if kind == "choice":
        return [c for c in "ABCD" if c != gold]
    if gold.isdigit():
        g = int(gold)
        return [str(g + 1), str(max(0, g - 1)), str(2 * g + 1), "7"]
    return [gold + "+1", "2" + gold, "0", "\\frac{1}{2}"]


def write_grades(g: dict, out: Path, seed: int = 0) -> list[str]:
    """One grades artifact per (model, variant, bench, seed), as the workflow lays them out; returns the paths."""
    rng = np.random.default_rng(seed)
    budgets = np.array(g["budgets"])
    paths = []
    for mi, model in enumerate(g["models"]):
        for bench, (n, kind, base) in g["benches"].items():
            pids = [f"{bench}/{i:04d}" for i in range(n)]
            gold = np.array(_golds(kind, n, rng), dtype=object)
            wrong = np.array([_distractors(kind, x) for x in gold], dtype=object)
            difficulty = rng.normal(0, 1.5, n)
            for variant in g["variants"][model]:
                v = parse_variant(variant)
                penalty = 0.0 if v.is_dense else v.sparsity * PENALTY.get(v.method, 5.0)
                for s in g["seeds"]:
                    u, other, pick = rng.random(n), rng.random(n), rng.integers(0, 1 << 20, n)
                    natural = np.exp(rng.normal(np.log(0.4 * budgets[-1]) + 0.3 * difficulty + 0.3 * penalty, 0.8))
                    step = np.linspace(-1.2, 0, len(budgets))  # logit gained towards the largest budget
                    logit = base + 0.3 * mi - penalty - difficulty[None, :] + step[:, None]  # (budgets, problems)
                    correct = u[None, :] < 1 / (1 + np.exp(-logit))
                    tokens = np.minimum(natural[None, :], budgets[:, None]).astype(np.int32)
                    hit = natural[None, :] >= budgets[:, None]
                    abstain = ~correct & (other[None, :] < np.where(hit, 0.25, 0.05))
                    unparsable = ~correct & ~abstain & (other[None, :] > 0.99)
                    timeout = ~correct & ~abstain & ~unparsable & (other[None, :] > 0.985) & (kind == "math")
                    # a wrong answer per trace, sometimes another one at a larger budget
                    which = (pick[None, :] + np.arange(len(budgets))[:, None] * (pick % 3 == 0)) % wrong.shape[1]
                    answer = np.where(correct | timeout, gold[None, :], wrong[np.arange(n)[None, :], which])
                    answer = np.where(correct & (pick % 5 == 0) & (kind == "math"), answer + ".", answer)  # "104."
                    answer = np.where(unparsable, "C or D" if kind == "choice" else "x" * 300, answer)
                    answer = np.where(abstain, None, answer)
                    verdict = np.select(
                        [correct, abstain, unparsable, timeout],
                        ["correct", "no_answer", "unparsable", "timeout"],
                        default="wrong",
                    )
                    nb = len(budgets)
                    table = pa.table(
                        dict(
                            model=[model] * (nb * n),
                            variant=[variant] * (nb * n),
                            bench=[bench] * (nb * n),
                            seed=[s] * (nb * n),
                            budget=np.repeat(budgets, n),
                            impl_version=[0] * (nb * n),
                            problem_id=pids * nb,
                            thinking_tokens=tokens.ravel(),
                            hit_budget=hit.ravel(),
                            answer_stopped=(~(hit & (other[None, :] > 0.97))).ravel(),  # a few answers cut too
                            gold=list(gold) * nb,
                            extracted=answer.ravel().tolist(),
                            verdict=verdict.ravel().tolist(),
                            correct=correct.ravel(),
                        ),
                        schema=artifacts.SCHEMAS["grades"],
                    )
                    path = out / f"model~{model}/variant~{variant}/bench~{bench}/seed~{s}.parquet"
                    artifacts.write("grades", table, path)
                    paths.append(str(path))
    return paths


def run_job(job: str, *args, **kwargs) -> dict:
    """``jobs.<job>(*args, **kwargs)`` in a fresh Python process: its wall time, peak RSS and warnings."""
    args = [[str(x) for x in a] if isinstance(a, list) else str(a) for a in args]
    code = CHILD.format(workflow=str(REPO / "workflow"))
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(dict(job=job, args=args, **kwargs))], capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"{job} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(g: dict, work: Path) -> tuple[int, dict]:
    paths = write_grades(g, work / "grades")
    t = work / "tables"
    outs = ("scores.parquet", "summary.md", "summary.csv", "stats.parquet", "summary.html")  # the rule's order
    res = {"aggregate": run_job("aggregate", paths, *(t / f for f in outs))}
    model, bench = g["models"][0], max(g["benches"], key=lambda b: g["benches"][b][0])
    mine = [p for p in paths if f"/model~{model}/" in p and f"/bench~{bench}/" in p]  # the rule's grades_of
    for job, source in (("plot", t / "stats.parquet"), ("plot_diff", t / "stats.parquet"), ("plot_thinking", mine)):
        png = work / "figures" / f"{job}.png"
        res[job] = run_job(job, source, png, model=model, bench=bench)
        if not png.stat().st_size:
            sys.exit(f"{job}: empty figure")
    check(g, t)
    return len(paths), res


def check(g: dict, tables: Path) -> None:
    st = artifacts.read("stats", tables / "stats.parquet").to_pandas()
    cells = sum(len(v) for v in g["variants"].values()) * len(g["benches"]) * len(g["budgets"])
    tests = {m: (len(v) - 1) * len(g["budgets"]) for m, v in g["variants"].items()}  # each variant vs dense
    families = st.groupby(["model", "bench"])["diff_p_value"].count()
    wrong = {key: n for key, n in families.items() if n != tests[key[0]]}
    headers = (tables / "summary.md").read_text().count("\n## model ")
    if len(st) != cells or wrong or headers != len(g["models"]) * len(g["benches"]):
        want = f"want {cells} rows, Holm families of {tests} tests, {len(g['models']) * len(g['benches'])} tables"
        sys.exit(f"stats: {len(st)} rows, Holm families off {wrong}, {headers} tables ({want})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=1.0, help="scale every benchmark's problem count")
    ap.add_argument("--keep", type=Path, help="write here and keep (default: a temporary folder)")
    args = ap.parse_args()
    grids = {
        "demo (config/config.yaml)": grid("config.yaml", args.fraction),
        "paper (config/paper.yaml)": grid("paper.yaml", args.fraction),
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for i, (name, g) in enumerate(grids.items()):
            n_files, res = measure(g, root / f"grid{i}")
            per_problem = sum(len(v) for v in g["variants"].values()) * len(g["seeds"]) * len(g["budgets"])
            traces = per_problem * sum(n for n, _, _ in g["benches"].values())
            results.append((name, n_files, traces, res))
    cpu = platform.processor() or platform.machine()
    print(f"{platform.system()} {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; one process a job")
    if args.fraction != 1.0:
        print(f"--fraction {args.fraction}: every benchmark with that share of its problems (at least 4)")
    (_, _, base_traces, base), (_, _, traces, big) = results
    for name, n_files, n_traces, _ in results:
        print(f"{name}: {n_files} grades files, {n_traces} traces")
    print(f"{'job':16s} {'demo s':>8s} {'demo MB':>8s} {'paper s':>8s} {'paper MB':>9s}", end=" ")
    print(f"{'time ratio':>11s} {'warnings':>9s}")
    for job in base:
        a, b = base[job], big[job]
        warn = len(a["warnings"]) + len(b["warnings"])
        print(
            f"{job:16s} {a['wall']:8.2f} {a['rss_mb']:8.0f} {b['wall']:8.2f} {b['rss_mb']:9.0f} "
            f"{b['wall'] / a['wall']:11.1f} {warn:9d}"
        )
        for w in (a["warnings"] + b["warnings"])[:3]:
            print(f"    warning: {w}")
    print(f"traces ratio {traces / base_traces:.1f}; checks (rows, Holm families, tables, figures): ok")


if __name__ == "__main__":
    main()
