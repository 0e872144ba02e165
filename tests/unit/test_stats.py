"""Statistics of graded traces (prunetts.stats) on hand-made grade tables."""

import itertools
import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from prunetts import artifacts, stats


def grades(outcomes: dict, budget: int = 64, answers: dict | None = None, model="m", bench="demo") -> pd.DataFrame:
    """``outcomes``: {variant: {seed: [correct per problem]}}; ``answers``: same shape, extracted answers (default:
    "1" when correct, "2" otherwise); gold is "1"."""
    rows = []
    for variant, by_seed in outcomes.items():
        for seed, correct in by_seed.items():
            for i, c in enumerate(correct):
                ans = answers[variant][seed][i] if answers else ("1" if c else "2")
                rows.append(
                    dict(
                        model=model,
                        variant=variant,
                        bench=bench,
                        seed=seed,
                        budget=budget,
                        impl_version=1,
                        problem_id=f"p{i:04d}",
                        thinking_tokens=10 + i % 7,
                        hit_budget=i % 3 == 0,
                        answer_stopped=i % 5 != 4,
                        gold="1",
                        extracted=ans,
                        verdict="correct" if c else ("no_answer" if ans is None else "wrong"),
                        correct=bool(c),
                    )
                )
    return pd.DataFrame(rows)


def by_variant(rows: list[dict]) -> dict:
    return {r["variant"]: r for r in rows}


def test_accuracy_interval_contains_the_mean_and_narrows_with_more_problems():
    widths = []
    for n in (20, 200):
        rng = np.random.default_rng(n)
        g = grades({"dense": {7: rng.random(n) < 0.6, 11: rng.random(n) < 0.6}})
        r = stats.compute_stats(g, 1)[0]
        assert r["accuracy_ci_low"] <= r["accuracy_mean"] <= r["accuracy_ci_high"]
        assert 0 <= r["accuracy_ci_low"] < r["accuracy_ci_high"] <= 1
        widths.append(r["accuracy_ci_high"] - r["accuracy_ci_low"])
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): sqrt(10) narrower


def test_accuracy_mean_std_and_token_columns():
    g = grades({"dense": {7: [1, 1, 0, 0], 11: [1, 1, 1, 0]}})
    g.loc[1, "answer_stopped"] = False  # one of 8 answers cut at max_gen_toks
    r = stats.compute_stats(g, 3)[0]
    assert r["answer_cut_rate"] == 0.125 and r["grader_failure_rate"] == 0.0
    assert r["accuracy_mean"] == pytest.approx(0.625)
    assert r["accuracy_std"] == pytest.approx(np.std([0.5, 0.75], ddof=1))
    assert (r["n_seeds"], r["n_problems"], r["impl_version"]) == (2, 4, 3)
    assert r["mean_thinking_tokens"] == pytest.approx(g["thinking_tokens"].mean())
    assert r["budget_hit_rate"] == pytest.approx(g["hit_budget"].mean())
    assert r["diff_vs_dense"] is None and r["diff_p_value"] is None
    one_seed = stats.compute_stats(grades({"dense": {7: [1, 0]}}), 1)[0]
    assert one_seed["accuracy_std"] is None


def test_per_seed_scores_table_by_hand():
    """The ``scores`` artifact (``results/tables/scores.parquet``): one row per (model, variant, bench, seed, budget)
    with that seed's accuracy, thinking tokens and budget-hit share (compute_stats averages over seeds instead)."""
    g = grades({"dense": {7: [1, 1, 0, 0], 11: [1, 1, 1, 0]}, "wanda-uniform-s0.50": {7: [0, 1, 0, 0]}})
    # grades(): thinking_tokens 10 + i (i < 7), hit_budget for problems 0 and 3 of each 4
    g.loc[0, "thinking_tokens"] = 30  # dense, seed 7, problem 0: a skewed mean, (30 + 11 + 12 + 13) / 4
    sc = stats.scores(g, 5)
    assert list(sc.columns) == [*stats.KEYS, "impl_version", "n_problems", "n_correct", "accuracy",
                                "mean_thinking_tokens", "budget_hit_rate"]  # fmt: skip
    rows = {(r["variant"], r["seed"]): r for r in sc.to_dict("records")}
    assert set(rows) == {("dense", 7), ("dense", 11), ("wanda-uniform-s0.50", 7)}
    assert [rows["dense", 11][k] for k in ("n_problems", "n_correct", "accuracy")] == [4, 3, 0.75]
    assert rows["dense", 7]["accuracy"] == 0.5 and rows["wanda-uniform-s0.50", 7]["accuracy"] == 0.25
    assert [r["mean_thinking_tokens"] for r in rows.values()] == [16.5, 11.5, 11.5]
    assert all(r["budget_hit_rate"] == 0.5 for r in rows.values())
    assert (sc["impl_version"] == 5).all() and (sc["budget"] == 64).all()


