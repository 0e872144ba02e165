"""Statistics of the graded traces: the per-seed score table, the per-budget statistics table and the summaries.

Input: the ``grades`` artifact, one row per (model, variant, bench, seed, budget, problem_id) with ``correct``,
``verdict``, ``extracted``, ``thinking_tokens``, ``hit_budget`` and ``answer_stopped``.

``scores`` (artifact ``scores``): one row per (model, variant, bench, seed, budget): accuracy over problems, mean
thinking tokens, share of traces that hit the budget.

``stats`` (artifact ``stats``): one row per (model, variant, bench, budget), computed on the problems × seeds matrix
of outcomes of that cell:

- ``accuracy_mean``, ``accuracy_std``: mean and sample standard deviation (ddof 1; null with a single seed) over seeds
  of the per-seed accuracy.
- ``accuracy_ci_low``, ``accuracy_ci_high``: 95 % Wilson score interval for the accuracy, with the problems as the
  sample (the benchmark's problems are what we generalise from; the seeds are repeated measurements of the same
  problem, correlated through its difficulty). With one seed this is the plain Wilson interval of a binomial
  proportion. With k seeds it uses Kish's effective sample size n_eff = p̂(1 − p̂) / Var̂(p̂), where Var̂(p̂) is the
  variance of the per-problem mean over seeds divided by n_problems (the clustered variance), kept within
  [n_problems, n_problems · k] (the design effect of k correlated measurements lies in [1, k]); when every problem
  scores 0, or every problem 1, or there is a single problem (no variance to estimate), it is n_problems, the
  conservative end; when the per-problem means do not vary at all although p̂ is strictly between 0 and 1 (every
  problem solved by the same share of its seeds, as if seeds were independent of the problem), n_problems · k
  (Korn & Graubard 1998 use the same effective-size idea for proportions from clustered samples). A consequence at
  the edges: with 2 seeds of 80 problems, 0 / 160 gives [0, 0.046] (n_eff = 80) but 1 / 160 gives [0.001, 0.035]
  (n_eff = 160: the one solved problem's seeds disagree, as independent draws would), so a cell with one success
  can show a lower upper bound than a cell with none; the conservative n at 0 and 1 is the reason. Why not a
  percentile bootstrap, as before aggregate impl 5: it collapses to [0, 0] when no problem is solved (0 / 80
  gives [0, 0]; Wilson gives [0, 0.046]) and covers a true accuracy of 0.05 on AIME24's 30 problems only ~79 % of
  the time (Wilson ~93 %); pruned models on small benchmarks live exactly there (``tests/unit/test_stats.py``
  measures the coverage).
- ``pass_at_k`` (list, entry k-1 for k = 1..n_seeds): the unbiased estimator of Chen et al. (2021), per problem
  1 − C(n − c, k) / C(n, k) with c correct of its n seeds, averaged over problems. pass@1 = accuracy_mean.
- ``maj_at_k`` (list, k = 1..n_seeds): majority vote of the extracted answers of k seeds, as an exact expectation
  over all C(n, k) subsets of the n seeds (the same "expected over a random draw of k samples" reading as pass@k) and
  over problems. Correct answers all vote together (each equals the gold, so they equal each other however written:
  "104." and "104", "\\frac12" and "0.5"); other answers are compared by the grader's integer rule ("025" = "25.0" =
  25), else after removing whitespace (so equivalent wrong answers written differently, "\\frac32" and "1.5", split
  their votes: a bias towards the correct answer, which math-verify merges); an answer graded correct once is correct
  in every trace of the problem (another may have timed out in the grader); a trace without an extracted answer
  abstains, and so does one graded ``unparsable`` (a hedge such as "C or D", an answer beyond the grader's limits: no
  answer to count); a subset where every trace abstains counts as wrong. **Ties** are broken at random: a vote the
  correct answer ties with q wrong answers counts 1 / (q + 1), its expectation (before aggregate impl 5 the lowest
  seed number won, so relabelling the seeds changed maj@k; with 2 seeds every disagreement is a tie). The
  expectation is counted per problem from the answers' vote counts (``maj_credit``), not by enumerating subsets, so
  its cost does not grow as 2^n. maj@1 = pass@1 (up to such grader timeouts).
- ``diff_vs_dense``, ``diff_ci_low``, ``diff_ci_high``, ``diff_p_value``, ``diff_p_holm``, ``diff_significant``
  (null for the dense rows and where the grid has no dense model): accuracy of the variant minus the dense model's,
  same model, bench and budget, over the (problem, seed) pairs both have (``n_paired``). Interval: 95 % paired
  percentile bootstrap over problems, the seeds of a problem kept together (the statistic is the mean over problems
  of the per-problem mean difference over seeds). Each of ``N_BOOT`` = 2000 resamples draws n_problems problems with
  replacement; the resample weights come from ``numpy.random.default_rng(BOOT_SEED)`` and depend only on
  (n_problems, N_BOOT, BOOT_SEED), so every variant and budget of a benchmark uses the same resamples and a number
  never depends on what else is in the grid. The interval is descriptive: where few problems differ it is narrow or
  even [0, 0]; the test below decides significance.
  **p-value**: two-sided exact *sign-flip (paired permutation) test over problems*. Per problem, k_p = Σ over its
  paired seeds of (variant correct − dense correct), an integer. Under the null hypothesis the two models are
  exchangeable on each problem, so every k_p is as likely to have the opposite sign; the null distribution of
  T = Σ_p k_p over all 2^P sign patterns is computed exactly by convolution (no sampling), and
  p = P(|T*| ≥ |T|). With one seed this *is* the exact McNemar test (k_p ∈ {−1, 0, 1}: b problems better, c worse,
  p = 2 · P(Binomial(b + c, 1/2) ≤ min(b, c)), capped at 1). Why not the usual alternatives: exact McNemar on
  per-(problem, seed) pairs treats the seeds of a problem as independent, which they are not (a
  hard problem is hard for every seed), so it overstates significance with several seeds; a bootstrap p-value is
  anti-conservative when few problems differ (4 problems better and none worse out of 80 gives a bootstrap
  p ≈ 0.03, the exact test 0.125). The interval is therefore descriptive and can, in such cases, exclude 0 while
  p ≥ 0.05; the star follows the p-value. Identical variants give p = 1.
  ``diff_p_holm``: the p-value after Holm's step-down correction over the family of all variant × budget tests of
  the same model and benchmark (one summary table: the paper's grid tests 16 variants × 5 budgets = 80 hypotheses
  per benchmark for s1.1-7B, 17 × 5 = 85 for Qwen3-8B, where an uncorrected 5 % level expects 4 false stars).
  ``diff_significant`` = ``diff_p_holm`` < ``ALPHA`` = 0.05 (family-wise error rate); the marks in the summaries
  and figures follow it, and ``diff_p_value`` stays the uncorrected test of one comparison. The family is the grid
  aggregated together, so adding variants or budgets can only raise the other cells' ``diff_p_holm``.
- ``mean_thinking_tokens``, ``budget_hit_rate``: over all traces (problems × seeds) of the cell.
- ``grader_failure_rate``: the share of the cell's traces the grader could not judge (verdict ``timeout`` or
  ``error``), counted wrong in every accuracy: a grader under load is not a pruning effect, so the summaries list
  each cell where it is above 0 under its table.
- ``answer_cut_rate``: the share of the cell's traces whose answer did not end on an end token (cut at
  ``max_gen_toks`` or the model's context, graded on the text as it stands; a broken model that loops in its answer).

Every variant's grades in a cell must cover each of its problems under each of its seeds (the workflow always grades
complete sets); a hole is an error, because accuracy, its interval, pass@k and the paired test would each average a
different subset of the traces.
"""

