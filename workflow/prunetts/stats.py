"""Aggregation of graded rows into the score table and the markdown summary.

``scores``: one row per (model, variant, bench, seed, budget) with accuracy over problems, mean thinking tokens and
the share of traces that hit the budget. The summary reports, per (model, bench), mean and standard deviation over
seeds of the accuracy for each variant and budget.
"""

from __future__ import annotations

import pandas as pd

KEYS = ["model", "variant", "bench", "seed", "budget"]


def scores(grades: pd.DataFrame, impl_version: int) -> pd.DataFrame:
    g = grades.groupby(KEYS, sort=True)
    out = pd.DataFrame(
        {
            "n_problems": g["correct"].size(),
            "n_correct": g["correct"].sum(),
            "accuracy": g["correct"].mean(),
            "mean_thinking_tokens": g["thinking_tokens"].mean(),
            "budget_hit_rate": g["hit_budget"].mean(),
        }
    ).reset_index()
    out.insert(len(KEYS), "impl_version", impl_version)
    return out


def variant_order(variants) -> list[str]:
    """dense first, then by method, allocation, sparsity."""
    return sorted(set(variants), key=lambda v: (v != "dense", v))


def summary_markdown(sc: pd.DataFrame) -> str:
    lines = ["# prunetts summary", ""]
    lines.append("Accuracy (mean ± std over seeds) per thinking budget; n = problems per seed.")
    for (model, bench), part in sc.groupby(["model", "bench"], sort=True):
        seeds = sorted(part["seed"].unique())
        budgets = sorted(part["budget"].unique())
        n = int(part["n_problems"].max())
        lines += ["", f"## model `{model}`, benchmark `{bench}` (seeds {', '.join(map(str, seeds))}; n = {n})", ""]
        lines.append("| variant | " + " | ".join(f"B={b}" for b in budgets) + " | mean thinking tokens @ max B |")
        lines.append("|---" * (len(budgets) + 2) + "|")
        for v in variant_order(part["variant"]):
            pv = part[part["variant"] == v]
            cells = []
            for b in budgets:
                acc = pv[pv["budget"] == b]["accuracy"]
                std = acc.std(ddof=1) if len(acc) > 1 else 0.0
                cells.append(f"{acc.mean():.3f} ± {std:.3f}")
            tok = pv[pv["budget"] == budgets[-1]]["mean_thinking_tokens"].mean()
            lines.append(f"| {v} | " + " | ".join(cells) + f" | {tok:.1f} |")
    return "\n".join(lines) + "\n"


def summary_csv(sc: pd.DataFrame) -> pd.DataFrame:
    g = sc.groupby(["model", "variant", "bench", "budget"], sort=True)
    return g.agg(
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        n_seeds=("seed", "nunique"),
        mean_thinking_tokens=("mean_thinking_tokens", "mean"),
        budget_hit_rate=("budget_hit_rate", "mean"),
    ).reset_index()