def wilson(c: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The textbook Wilson score interval for c successes of n."""
    p = c / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_accuracy_interval_is_wilson_over_problems_and_never_collapses():
    # one seed: the textbook Wilson interval; no problem solved out of 80 still leaves [0, z^2 / (80 + z^2)]
    for c, n in ((0, 80), (80, 80), (3, 30), (17, 40), (250, 500)):
        r = stats.compute_stats(grades({"dense": {7: [1] * c + [0] * (n - c)}}), 1)[0]
        assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == pytest.approx(wilson(c, n), abs=1e-12)
    assert wilson(0, 80)[1] == pytest.approx(0.0458, abs=1e-4)
    # one problem: no variance to estimate, so its seeds count as one measurement
    z = 1.959963984540054  # Wilson at n = 1, p = 1/2: 1/2 -+ z / (2 sqrt(1 + z^2)), about (0.055, 0.945)
    half = z / (2 * math.sqrt(1 + z * z))
    assert stats.wilson_interval(np.array([0.5]), 4) == pytest.approx((0.5 - half, 0.5 + half))
    for per_problem in ([0.0] * 80, [1.0] * 30, [0.0] * 7 + [1.0]):  # the ends are exact, never 3e-18 off
        lo, hi = stats.wilson_interval(np.array(per_problem), 1)
        assert lo <= np.mean(per_problem) <= hi and (lo == 0.0 or np.mean(per_problem) > 0) and hi <= 1.0
    # several seeds, every problem the same: counted as n problems (the conservative end), not n x seeds traces
    r = stats.compute_stats(grades({"dense": {s: [0] * 80 for s in (7, 11, 42)}}), 1)[0]
    assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == pytest.approx(wilson(0, 80), abs=1e-12)
    # seeds that always agree carry no more information than one seed: the interval of one seed
    same = [1] * 12 + [0] * 28
    r = stats.compute_stats(grades({"dense": {7: same, 11: same, 42: same}}), 1)[0]
    assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == pytest.approx(wilson(12, 40), abs=1e-12)
    # seeds independent of the problem (every problem solved by exactly 1 of 2 seeds, no spread): n x seeds traces
    r = stats.compute_stats(grades({"dense": {7: [1, 0] * 20, 11: [0, 1] * 20}}), 1)[0]
    assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == pytest.approx(wilson(40, 80), abs=1e-12)


def wilson_at(p: float, n_eff: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion p with a (possibly fractional) sample size n_eff."""
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z / (1 + z * z / n_eff) * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff))
    return centre - half, centre + half


def test_accuracy_interval_uses_kish_effective_size_between_its_bounds():
    """Between the clamps: n_eff = p(1 - p) / (var(per-problem means, ddof 1) / n), worked by hand; above n x k it is
    held at n x k (k seeds can carry at most k measurements per problem)."""
    # 30 problems, 2 seeds: 10 solved by none, 10 by one seed, 10 by both; p = 1/2, var = (10/4 + 10/4) / 29 = 5/29
    per_problem = np.array([0.0] * 10 + [0.5] * 10 + [1.0] * 10)
    n_eff = 0.25 / (5 / 29 / 30)  # = 43.5, inside [30, 60]
    assert 30 < n_eff < 60
    assert stats.wilson_interval(per_problem, 2) == pytest.approx(wilson_at(0.5, n_eff), abs=1e-12)
    r = stats.compute_stats(
        grades({"dense": {7: [0] * 10 + [1] * 10 + [1] * 10, 11: [0] * 10 + [0] * 10 + [1] * 10}}), 1
    )
    assert (r[0]["accuracy_ci_low"], r[0]["accuracy_ci_high"]) == pytest.approx(wilson_at(0.5, n_eff), abs=1e-12)
    # nearly every problem solved by exactly one of its two seeds: p(1 - p) / var = 780 > 40 x 2, held at 80
    nearly_flat = np.array([0.5] * 38 + [0.0, 1.0])
    assert 0.25 / (nearly_flat.var(ddof=1) / 40) > 80
    assert stats.wilson_interval(nearly_flat, 2) == pytest.approx(wilson_at(0.5, 80), abs=1e-12)


def test_percentile_interval_takes_the_two_tails_of_the_level():
    boot = np.linspace(0.0, 1.0, 1001)
    assert stats.percentile_ci(boot) == pytest.approx((0.025, 0.975))
    assert stats.percentile_ci(boot, 0.9) == pytest.approx((0.05, 0.95))


def test_accuracy_interval_covers_small_accuracies_on_small_benchmarks():
    # the regime of pruned models on AIME24 (30 problems) and AMC23 (40): a percentile bootstrap over problems
    # covers a true accuracy of 0.05 only ~80 % of the time (it is [0, 0] whenever nothing is solved). With several
    # seeds, problems differ in difficulty (Beta with mean p): the target is the population accuracy p.
    rng = np.random.default_rng(0)
    for n, p, seeds in ((30, 0.05, 1), (40, 0.05, 1), (80, 0.02, 1), (30, 0.05, 4), (30, 0.1, 4), (40, 0.3, 2)):
        hits = 0
        for _ in range(1000):
            difficulty = rng.beta(p * 2, (1 - p) * 2, size=n) if seeds > 1 else np.full(n, p)
            outcomes = rng.random((n, seeds)) < difficulty[:, None]
            lo, hi = stats.wilson_interval(outcomes.mean(axis=1), seeds)
            hits += lo <= p <= hi
        assert hits / 1000 >= 0.9, (n, p, seeds, hits / 1000)


