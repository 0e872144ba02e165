rule prepare_benchmark:
    output:
        "results/benchmarks/bench~{bench}.parquet",
    log:
        "results/logs/prepare_benchmark/bench~{bench}.log",
    cache: True
    conda:
        ENV
    resources:
        **rule_resources("prepare_benchmark"),
    params:
        options=lambda w: config["benchmarks"][w.bench],
        impl=IMPL_VERSION["prepare_benchmark"],
    script:
        "../../scripts/prepare_benchmark.py"
