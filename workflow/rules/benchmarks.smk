rule prepare_benchmark:
    input:
        benchmark_source_input,
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
        # cached rule: Snakemake's cache key covers params and inputs, not wildcards, so the script reads them here
        bench=lambda w: w.bench,
        options=benchmark_options,
        impl=IMPL_VERSION["prepare_benchmark"],
    script:
        "../../scripts/prepare_benchmark.py"