def test_bootstrap_is_deterministic():
    rng = np.random.default_rng(0)
    g = grades({"dense": {7: rng.random(30) < 0.5}, "wanda-owl-s0.50": {7: rng.random(30) < 0.3}})
    assert stats.compute_stats(g, 1) == stats.compute_stats(g.sample(frac=1, random_state=1), 1)


def test_pass_at_k_matches_brute_force_over_subsets():
    rng = np.random.default_rng(3)
    correct = rng.random((40, 5)) < 0.35
    got = stats.pass_at_k(correct)
    for k in range(1, 6):
        brute = np.mean([np.mean([correct[p, list(s)].any() for s in combinations(range(5), k)]) for p in range(40)])
        assert got[k - 1] == pytest.approx(brute, abs=1e-12)
    assert got[0] == pytest.approx(correct.mean())
    assert list(got) == sorted(got)  # pass@k never decreases with k


def test_pass_at_k_formula_on_one_problem():
    # n = 3 seeds, c = 1 correct: pass@1 = 1/3, pass@2 = 1 - C(2,2)/C(3,2) = 2/3, pass@3 = 1
    assert stats.pass_at_k(np.array([[True, False, False]])) == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert stats.pass_at_k(np.array([[False, False]])) == pytest.approx([0.0, 0.0])


def brute_maj_at_k(answers: np.ndarray, correct_code: int) -> np.ndarray:
    """maj@k by enumerating every k-subset of the seed columns; a tie of the correct answer with q others counts
    1 / (q + 1) (the expectation of a random tie-break); all abstaining counts 0."""
    n = answers.shape[1]
    out = []
    for k in range(1, n + 1):
        credit = []
        for row in answers:
            for sub in combinations(range(n), k):
                codes, votes = np.unique([row[i] for i in sub if row[i] >= 0], return_counts=True)
                top = codes[votes == votes.max()] if len(codes) else []
                credit.append((correct_code in top) / len(top) if len(top) else 0.0)
        out.append(np.mean(credit))
    return np.array(out)


def test_maj_at_k_majority_ties_and_abstentions():
    # answer codes per seed column, -1 = abstain, 9 = the correct answer
    answers = np.array(
        [
            [0, 9, 9],  # majority correct
            [0, 9, 2],  # three-way tie: the correct answer wins a third of the time
            [-1, -1, 9],  # two abstain: the only answer wins (correct)
            [-1, -1, -1],  # nobody answered: wrong
        ]
    )
    maj = stats.maj_at_k(answers, correct_code=9)
    assert maj[0] == pytest.approx(np.mean(answers == 9))  # maj@1 = pass@1
    assert maj[2] == pytest.approx((1 + 1 / 3 + 1 + 0) / 4)
    # maj@2 by hand: row 0 subsets (0,1) tie -> 1/2, (0,2) -> 1/2, (1,2) -> 1: 2/3; row 1: (0,1) 1/2, (0,2) 0,
    # (1,2) 1/2: 1/3; row 2: (0,1) abstain 0, (0,2) 1, (1,2) 1: 2/3
    assert maj[1] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3 + 0) / 4)


def test_maj_at_k_counting_equals_enumerating_the_subsets():
    rng = np.random.default_rng(3)
    for n in range(1, 8):
        for _ in range(6):
            answers = rng.integers(-1, 4, size=(5, n))  # code 3 = correct, -1 abstains, 0..2 wrong answers
            assert stats.maj_at_k(answers, correct_code=3) == pytest.approx(brute_maj_at_k(answers, 3), abs=1e-12)
    assert stats.maj_credit(0, 2, (1,)) == (0.0, 0.0, 0.0)
    assert stats.maj_credit(1, 0, (1,)) == (0.5, 0.5)


def test_maj_at_k_does_not_depend_on_the_seed_labels_and_scales_to_many_seeds():
    # one seed right ("1"), one wrong ("2") on every problem: swapping which seed number is right changes nothing
    for right, wrong in ((7, 11), (11, 7)):
        g = grades({"dense": {right: [True] * 10, wrong: [False] * 10}})
        assert stats.compute_stats(g, 1)[0]["maj_at_k"] == pytest.approx([0.5, 0.5])
    # 40 seeds: 2^40 subsets cannot be enumerated; 17 correct against two wrong answers of 13 and 10 votes
    answers = np.array([[9] * 17 + [1] * 13 + [2] * 10])
    maj = stats.maj_at_k(answers, correct_code=9)
    assert maj[0] == pytest.approx(17 / 40) and maj[-1] == 1.0
    assert maj[1] == pytest.approx((17 * 16 + 17 * 23) / (40 * 39))  # both correct, or one correct and a 1-1 tie


