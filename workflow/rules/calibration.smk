rule prepare_calibration:
    input:
        base_model_input,
    output:
        "results/calibration/model~{model}.parquet",
    log:
        "results/logs/prepare_calibration/model~{model}.log",
    conda:
        ENV
    params:
        model_path=base_model_path,
        calibration=config["calibration"],
        trust_remote_code=lambda w: model_cfg(w).get("trust_remote_code", False),
        impl=IMPL_VERSION["prepare_calibration"],
    script:
        "../../scripts/prepare_calibration.py"


rule capture:
    input:
        base_model_input,
        calibration="results/calibration/model~{model}.parquet",
    output:
        "results/capture/model~{model}/linear_stats.parquet",
    log:
        "results/logs/capture/model~{model}.log",
    conda:
        ENV
    threads: 2
    params:
        model_path=base_model_path,
        capture=config["capture"],
        trust_remote_code=lambda w: model_cfg(w).get("trust_remote_code", False),
        impl=IMPL_VERSION["capture"],
    script:
        "../../scripts/capture.py"