from __future__ import annotations

import functools
import html
import math
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist

import numpy as np
import pandas as pd

from prunetts.config import ALLOCATIONS, ConfigError, parse_variant
from prunetts.grading import GRADER_FAILURES, as_integer

KEYS = ["model", "variant", "bench", "seed", "budget"]
CELL = ["model", "variant", "bench", "budget"]
N_BOOT = 2000
BOOT_SEED = 0
ALPHA = 0.05
LEVEL = 0.95


# ---------------------------------------------------------------------------------------------------- per seed


def seeds_text(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


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


_METHOD_ORDER = {"dense": 0, "magnitude": 1, "wanda": 2, "shortgpt": 3}
_ALLOCATION_ORDER = {a: i for i, a in enumerate((*ALLOCATIONS, "shortgpt"))}


def _variant_key(v: str):
    try:
        p = parse_variant(v)
    except ConfigError:
        return (9, 0, 0, 0, v)
    return (
        _METHOD_ORDER.get(p.method, 8),
        p.n_layers or 0,
        p.sparsity,
        _ALLOCATION_ORDER.get(p.allocation, -1),
        v,
    )


def variant_order(variants) -> list[str]:
    """dense first, then by method (magnitude, wanda, shortgpt), sparsity, allocation (uniform, owl, layerif):
    the allocations of one method and sparsity sit next to each other."""
    return sorted(set(variants), key=_variant_key)


# ---------------------------------------------------------------------------------------------------- primitives


CORRECT_KEY = "\x00correct"  # the vote key every correct trace of a problem shares
CORRECT_CODE = np.iinfo(np.int64).max  # its code in the answer cube (factorized codes are small; -1 abstains)


def answer_key(extracted) -> str | None:
    """The vote key of an extracted answer: the grader's integer rule ("025" = "25.0" = 25), else the text with
    whitespace removed; None abstains. ``_cube`` then replaces the keys of answers graded correct by ``CORRECT_KEY``."""
    if extracted is None or (isinstance(extracted, float) and math.isnan(extracted)):
        return None
    s = "".join(str(extracted).split())
    if not s:
        return None
    n = as_integer(s)
    return str(n) if n is not None else s


@functools.lru_cache(maxsize=64)
def bootstrap_counts(n: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """(n_boot, n) integer matrix: row b holds how often each of the n items is drawn in resample b (a multinomial
    draw is the same as n draws with replacement), so ``counts @ x / n`` is the vector of resampled means of x."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    counts.flags.writeable = False
    return counts


def bootstrap_means(per_item: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """Bootstrap distribution of the mean of ``per_item`` (one value per problem), resampling items."""
    x = np.asarray(per_item, dtype=np.float64)
    return bootstrap_counts(len(x), n_boot, seed) @ x / len(x)


def percentile_ci(boot: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def wilson_interval(per_problem: np.ndarray, n_seeds: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for the mean of ``per_problem`` (each problem's mean outcome over its ``n_seeds``
    seeds), with Kish's effective sample size for the clustered seeds (module docstring)."""
    y = np.asarray(per_problem, dtype=np.float64)
    n = len(y)
    if not n:
        return math.nan, math.nan
    p = float(y.mean())
    spread = p * (1 - p)
    var = float(y.var(ddof=1)) / n if n > 1 else 0.0
    if spread <= 0 or n == 1:
        n_eff = float(n)  # all 0, all 1, or one problem: count the problems, the conservative end
    elif var <= 0:
        n_eff = float(n * n_seeds)
    else:
        n_eff = min(max(spread / var, n), n * n_seeds)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    z2 = z * z / n_eff
    centre = (p + z2 / 2) / (1 + z2)
    half = z / (1 + z2) * math.sqrt(spread / n_eff + z * z / (4 * n_eff * n_eff))
    # the interval always holds p; at p = 0 or 1 its end is p up to rounding (3e-18 above 0): exactly p
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate) of one family of tests; NaN entries are not
    tests and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def sign_flip_p_value(k) -> float:
    """Two-sided exact sign-flip test of "the paired differences are symmetric around 0". ``k``: one integer per
    problem (the sum of its paired differences). p = P(|Σ ε_p·|k_p|| ≥ |Σ k_p|) with independent fair signs ε_p,
    computed exactly by convolving the null distribution one problem at a time (O(P · Σ|k|), no sampling)."""
    k = np.asarray(k, dtype=np.int64)
    observed = abs(int(k.sum()))
    if observed == 0:
        return 1.0
    mags = np.abs(k[k != 0])
    total = int(mags.sum())
    dist = np.zeros(2 * total + 1)  # index i <-> sum i - total
    dist[total] = 1.0
    reach = 0
    for m in mags.tolist():
        new = np.zeros_like(dist)
        lo, hi = total - reach, total + reach + 1
        new[lo + m : hi + m] += 0.5 * dist[lo:hi]
        new[lo - m : hi - m] += 0.5 * dist[lo:hi]
        dist, reach = new, reach + m
    sums = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(sums) >= observed].sum()))