def test_maj_at_k_answers_are_normalised():
    # "025" and " 25 " are one answer (the grader's integer rule); no answer abstains
    three = grades(
        {"dense": {1: [False], 2: [True], 3: [True]}},
        answers={"dense": {1: ["7"], 2: ["025"], 3: [" 25 "]}},
    )
    assert stats.compute_stats(three, 1)[0]["maj_at_k"][-1] == 1.0
    assert stats.answer_key(" 0 25") == "25" and stats.answer_key(None) is None and stats.answer_key("  ") is None
    assert stats.answer_key("\\frac{1}{2}") == "\\frac{1}{2}"
    # correct answers written differently vote together: 104 (seed 2) and "104." (seed 3) beat the wrong 3 (seed 1)
    four = grades(
        {"dense": {1: [False], 2: [True], 3: [True]}},
        answers={"dense": {1: ["3"], 2: ["104"], 3: ["104."]}},
    )
    # maj@2: the pairs (1, 2) and (1, 3) tie (1/2 each), (2, 3) agree on the correct answer
    assert stats.compute_stats(four, 1)[0]["maj_at_k"] == pytest.approx([2 / 3, 2 / 3, 1.0])
    # wrong answers by the grader's integer rule: 27.0 and 27 (both wrong) outvote the correct 5
    five = grades(
        {"dense": {1: [True], 2: [False], 3: [False]}},
        answers={"dense": {1: ["5"], 2: ["27.0"], 3: ["27"]}},
    )
    assert stats.compute_stats(five, 1)[0]["maj_at_k"][-1] == 0.0
    assert stats.answer_key("25.0") == "25"
    # an answer graded correct once is correct in every trace: a grader timeout on the same string does not split it
    six = grades(
        {"dense": {1: [True], 2: [False], 3: [False], 4: [False], 5: [False]}},
        answers={"dense": {1: ["\\frac{1}{2}"], 2: ["\\frac{1}{2}"], 3: ["\\frac{1}{2}"], 4: ["3"], 5: ["3"]}},
    )
    assert stats.compute_stats(six, 1)[0]["maj_at_k"][-1] == 1.0
    # an unparsable answer abstains: two identical hedges do not outvote the one correct letter
    seven = grades(
        {"dense": {1: [True], 2: [False], 3: [False]}},
        answers={"dense": {1: ["C"], 2: ["C or D"], 3: ["C or D"]}},
    )
    seven.loc[seven["extracted"] == "C or D", "verdict"] = "unparsable"
    assert stats.compute_stats(seven, 1)[0]["maj_at_k"][-1] == 1.0


def test_identical_variant_has_zero_difference_and_p_one():
    rng = np.random.default_rng(1)
    outcome = {7: rng.random(50) < 0.5, 11: rng.random(50) < 0.5}
    rows = by_variant(stats.compute_stats(grades({"dense": outcome, "wanda-uniform-s0.50": outcome}), 1))
    r = rows["wanda-uniform-s0.50"]
    assert r["diff_vs_dense"] == 0.0 and r["diff_ci_low"] == 0.0 and r["diff_ci_high"] == 0.0
    assert r["diff_p_value"] == 1.0 and r["diff_significant"] is False
    assert r["n_paired"] == 100
    assert rows["dense"]["diff_vs_dense"] is None


