"""Implementation version of each stage.

Every rule passes its stage's version as a param and every artifact row stores it (figures: the four plot rules share
"plot" and store nothing), so bumping a number here reruns that stage and everything downstream (Snakemake's params
trigger) and old artifacts stay self-describing.
"""

IMPL_VERSION = {
    "prepare_benchmark": 1,
    "prepare_calibration": 2,  # 2: paper mode tokenizes with special tokens, as the reference
    "capture": 3,
    "influence": 5,  # 5: each gradient sketched from its token factors (the same sketch, float32 rounding; no weight
    # gradients); 4: a repeated text counts once in the splits; 3: CountSketch of the gradients
    # (not bumped: repeats count once beside a validation source too; no shipped config gives one)
    "layer_scores": 1,
    "allocate": 3,  # 3: LayerIF min-max after smoothing (paper code), magnitude-OWL without the 0.01 clamp
    "prune": 4,  # 4: stored values written as stored when the compute dtype rounds them
    # (not bumped: ShortGPT writes max_window_layers where a Qwen config turns the sliding window on but leaves it out;
    # every shipped config states it with the window off, so their checkpoints are byte for byte the same;
    # a sharded checkpoint's index records total_parameters as save_pretrained does: metadata no loader reads)
    "generate": 4,  # 4: top-p on the renormalised top-k distribution (vLLM's order); answer_stopped column
    # (not bumped: an empty answer, not one token, where the thinking filled the model's context on transformers;
    # no shipped config reaches that, and a bump would regenerate every trace)
    # 10: letters inside a brace group the prose tail ends in are math; a lone variable ends a prose line; a row
    # break's vertical space (\\[2pt]) dropped
    # 9: SI unit symbols dropped only against a gold without letters outside LaTeX commands, also before a full stop
    # 8: answer_stopped column (from the generations)
    # 7: unit symbols after a number dropped ("The area is 12 m^2", "10 N", "10 m/s": 12, 10, 10, not products)
    # 6: a prose answer line graded on the expression it ends in; math environments as $...$ without inner spaces
    # 5: a one-line tail after the last <|im_start|> is kept (the harness), not dropped as its "first line"
    # 11: thin-space digit groups, degree sign, inequality vs interval, decimals to a relative 5e-6, units such as cm^2
    # and km/h (also in a box), "6 - 5 i", prose hedges unparsable; GPQA "(C) or D" unparsable, "C, 2A + H2" is C
    # 12: a box is a whole control word: "\\boxedd{4}" after "\\boxed{3}" is not the last box (3 is graded)
    "grade": 12,  # 4: variables after LaTeX kept, units after a number dropped; GPQA lead-ins ("The answer is C")
    # 5: Wilson accuracy interval, maj@k ties split evenly, Holm-adjusted significance; 4: maj@k: an unparsable
    # answer abstains (3: correct answers vote together, integer rule)
    # 8: answer_cut_rate per cell; 7: grader_failure_rate (timeout / error traces) per cell, listed under the
    # summary's tables
    # 6: summary cells averaging fewer seeds / problems than the header are marked at every budget
    # 9: summaries show the answer-cut share at the largest budget and round halves up on the decimal value
    # 10: ... on 15 significant digits, a float-noise zero as zero; legend and grader note name their columns
    # 11: the legend says that an answerless seed abstains from maj@n
    "aggregate": 11,
    # 2: per-layer figure with attention and MLP apart; ShortGPT by layer count has its own line style
    # 3: labels rounded as the summaries round them (stats.number_text)
    # 4: a variant with fewer seeds than the others says so (legend, heatmap rows, titles' seed ranges)
    # 5: the difference heatmap counts the seeds each difference pairs with dense (dense with a failed seed); the
    # per-layer figure draws the layer scores in colours no method has
    "plot": 5,  # the four figure rules (prunetts.plots)
}


def package_versions() -> dict:
    """What made a pruned checkpoint (its ``prunetts_prune.json``): prunetts, the stages' versions and the packages
    whose numerics it depends on."""
    from importlib.metadata import version

    from prunetts import __version__

    return {
        "prunetts": __version__,
        "prune_impl": IMPL_VERSION["prune"],
        "influence_impl": IMPL_VERSION["influence"],
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "safetensors")},
    }
