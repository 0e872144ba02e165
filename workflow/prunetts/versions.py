"""Implementation version of each stage.

Every rule passes its stage's version as a param and every artifact row stores it (figures: the four plot rules share
"plot" and store nothing), so bumping a number here reruns that stage and everything downstream (Snakemake's params
trigger) and old artifacts stay self-describing.
"""

IMPL_VERSION = {
    "prepare_benchmark": 1,
    "prepare_calibration": 2,  # 2: paper mode tokenizes with special tokens, as the reference
    "capture": 3,
    "influence": 3,  # 3: CountSketch of the gradients (was a Kronecker Gaussian sketch); 2: disjoint text splits
    "layer_scores": 1,
    "allocate": 3,  # 3: LayerIF min-max after smoothing (paper code), magnitude-OWL without the 0.01 clamp
    "prune": 4,  # 4: stored values written as stored when the compute dtype rounds them
    "generate": 3,  # 3: answers stop at the model's context; generation_config.json's end ids stop generation
    "grade": 3,  # 3: math Answer: fallback graded on its first line, unboxed when prose; the last box only; GPQA hedges
    "aggregate": 3,  # 3: maj@k votes: correct answers vote together, the grader's integer rule
    "plot": 1,  # the four figure rules (prunetts.plots)
}