def test_strongly_better_variant_is_significant():
    rng = np.random.default_rng(2)
    dense = {s: rng.random(60) < 0.2 for s in (7, 11, 42)}
    better = {s: rng.random(60) < 0.9 for s in (7, 11, 42)}
    r = by_variant(stats.compute_stats(grades({"dense": dense, "magnitude-owl-s0.30": better}), 1))
    r = r["magnitude-owl-s0.30"]
    acc = lambda d: np.mean([np.mean(v) for v in d.values()])  # noqa: E731
    assert r["diff_vs_dense"] == pytest.approx(acc(better) - acc(dense))
    assert r["diff_ci_low"] <= r["diff_vs_dense"] <= r["diff_ci_high"] and r["diff_ci_low"] > 0.4
    assert r["diff_p_value"] < 1e-6 and r["diff_significant"] is True


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test, by hand: 2 * P(Binomial(b + c, 1/2) <= min(b, c)), capped at 1."""
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


def test_sign_flip_p_value_equals_exact_mcnemar_with_one_seed():
    # hand-computed: b = 3 better, c = 0 worse -> 2 / 8; b = 8, c = 1 -> 2 * (1 + 9) / 512
    assert mcnemar_exact(3, 0) == 0.25 and mcnemar_exact(8, 1) == pytest.approx(20 / 512)
    for b, c in ((3, 0), (8, 1), (5, 5), (12, 2), (0, 7), (30, 14)):
        variant = np.array([[1.0]] * b + [[0.0]] * c + [[1.0]] * 4 + [[0.0]] * 6)  # + 10 concordant problems
        dense = np.array([[0.0]] * b + [[1.0]] * c + [[1.0]] * 4 + [[0.0]] * 6)
        d = stats.paired_difference(variant, dense)
        assert d["p_value"] == pytest.approx(mcnemar_exact(b, c), rel=1e-12), (b, c)
        assert d["diff"] == pytest.approx((b - c) / (b + c + 10))


def test_sign_flip_p_value_against_enumeration_with_several_seeds():
    # two seeds: per-problem sums k in {-2..2}; by hand, k = (2, 1): sums +-2 +-1 = {3, 1, -1, -3}, |T*| >= 3 -> 1/2
    assert stats.sign_flip_p_value([2, 1]) == 0.5
    assert stats.sign_flip_p_value([0, 0, 0]) == 1.0 and stats.sign_flip_p_value([1, -1]) == 1.0
    rng = np.random.default_rng(5)
    for _ in range(5):
        k = rng.integers(-3, 4, size=10)
        signs = np.array(list(itertools.product((-1, 1), repeat=10)))
        brute = np.mean(np.abs(signs @ np.abs(k)) >= abs(k.sum()))
        assert stats.sign_flip_p_value(k) == pytest.approx(brute, rel=1e-12)


def test_few_discordant_problems_are_not_significant():
    # 4 of 80 problems better, none worse, one seed: exact p = 2 / 16 = 0.125 (a bootstrap p-value would say ~0.03)
    variant = np.array([[1.0]] * 4 + [[0.0]] * 76)
    d = stats.paired_difference(variant, np.zeros((80, 1)))
    assert d["p_value"] == 0.125 and d["ci_low"] >= 0  # the descriptive interval touches 0


def test_paired_bootstrap_interval_hand_computed():
    # 2 problems, differences (1, 0): the resampled mean is 0, 1/2, 1 with probability 1/4, 1/2, 1/4, so the 95 %
    # interval is [0, 1]; 10 problems with differences (1, 1, 1, 0 x 7): P(resampled mean = 0) = 0.7^10 = 2.8 %
    d = stats.paired_difference(np.array([[1.0], [1.0]]), np.array([[0.0], [1.0]]), n_boot=20000)
    assert d["diff"] == 0.5 and d["n_paired"] == 2 and (d["ci_low"], d["ci_high"]) == (0.0, 1.0)
    boot = stats.bootstrap_means(np.array([1.0] * 3 + [0.0] * 7), n_boot=20000)
    assert np.mean(boot == 0) == pytest.approx(0.7**10, abs=0.005)
    assert np.mean(boot) == pytest.approx(0.3, abs=0.005)


def test_paired_difference_uses_only_shared_problem_seed_pairs():
    # dense has seeds 7 and 11, the variant only seed 7 and one extra problem: 3 pairs
    g = pd.concat(
        [
            grades({"dense": {7: [1, 1, 0], 11: [0, 0, 0]}}),
            grades({"wanda-owl-s0.50": {7: [1, 0, 0, 1]}}),
        ]
    )
    r = by_variant(stats.compute_stats(g, 1))["wanda-owl-s0.50"]
    assert r["n_paired"] == 3
    assert r["diff_vs_dense"] == pytest.approx(((1 - 1) + (0 - 1) + (0 - 0)) / 3)


def test_paired_p_value_with_several_seeds_tests_the_per_problem_sums():
    """paired_difference hands the sign-flip test each problem's sum of paired differences over its seeds, k_p, not
    only its sign: with one seed the two coincide (every test above), with three they do not. By hand, k = (3, 2, -1,
    1, 0): T = 5, and of the 16 sign patterns of (3, 2, 1, 1) six reach |T*| >= 5 (7, 5, 5 and their negatives);
    signs alone, (1, 1, -1, 1), would give T = 2 and p = 10 / 16."""
    variant = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    dense = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=float)
    d = stats.paired_difference(variant, dense)
    assert d["p_value"] == 6 / 16 and d["n_paired"] == 15
    assert d["diff"] == pytest.approx((3 + 2 - 1 + 1 + 0) / 15)
    # an unpaired trace (NaN on either side) is left out of its problem's sum: k = (2, 2, 0, 1, 0), not (3, 2, -1, ...)
    dense[0, 0], variant[2, 1] = np.nan, np.nan
    k = np.array([2, 2, 0, 1, 0])
    signs = np.array(list(itertools.product((-1, 1), repeat=len(k))))
    brute = np.mean(np.abs(signs @ np.abs(k)) >= abs(k.sum()))
    d = stats.paired_difference(variant, dense)
    assert d["p_value"] == pytest.approx(brute, rel=1e-12) and d["n_paired"] == 13


def test_no_dense_in_the_grid_leaves_the_difference_null_and_rows_fit_the_schema(tmp_path):
    g = grades({"wanda-owl-s0.50": {7: [1, 0]}, "shortgpt-n2": {7: [0, 0]}})
    rows = stats.compute_stats(g, 1)
    assert all(r["diff_vs_dense"] is None for r in rows)
    path = artifacts.write("stats", rows, tmp_path / "stats.parquet")
    back = artifacts.read("stats", path).to_pylist()
    assert [r["variant"] for r in back] == ["wanda-owl-s0.50", "shortgpt-n2"]
    assert back[0]["pass_at_k"] == [0.5]


def test_rows_are_ordered_and_one_per_cell():
    g = pd.concat(
        [grades({"dense": {7: [1, 0]}, "wanda-owl-s0.50": {7: [0, 0]}}, budget=b) for b in (256, 16)]
        + [grades({"dense": {7: [1]}}, bench="aime24")]
    )
    rows = stats.compute_stats(g, 1)
    keys = [(r["bench"], r["variant"], r["budget"]) for r in rows]
    assert keys == [
        ("aime24", "dense", 64),
        ("demo", "dense", 16),
        ("demo", "dense", 256),
        ("demo", "wanda-owl-s0.50", 16),
        ("demo", "wanda-owl-s0.50", 256),
    ]


def test_duplicate_trace_is_an_error():
    g = grades({"dense": {7: [1, 0]}})
    with pytest.raises(ValueError, match="duplicate row for problem 'p0000', seed 7"):
        stats.compute_stats(pd.concat([g, g.iloc[:1]]), 1)


def test_variant_order_groups_allocations_of_one_sparsity():
    vs = ["wanda-owl-s0.50", "dense", "shortgpt-n3", "magnitude-layerif-s0.30", "magnitude-uniform-s0.50"]
    vs += ["magnitude-uniform-s0.30", "shortgpt-s0.30", "magnitude-owl-s0.30"]
    assert stats.variant_order(vs) == [
        "dense",
        "magnitude-uniform-s0.30",
        "magnitude-owl-s0.30",
        "magnitude-layerif-s0.30",
        "magnitude-uniform-s0.50",
        "wanda-owl-s0.50",
        "shortgpt-s0.30",
        "shortgpt-n3",
    ]


def test_summaries_mark_significant_differences(tmp_path):
    rng = np.random.default_rng(4)
    dense = {7: rng.random(60) < 0.8, 11: rng.random(60) < 0.8}
    g = grades({"dense": dense, "wanda-uniform-s0.50": {7: np.zeros(60), 11: np.zeros(60)}, "wanda-owl-s0.30": dense})
    st = artifacts.read("stats", artifacts.write("stats", stats.compute_stats(g, 1), tmp_path / "s.parquet"))
    st = st.to_pandas()
    md = stats.summary_markdown(st)
    lines = {}
    for line in md.splitlines():
        if line.startswith("| "):
            lines.setdefault(line.split("|")[1].strip(), line)  # the accuracy table comes first
    assert "▼" in lines["wanda-uniform-s0.50"] and "▼" not in lines["wanda-owl-s0.30"]
    assert "▼" not in lines["dense"] and "pass@2 @ max B" in md
    assert md.count("| wanda-uniform-s0.50 |") == 2  # accuracy table and difference table
    assert "*" in md.split("Difference vs dense")[-1].split("wanda-uniform-s0.50")[1].splitlines()[0]
    html = stats.summary_html(st)
    assert html.count("class='worse'") == 2 and "<table>" in html
    csv = stats.summary_csv(st)
    assert {"accuracy_mean", "accuracy_std", "accuracy_ci_low", "pass_at_n", "maj_at_n", "diff_p_value"} <= set(csv)
    assert csv.loc[csv["variant"] == "wanda-uniform-s0.50", "diff_significant"].tolist() == [True]
    assert math.isnan(csv.loc[csv["variant"] == "dense", "diff_vs_dense"].iloc[0])


def test_holm_adjustment_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = stats.holm([0.01, 0.04, math.nan, 0.03, 0.005])
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(adjusted[2])
    assert stats.holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def test_significance_is_holm_adjusted_over_the_variants_and_budgets_of_a_benchmark():
    # one seed, 80 problems: a variant worse on 9 problems and better on 1 has p = 2 * 11 / 1024 = 0.0215 at each of
    # 2 budgets; alone, Holm doubles it (significant); beside 2 variants equal to dense, the family has 6 tests and
    # Holm multiplies the smallest by 6 (not significant)
    dense = [1] * 40 + [0] * 40
    worse = [0] * 9 + [1] * 31 + [1] + [0] * 39
    same = {"wanda-uniform-s0.50": {7: dense}, "magnitude-owl-s0.50": {7: dense}}
    g = pd.concat([grades({"dense": {7: dense}, "wanda-owl-s0.50": {7: worse}, **same}, budget=b) for b in (16, 64)])
    alone, family = (
        {(r["variant"], r["budget"]): r for r in stats.compute_stats(part, 1)}
        for part in (g[g["variant"].isin(["dense", "wanda-owl-s0.50"])], g)
    )
    r = alone[("wanda-owl-s0.50", 64)]
    assert r["diff_p_value"] == pytest.approx(2 * 11 / 1024) and r["diff_p_holm"] == pytest.approx(2 * 2 * 11 / 1024)
    assert r["diff_significant"] is True
    r = family[("wanda-owl-s0.50", 64)]
    assert r["diff_p_value"] == pytest.approx(2 * 11 / 1024)
    assert r["diff_p_holm"] == pytest.approx(min(1, 6 * 2 * 11 / 1024)) and r["diff_significant"] is False
    assert family[("dense", 64)]["diff_p_holm"] is None


def test_missing_traces_are_an_error_naming_the_cell():
    g = grades({"dense": {7: [1, 1, 0, 0], 11: [1, 0, 1, 0]}})
    with pytest.raises(ValueError, match=r"variant 'dense', bench 'demo', budget 64: 1 of the 8 \(problem, seed\)"):
        stats.compute_stats(g.drop(index=5), 1)


def test_summary_labels_a_row_with_fewer_seeds():
    g = pd.concat([grades({"dense": {7: [1, 0, 1], 11: [1, 1, 1]}}), grades({"wanda-owl-s0.50": {7: [1, 0, 0]}})])
    st = pd.DataFrame(stats.compute_stats(g, 1))
    md = stats.summary_markdown(st)
    row = next(line for line in md.splitlines() if line.startswith("| wanda-owl-s0.50 |"))
    assert "pass@2 @ max B" in md and "0.333 (k=1)" in row
    assert "(k=1)" in stats.summary_html(st)
    assert "(2 seeds; n = 3 problems)" in md
    one = stats.summary_markdown(pd.DataFrame(stats.compute_stats(grades({"dense": {7: [1, 0, 1]}}), 1)))
    assert "(1 seed; n = 3 problems)" in one and "1 seeds" not in one


def test_summary_labels_an_accuracy_cell_with_fewer_seeds_or_problems_at_any_budget():
    """A seed missing at a budget below the largest, or a problem missing from a variant, used to leave its accuracy
    cells unmarked: they averaged 1 seed (or 2 problems) under a header of 2 seeds and 3 problems."""
    full = {"dense": {7: [1, 0, 1], 11: [1, 1, 1]}, "wanda-owl-s0.50": {7: [1, 0, 0], 11: [0, 0, 1]}}
    g = pd.concat([grades(full, budget=16), grades(full, budget=64)], ignore_index=True)
    g = g[~((g["variant"] == "wanda-owl-s0.50") & (g["budget"] == 16) & (g["seed"] == 11))]
    g = g[~((g["variant"] == "dense") & (g["budget"] == 64) & (g["problem_id"] == "p0002"))]
    st = pd.DataFrame(stats.compute_stats(g, 1))
    md = stats.summary_markdown(st)
    assert "(2 seeds; n = 3 problems)" in md
    accuracy = md.split("\nDifference vs dense:\n")[0].splitlines()
    rows = {line.split(" | ")[0]: line.split(" | ") for line in accuracy if line.startswith("| ") and "[" in line}
    wanda, dense = rows["| wanda-owl-s0.50"], rows["| dense"]
    assert wanda[1].startswith("0.333 [") and wanda[1].endswith("] (k=1)")  # B=16: seed 7 only
    assert "(k=" not in wanda[2] and "(n=" not in wanda[2]  # B=64: complete
    assert dense[2].endswith("] (n=2)") and "(n=" not in dense[1]  # B=64: 2 of the 3 problems
    page = stats.summary_html(st)
    assert "] (k=1)</td>" in page and "] (n=2)</td>" in page


def test_maj_at_k_adds_the_problems_credits_in_problem_order_bit_for_bit():
    """The vectorised maj@k (one ``maj_credit`` per distinct vote signature) gives the very floats of adding each
    problem's credit in turn, whatever the correct answer's code and with abstaining rows and columns."""
    rng = np.random.default_rng(11)
    for correct_code in (0, 3, stats.CORRECT_CODE):
        for n in (1, 2, 3, 5, 8):
            answers = rng.integers(-1, 5, size=(60, n))
            answers[rng.random(answers.shape) < 0.3] = correct_code
            answers[::7] = -1  # problems nobody answered
            total = np.zeros(n)
            for row in answers:
                codes, counts = np.unique(row[row >= 0], return_counts=True)
                wrong = tuple(sorted(counts[codes != correct_code].tolist(), reverse=True))
                total += stats.maj_credit(int(counts[codes == correct_code].sum()), int((row < 0).sum()), wrong)
            assert stats.maj_at_k(answers, correct_code).tobytes() == (total / len(answers)).tobytes()
    assert np.isnan(stats.maj_at_k(np.zeros((0, 3), dtype=np.int64))).all()


def test_aggregate_writes_nothing_from_an_empty_or_repeated_grades_file(tmp_path):
    """An empty grades file (a benchmark without problems) would silently drop its cells from the summary, and the
    scores table used to be written before the statistics found a repeated file."""
    from prunetts import jobs

    full = artifacts.write("grades", grades({"dense": {7: [1, 0]}}).to_dict("records"), tmp_path / "a.parquet")
    empty = artifacts.write("grades", [], tmp_path / "e.parquet")
    outs = [tmp_path / n for n in ("scores.parquet", "summary.md", "summary.csv", "stats.parquet", "summary.html")]
    with pytest.raises(artifacts.ArtifactError, match=r"e\.parquet: grades artifact without rows \(1 of 2 empty\)"):
        jobs.aggregate([str(full), str(empty)], *map(str, outs))
    with pytest.raises(ValueError, match="duplicate row for problem 'p0000', seed 7"):
        jobs.aggregate([str(full), str(full)], *map(str, outs))
    assert not any(p.exists() for p in outs)
    jobs.aggregate([str(full)], *map(str, outs))
    assert all(p.exists() for p in outs)


def test_grader_failures_are_a_column_and_named_under_the_tables():
    """Traces the grader could not judge count wrong, and each cell that has them is named: a loaded grader must not
    pass for a pruning effect."""
    g = grades({"dense": {7: [1, 0, 0, 1]}, "wanda-owl-s0.50": {7: [1, 0, 0, 0]}})
    g.loc[(g["variant"] == "wanda-owl-s0.50") & (g["problem_id"] == "p0001"), "verdict"] = "timeout"
    g.loc[(g["variant"] == "wanda-owl-s0.50") & (g["problem_id"] == "p0002"), "verdict"] = "error"
    rows = by_variant(stats.compute_stats(g, 1))
    assert rows["dense"]["grader_failure_rate"] == 0.0 and rows["wanda-owl-s0.50"]["grader_failure_rate"] == 0.5
    assert rows["wanda-owl-s0.50"]["accuracy_mean"] == 0.25  # counted wrong
    st = artifacts.table("stats", list(rows.values())).to_pandas()
    note = "Grader timeouts or errors, counted wrong in the accuracy, pass@n and the difference vs dense (raise "
    note += "grading.timeout_s and rerun grade): "
    note += "wanda-owl-s0.50 @ B=64"
    assert f"{note}: 2 of 4 traces" in stats.summary_markdown(st) and note in stats.summary_html(st)
    assert stats.summary_csv(st)["grader_failure_rate"].tolist() == [0.0, 0.5]
    clean = artifacts.table("stats", stats.compute_stats(grades({"dense": {7: [1, 0]}}), 1)).to_pandas()
    assert "Grader timeouts" not in stats.summary_markdown(clean) + stats.summary_html(clean)


def test_the_grader_failures_note_counts_the_traces_of_every_seed():
    """The note's count is the cell's failed traces over problems x seeds, rounded from the rate (15 of 22 is a rate
    whose product with 22 falls just below 15)."""
    g = grades({"dense": {7: [1] * 11, 11: [1] * 11}, "wanda-owl-s0.50": {7: [0] * 11, 11: [0] * 11}})
    failed = g.index[g["variant"] == "wanda-owl-s0.50"][:15]
    g.loc[failed, "verdict"] = "timeout"
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    assert "wanda-owl-s0.50 @ B=64: 15 of 22 traces" in stats.summary_markdown(st)


def test_aggregate_warns_of_the_cells_with_grader_failures(tmp_path, caplog):
    import logging

    from prunetts import jobs

    g = grades({"dense": {7: [1, 0]}, "wanda-owl-s0.50": {7: [1, 0]}})
    outs = [tmp_path / n for n in ("scores.parquet", "summary.md", "summary.csv", "stats.parquet", "summary.html")]
    clean = artifacts.write("grades", g.to_dict("records"), tmp_path / "clean.parquet")
    with caplog.at_level(logging.WARNING, logger="prunetts"):
        jobs.aggregate([str(clean)], *map(str, outs))
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    g.loc[(g["variant"] == "dense") & (g["problem_id"] == "p0001"), "verdict"] = "error"
    failing = artifacts.write("grades", g.to_dict("records"), tmp_path / "failing.parquet")
    with caplog.at_level(logging.WARNING, logger="prunetts"):
        jobs.aggregate([str(failing)], *map(str, outs))
    assert "1 of 2 cells hold traces the grader could not judge" in caplog.text


def test_summary_shows_the_answer_cut_share_and_marks_every_top_cell_with_fewer_problems():
    """Answers cut at max_gen_toks are graded as they stand, so a column says how many there were; pass@n and maj@n
    of a row over fewer problems than the header's carry its "(n=p)" as its accuracy does."""
    g = grades({"dense": {7: [1, 0, 1, 1], 11: [1, 1, 1, 0]}, "wanda-owl-s0.50": {7: [1, 0, 0, 1], 11: [0, 0, 1, 1]}})
    g = g[~((g["variant"] == "wanda-owl-s0.50") & (g["problem_id"] == "p0003"))]
    g.loc[g.index[g["variant"] == "wanda-owl-s0.50"][0], "answer_stopped"] = False  # 1 of its 6 answers
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    md = stats.summary_markdown(st)
    assert "| budget hit @ max B | answer cut @ max B |" in md and "answer cut: the share of answers cut" in md
    rows = {}
    for line in md.splitlines():
        if "[" in line:  # the accuracy table comes before the difference table
            rows.setdefault(line.split(" | ")[0], line.strip("| ").split(" | "))
    wanda, dense = rows["| wanda-owl-s0.50"], rows["| dense"]
    assert wanda[-1] == "0.17" and dense[-1] == "0.00"
    assert all(c.endswith(" (n=3)") for c in wanda[1:4])  # accuracy, pass@2, maj@2
    assert "(n=" not in "".join(dense)
    page = stats.summary_html(st)
    assert "<th>answer cut @ max B</th>" in page and "<td>0.17</td>" in page and " (n=3)</td>" in page


