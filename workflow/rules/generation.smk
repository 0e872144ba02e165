rule generate:
    input:
        variant_model_input,
        bench="results/benchmarks/bench~{bench}.parquet",
    output:
        "results/generations/model~{model}/variant~{variant}/bench~{bench}/seed~{seed}.parquet",
    log:
        "results/logs/generate/model~{model}_variant~{variant}_bench~{bench}_seed~{seed}.log",
    benchmark:
        "results/logs/generate/model~{model}_variant~{variant}_bench~{bench}_seed~{seed}.benchmark.tsv"
    conda:
        GEN_ENV
    threads: 1
    resources:
        **rule_resources("generate"),
    params:
        model_path=variant_model_path,
        budgets=config["generation"]["budgets"],
        generation=generation_params,
        model_cfg=model_generation_cfg,
        impl=IMPL_VERSION["generate"],
    script:
        "../../scripts/generate.py"


rule grade:
    input:
        generations="results/generations/model~{model}/variant~{variant}/bench~{bench}/seed~{seed}.parquet",
        bench="results/benchmarks/bench~{bench}.parquet",
    output:
        "results/grades/model~{model}/variant~{variant}/bench~{bench}/seed~{seed}.parquet",
    log:
        "results/logs/grade/model~{model}_variant~{variant}_bench~{bench}_seed~{seed}.log",
    benchmark:
        "results/logs/grade/model~{model}_variant~{variant}_bench~{bench}_seed~{seed}.benchmark.tsv"
    conda:
        ENV
    threads: config["grading"]["workers"]
    resources:
        **rule_resources("grade"),
    params:
        timeout_s=config["grading"]["timeout_s"],
        delimiters=lambda w: model_cfg(w).get("delimiters", "s1"),
        impl=IMPL_VERSION["grade"],
    script:
        "../../scripts/grade.py"