def pass_at_k(correct: np.ndarray) -> np.ndarray:
    """``correct``: (problems, n) booleans. pass@k for k = 1..n, unbiased estimator averaged over problems."""
    correct = np.asarray(correct, dtype=bool)
    n = correct.shape[1]
    c = correct.sum(axis=1)
    out = np.empty(n)
    for k in range(1, n + 1):
        fail = np.array([math.comb(n - ci, k) for ci in range(n + 1)], dtype=np.float64) / math.comb(n, k)
        out[k - 1] = float(np.mean(1.0 - fail[c])) if len(c) else math.nan
    return out


@functools.lru_cache(maxsize=4096)
def maj_credit(n_correct: int, n_abstain: int, wrong: tuple[int, ...]) -> tuple[float, ...]:
    """Expected majority-vote credit of one problem for k = 1..n, over all k-subsets of its n traces: ``n_correct``
    traces give the correct answer, ``n_abstain`` none, and ``wrong`` holds the trace count of each distinct wrong
    answer. In a subset the answer with the most votes wins; a tie of the correct answer with q wrong ones counts
    1 / (q + 1) (a random tie-break); a subset of abstentions only counts 0.

    Counted, not enumerated: for each number t >= 1 of correct votes, a dynamic programme over the wrong answers counts
    the ways to draw s wrong traces with none above t and q of them exactly at t; the abstentions fill the subset."""
    n = n_correct + n_abstain + sum(wrong)
    credit = np.zeros(n + 1)  # index k
    abstain_ways = np.array([[math.comb(n_abstain, r) for r in range(n + 1)]], dtype=np.float64)
    for t in range(1, n_correct + 1):
        ways = np.zeros((n + 1, len(wrong) + 1))  # [s wrong traces drawn, q answers tied at t]
        ways[0, 0] = 1.0
        for m in wrong:
            new = np.zeros_like(ways)
            for j in range(min(m, t) + 1):
                tie = int(j == t)
                new[j:, tie:] += math.comb(m, j) * ways[: n + 1 - j, : ways.shape[1] - tie]
            ways = new
        by_s = (ways / np.arange(1, len(wrong) + 2)).sum(axis=1)  # sum over q of ways / (q + 1)
        for s_, w in enumerate(by_s.tolist()):
            if w:
                k = np.arange(t + s_, n + 1)
                credit[k] += math.comb(n_correct, t) * w * abstain_ways[0, k - t - s_]
    return tuple(float(credit[k] / math.comb(n, k)) for k in range(1, n + 1))