def test_summary_prints_one_value_one_way():
    """17 / 80 computed as a mean over seeds and as a vote share differ in the last bit; both print 0.213 (f-strings
    printed 0.212 for one and 0.213 for the other), and a negative bound keeps its sign."""
    assert (
        stats.number_text(0.21249999999999997, 3)
        == stats.number_text(0.2125, 3)
        == stats.number_text(0.21250000000000002, 3)
        == "0.213"
    )
    assert stats.number_text(0.0375, 3) == "0.038" and stats.number_text(0.0375, 2) == "0.04"
    assert stats.number_text(-0.003, 2, sign=True) == "-0.00" and stats.number_text(0.0, 3, sign=True) == "+0.000"
    assert stats.number_text(0.0, 2) == "0.00" and stats.number_text(114.55, 1) == "114.6"
    # a zero difference of two float sums (3 seeds: -6.9e-18) prints as the exact zero does
    assert stats.number_text(-6.9e-18, 3, sign=True) == stats.number_text(0.0, 3, sign=True) == "+0.000"
    assert stats.number_text(8192.05, 1) == "8192.1" and stats.number_text(float("nan"), 3) == "nan"
    g = grades({"dense": {7: [1] * 17 + [0] * 63}})
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    st["accuracy_mean"] = 0.21249999999999997
    st["maj_at_k"] = [[0.21250000000000002]]
    st["pass_at_k"] = [[0.2125]]
    row = next(line for line in stats.summary_markdown(st).splitlines() if line.startswith("| dense |"))
    cells = row.strip("| ").split(" | ")
    assert cells[1].startswith("0.213 [") and cells[2] == cells[3] == "0.213"
