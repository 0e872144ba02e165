rule prepare_calibration:
    input:
        base_model_tokenizer_input,
        texts=calibration_source_input,
    output:
        "results/calibration/model~{model}.parquet",
    log:
        "results/logs/prepare_calibration/model~{model}.log",
    cache: True
    conda:
        ENV
    resources:
        **rule_resources("prepare_calibration"),
    params:
        model=lambda w: w.model,  # the cache key ignores wildcards (see prepare_benchmark)
        model_path=base_model_path,
        calibration=calibration_settings(config["calibration"]),
        trust_remote_code=trust_remote_code,
        impl=IMPL_VERSION["prepare_calibration"],
    script:
        "../../scripts/prepare_calibration.py"


rule capture:
    input:
        base_model_input,
        calibration="results/calibration/model~{model}.parquet",
    output:
        # multiext: a cached rule's several outputs must share one prefix
        multiext(
            "results/capture/model~{model}/",
            linear="linear_stats.parquet",
            layers="layer_stats.parquet",
        ),
    log:
        "results/logs/capture/model~{model}.log",
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        **rule_resources("capture"),
    params:
        model=lambda w: w.model,  # the cache key ignores wildcards (see prepare_benchmark)
        model_path=base_model_path,
        capture=config["capture"],
        trust_remote_code=trust_remote_code,
        impl=IMPL_VERSION["capture"],
    script:
        "../../scripts/capture.py"


rule influence:
    input:
        base_model_input,
        texts=influence_source_input,
    output:
        "results/influence/model~{model}.parquet",
    log:
        "results/logs/influence/model~{model}.log",
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        **rule_resources("influence"),
    params:
        model=lambda w: w.model,  # the cache key ignores wildcards (see prepare_benchmark)
        model_path=base_model_path,
        influence=influence_settings(config["influence"]),
        calibration=influence_calibration,
        trust_remote_code=trust_remote_code,
        impl=IMPL_VERSION["influence"],
    script:
        "../../scripts/influence.py"


rule layer_scores:
    input:
        base_model_input,
        scores_input=layer_scores_input,
    output:
        "results/scores/model~{model}/scorer~{scorer}.parquet",
    log:
        "results/logs/layer_scores/model~{model}_scorer~{scorer}.log",
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        **rule_resources("layer_scores"),
    params:
        model=lambda w: w.model,  # the cache key ignores wildcards (see prepare_benchmark)
        model_path=base_model_path,
        scorer=lambda w: w.scorer,
        owl_m=lambda w: config["pruning"]["owl"]["m"] if w.scorer == "owl" else None,
        impl=IMPL_VERSION["layer_scores"],
    script:
        "../../scripts/layer_scores.py"