def maj_at_k(answers: np.ndarray, correct_code: int = CORRECT_CODE) -> np.ndarray:
    """maj@k for k = 1..n: ``answers`` (problems, n) integer answer codes, -1 = abstain, ``correct_code`` the code
    every correct answer has; each problem's exact expectation over the k-subsets of its n traces (``maj_credit``),
    averaged over problems.

    Vectorised over problems: each row is reduced to its vote signature (correct votes, abstentions, the wrong
    answers' vote counts in descending order), ``maj_credit`` runs once per distinct signature, and the problems'
    credits are added up one after the other in problem order (``np.add.accumulate``), as a loop would add them."""
    answers = np.asarray(answers)
    n_problems, n = answers.shape
    if not n_problems:
        return np.full(n, math.nan)
    ranked = np.sort(answers, axis=1)  # equal answers of a problem next to each other
    wrong = (ranked >= 0) & (ranked != correct_code)
    starts = np.ones(ranked.shape, dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    run = np.cumsum(starts, axis=1) - 1  # index of each trace's answer among its problem's distinct answers
    votes = np.zeros(ranked.shape, dtype=np.int64)
    np.add.at(votes, (np.nonzero(wrong)[0], run[wrong]), 1)
    signature = np.column_stack(
        [(ranked == correct_code).sum(axis=1), (ranked < 0).sum(axis=1), -np.sort(-votes, axis=1)]
    )
    distinct, which = np.unique(signature, axis=0, return_inverse=True)
    credit = np.array(
        [maj_credit(c, a, tuple(m for m in wrong_votes if m)) for c, a, *wrong_votes in distinct.tolist()],
        dtype=np.float64,
    ).reshape(len(distinct), n)
    return np.add.accumulate(credit[which.reshape(-1)], axis=0)[-1] / n_problems


def paired_difference(variant: np.ndarray, dense: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> dict:
    """``variant``, ``dense``: (problems, seeds) 0/1 outcomes on the same rows and columns, NaN where a trace is
    missing. Mean difference, its paired bootstrap interval over problems and the sign-flip p-value (module
    docstring)."""
    d = np.asarray(variant, dtype=np.float64) - np.asarray(dense, dtype=np.float64)
    paired = ~np.isnan(d)
    keep = paired.any(axis=1)
    if not keep.any():
        return dict(diff=math.nan, ci_low=math.nan, ci_high=math.nan, p_value=math.nan, n_paired=0)
    per_problem = np.nanmean(d[keep], axis=1)
    lo, hi = percentile_ci(bootstrap_means(per_problem, n_boot, seed))
    k = np.rint(np.nansum(d[keep], axis=1)).astype(np.int64)
    return dict(
        diff=float(per_problem.mean()),
        ci_low=lo,
        ci_high=hi,
        p_value=sign_flip_p_value(k),
        n_paired=int(paired.sum()),
    )


# ---------------------------------------------------------------------------------------------------- per cell


def _cube(block: pd.DataFrame) -> tuple[list, list, list, np.ndarray, np.ndarray]:
    """One (model, bench, budget) block as (variants, problems, seeds) arrays: float outcomes (NaN = missing) and
    int answer codes (-1 = abstain or missing; ``CORRECT_CODE`` = an answer graded correct). Built once per block
    with integer indexing (no per-cell pivots)."""
    vcode, variants = pd.factorize(block["variant"], sort=True)
    pcode, problems = pd.factorize(block["problem_id"], sort=True)
    scode, seeds = pd.factorize(block["seed"], sort=True)
    shape = (len(variants), len(problems), len(seeds))
    flat = np.ravel_multi_index((vcode, pcode, scode), shape)
    uniq, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        v, p, s = np.unravel_index(uniq[counts > 1][0], shape)
        raise ValueError(
            f"grades: duplicate row for problem {problems[p]!r}, seed {seeds[s]} in model {block['model'].iloc[0]!r}, "
            f"variant {variants[v]!r}, bench {block['bench'].iloc[0]!r}, budget {block['budget'].iloc[0]}"
        )
    correct = np.full(shape, np.nan)
    correct[vcode, pcode, scode] = block["correct"].to_numpy(dtype=np.float64)
    extracted = block["extracted"]
    keys = extracted.map({x: answer_key(x) for x in extracted.dropna().unique()})
    keys = keys.mask(block["verdict"].eq("unparsable").to_numpy(), None)  # abstains, as no answer does
    # an answer graded correct in one trace of a problem is correct in all of them (another trace of it may have
    # timed out in the grader): every one votes as CORRECT_KEY
    cells = pd.MultiIndex.from_arrays([vcode, pcode, keys])
    graded_correct = block["correct"].astype(bool).to_numpy() & keys.notna().to_numpy()
    keys = keys.mask(cells.isin(cells[graded_correct]) & keys.notna().to_numpy(), CORRECT_KEY)
    acode = np.where(keys.to_numpy() == CORRECT_KEY, CORRECT_CODE, pd.factorize(keys, use_na_sentinel=True)[0])
    answers = np.full(shape, -1, dtype=np.int64)
    answers[vcode, pcode, scode] = acode
    return list(variants), list(problems), [int(x) for x in seeds], correct, answers


def compute_stats(grades: pd.DataFrame, impl_version: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> list[dict]:
    """The rows of the ``stats`` artifact (module docstring), one per (model, variant, bench, budget)."""
    rows = []
    for (model, bench, budget), block in grades.groupby(["model", "bench", "budget"], sort=True):
        variants, _, _, cube, answers = _cube(block)
        failed = block["verdict"].isin(GRADER_FAILURES).rename("failed")
        cut = (~block["answer_stopped"].astype(bool)).rename("cut")
        tokens = pd.concat([block[["variant", "thinking_tokens", "hit_budget"]], failed, cut], axis=1)
        tokens = tokens.groupby("variant").mean()
        dense = variants.index("dense") if "dense" in variants else None
        for vi, variant in enumerate(variants):
            present = ~np.isnan(cube[vi])
            has_p, has_s = present.any(axis=1), present.any(axis=0)
            correct = cube[vi][has_p][:, has_s]
            codes = answers[vi][has_p][:, has_s]
            n_seeds = int(has_s.sum())
            holes = int(np.isnan(correct).sum())
            if holes:
                raise ValueError(
                    f"grades: model {model!r}, variant {variant!r}, bench {bench!r}, budget {budget}: {holes} of the "
                    f"{correct.size} (problem, seed) traces are missing; grade every problem under every seed "
                    "(rerun its generate and grade jobs)"
                )
            per_seed = correct.mean(axis=0)
            lo, hi = wilson_interval(correct.mean(axis=1), n_seeds)
            row = dict(
                model=model,
                variant=variant,
                bench=bench,
                budget=int(budget),
                impl_version=impl_version,
                n_seeds=n_seeds,
                n_problems=int(has_p.sum()),
                accuracy_mean=float(per_seed.mean()),
                accuracy_std=float(per_seed.std(ddof=1)) if n_seeds > 1 else None,
                accuracy_ci_low=lo,
                accuracy_ci_high=hi,
                pass_at_k=pass_at_k(correct > 0.5).tolist(),
                maj_at_k=maj_at_k(codes).tolist(),
                diff_vs_dense=None,
                diff_ci_low=None,
                diff_ci_high=None,
                diff_p_value=None,
                diff_p_holm=None,
                diff_significant=None,
                n_paired=None,
                mean_thinking_tokens=float(tokens.at[variant, "thinking_tokens"]),
                budget_hit_rate=float(tokens.at[variant, "hit_budget"]),
                grader_failure_rate=float(tokens.at[variant, "failed"]),
                answer_cut_rate=float(tokens.at[variant, "cut"]),
            )
            if dense is not None and vi != dense:
                d = paired_difference(cube[vi], cube[dense], n_boot, seed)
                if d["n_paired"]:
                    row.update(
                        diff_vs_dense=d["diff"],
                        diff_ci_low=d["ci_low"],
                        diff_ci_high=d["ci_high"],
                        diff_p_value=d["p_value"],
                        n_paired=d["n_paired"],
                    )
            rows.append(row)
    _correct_for_multiple_tests(rows)
    rows.sort(key=lambda r: (r["model"], r["bench"], _variant_key(r["variant"]), r["budget"]))
    return rows


def _correct_for_multiple_tests(rows: list[dict]) -> None:
    """Holm over each (model, bench)'s tests; ``diff_significant`` from the adjusted p-value (module docstring)."""
    families: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["diff_p_value"] is not None:
            families.setdefault((r["model"], r["bench"]), []).append(r)
    for family in families.values():
        for r, adjusted in zip(family, holm([r["diff_p_value"] for r in family]), strict=True):
            r["diff_p_holm"] = float(adjusted)
            r["diff_significant"] = bool(adjusted < ALPHA)


# ---------------------------------------------------------------------------------------------------- summaries


def _mark(r) -> str:
    """▲ / ▼: significantly better / worse than dense (Holm-adjusted p < ALPHA)."""
    sig = r.get("diff_significant")
    if sig is None or pd.isna(sig) or not bool(sig):
        return ""
    return " ▲" if r["diff_vs_dense"] > 0 else " ▼"


def _own_seeds(r, n_seeds: int) -> str:
    """The "(k=m)" mark, with its leading space, where a row averages another number of seeds than its header says."""
    return "" if r["n_seeds"] == n_seeds else f" (k={r['n_seeds']})"


def _own_sample(r, n_seeds: int, n: int) -> str:
    """A cell's "(k=m)" / "(n=p)": it averages another number of seeds / problems than its table's header says."""
    return _own_seeds(r, n_seeds) + ("" if r["n_problems"] == n else f" (n={r['n_problems']})")


def number_text(x: float, places: int, sign: bool = False) -> str:
    """``x`` to ``places`` decimals, halves rounded away from zero on the value to 15 significant digits, and a value
    within 1e-12 of zero as zero: one number computed two ways (17 / 80 as a mean over seeds and as a vote share,
    0.21249999999999997 and 0.2125; a zero difference as -6.9e-18) prints one way (``f"{x:.3f}"`` printed 0.212 and
    0.213, -0.000 and +0.000). Also the figures' labels (``prunetts.plots``)."""
    if not math.isfinite(x):
        return f"{x:{'+' if sign else ''}.{places}f}"
    d = Decimal(f"{x:.15g}") if abs(x) >= 1e-12 else Decimal(0)
    d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{d:+f}" if sign else f"{d:f}"


def _acc_cell(r, n_seeds: int, n: int) -> str:
    low, high = number_text(r["accuracy_ci_low"], 2), number_text(r["accuracy_ci_high"], 2)
    acc = f"{number_text(r['accuracy_mean'], 3)} [{low}, {high}]"
    return acc + _own_sample(r, n_seeds, n) + _mark(r)


def _diff_cell(r) -> str:
    if pd.isna(r.get("diff_vs_dense")):
        return "–"
    star = "*" if _mark(r) else ""
    low, high = number_text(r["diff_ci_low"], 2, True), number_text(r["diff_ci_high"], 2, True)
    return f"{number_text(r['diff_vs_dense'], 3, True)} [{low}, {high}]{star}"


def _blocks(st: pd.DataFrame):
    """Per (model, bench): header facts and the table rows (variant, per-budget stats rows)."""
    for (model, bench), part in st.groupby(["model", "bench"], sort=True):
        budgets = sorted(part["budget"].unique())
        n_seeds = int(part["n_seeds"].max())
        n = int(part["n_problems"].max())
        by = {(r["variant"], r["budget"]): r for r in part.to_dict("records")}
        variants = variant_order(part["variant"])
        yield model, bench, budgets, n_seeds, n, variants, by


_LEGEND = (
    "Accuracy: mean over seeds [95 % Wilson interval, problems as the sample: effective size n where a problem's seeds "
    "always agree, up to n × seeds where they vary as independent draws]; ▲ / ▼ = significantly better / worse "
    "than dense at the same budget (exact sign-flip test over problems, two-sided, Holm-adjusted over all variants and "
    f"budgets of the table: p < {ALPHA}). Difference vs dense: variant − dense accuracy on the same problems and seeds "
    "[95 % paired bootstrap interval over problems], * = the same test (the star follows the test, not the interval). "
    "pass@n / maj@n: any-correct / majority vote over the n seeds, at the largest budget (ties split evenly; a seed "
    "without an answer, or with an unparsable one, abstains, so maj@n can exceed the accuracy); "
    "answer cut: the share of answers cut before their end token (at max_gen_toks or the model's context), graded as "
    "they stand. (k=m) / (n=p) mark an accuracy, pass@n or maj@n cell over m seeds / p problems instead of the "
    "header's n."
)


def _top_head(budgets, n_seeds: int) -> list[str]:
    """The accuracy table's column titles after the variant."""
    head = [f"B={b}" for b in budgets] + [f"pass@{n_seeds} @ max B", f"maj@{n_seeds} @ max B"]
    return head + ["mean thinking tokens @ max B", "budget hit @ max B", "answer cut @ max B"]


def _top_cells(r, n_seeds: int, n: int) -> list[str]:
    """pass@n, maj@n, mean thinking tokens, budget-hit share and answer-cut share at the largest budget; a row with
    another number of seeds or problems than the header's says its own."""
    if r is None:
        return ["–"] * 5
    own = _own_sample(r, n_seeds, n)
    return [
        f"{number_text(r['pass_at_k'][-1], 3)}{own}",
        f"{number_text(r['maj_at_k'][-1], 3)}{own}",
        f"{number_text(r['mean_thinking_tokens'], 1)}",
        f"{number_text(r['budget_hit_rate'], 2)}",
        f"{number_text(r['answer_cut_rate'], 2)}",
    ]


def summary_markdown(st: pd.DataFrame) -> str:
    lines = ["# prunetts summary", "", _LEGEND]
    for model, bench, budgets, n_seeds, n, variants, by in _blocks(st):
        lines += ["", f"## model `{model}`, benchmark `{bench}` ({seeds_text(n_seeds)}; n = {n} problems)", ""]
        head = _top_head(budgets, n_seeds)
        lines.append("| variant | " + " | ".join(head) + " |")
        lines.append("|---" * (len(head) + 1) + "|")
        for v in variants:
            cells = [_acc_cell(by[(v, b)], n_seeds, n) if (v, b) in by else "–" for b in budgets]
            cells += _top_cells(by.get((v, budgets[-1])), n_seeds, n)
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        pruned = [v for v in variants if v != "dense"]
        if "dense" in variants and pruned:
            lines += ["", "Difference vs dense:", ""]
            lines.append("| variant | " + " | ".join(f"B={b}" for b in budgets) + " |")
            lines.append("|---" * (len(budgets) + 1) + "|")
            for v in pruned:
                cells = [_diff_cell(by[(v, b)]) if (v, b) in by else "–" for b in budgets]
                lines.append(f"| {v} | " + " | ".join(cells) + " |")
        if note := _grader_failures_note(variants, budgets, by):
            lines += ["", note]
    return "\n".join(lines) + "\n"


def _grader_failures_note(variants, budgets, by) -> str | None:
    """The cells of one table with traces the grader could not judge, or None."""
    cells = []
    for v in variants:
        for b in budgets:
            r = by.get((v, b))
            if r is not None and (r.get("grader_failure_rate") or 0) > 0:
                n = int(r["n_seeds"]) * int(r["n_problems"])  # the cell's traces (it has no holes)
                cells.append(f"{v} @ B={b}: {round(r['grader_failure_rate'] * n)} of {n} traces")
    if not cells:
        return None
    return (
        "Grader timeouts or errors, counted wrong in the accuracy, pass@n and the difference vs dense (raise "
        "grading.timeout_s and rerun grade): " + "; ".join(cells)
    )


def summary_csv(st: pd.DataFrame) -> pd.DataFrame:
    """Flat per (model, variant, bench, budget) table; pass@n and maj@n at k = n_seeds."""
    out = st.drop(columns=["impl_version", "pass_at_k", "maj_at_k"]).copy()
    out["pass_at_n"] = [float(v[-1]) for v in st["pass_at_k"]]
    out["maj_at_n"] = [float(v[-1]) for v in st["maj_at_k"]]
    out["n_paired"] = out["n_paired"].astype("Int64")
    first = ["model", "variant", "bench", "budget", "n_seeds", "n_problems", "accuracy_mean", "accuracy_std"]
    return out[first + [c for c in out.columns if c not in first]]


_CSS = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
td.worse { background: #fbe3e3; } td.better { background: #e1ecfb; }
p.legend { max-width: 60em; color: #444; }
"""


def summary_html(st: pd.DataFrame) -> str:
    """The summary as a standalone HTML page (what the Snakemake report shows); significant cells are shaded."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>prunetts summary</title><style>{_CSS}</style>"]
    parts.append(f"</head><body><h1>prunetts summary</h1><p class='legend'>{e(_LEGEND)}</p>")

    def cls(r):
        mark = _mark(r)
        return "" if not mark else (" class='better'" if "▲" in mark else " class='worse'")

    for model, bench, budgets, n_seeds, n, variants, by in _blocks(st):
        parts.append(f"<h2>model {e(model)}, benchmark {e(bench)} ({seeds_text(n_seeds)}; n = {n} problems)</h2>")
        head = _top_head(budgets, n_seeds)
        parts.append("<table><tr><th>variant</th>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        for v in variants:
            cells = []
            for b in budgets:
                r = by.get((v, b))
                cells.append(f"<td{cls(r)}>{e(_acc_cell(r, n_seeds, n))}</td>" if r else "<td>–</td>")
            cells += [f"<td>{e(x)}</td>" for x in _top_cells(by.get((v, budgets[-1])), n_seeds, n)]
            parts.append(f"<tr><td>{e(v)}</td>{''.join(cells)}</tr>")
        parts.append("</table>")
        pruned = [v for v in variants if v != "dense"]
        if "dense" in variants and pruned:
            parts.append("<p>Difference vs dense:</p><table><tr><th>variant</th>")
            parts.append("".join(f"<th>B={b}</th>" for b in budgets) + "</tr>")
            for v in pruned:
                cells = []
                for b in budgets:
                    r = by.get((v, b))
                    cells.append(f"<td{cls(r)}>{e(_diff_cell(r))}</td>" if r else "<td>–</td>")
                parts.append(f"<tr><td>{e(v)}</td>{''.join(cells)}</tr>")
            parts.append("</table>")
        if note := _grader_failures_note(variants, budgets, by):
            parts.append(f"<p class='legend'>{e(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
