rule allocate:
    input:
        unpack(allocate_scores_input),
        base_model_input,
    output:
        "results/allocation/model~{model}/variant~{variant}.parquet",
    log:
        "results/logs/allocate/model~{model}_variant~{variant}.log",
    conda:
        ENV
    resources:
        **rule_resources("allocate"),
    params:
        model_path=base_model_path,
        options=allocation_options,
        impl=IMPL_VERSION["allocate"],
    script:
        "../../scripts/allocate.py"


rule prune:
    input:
        unpack(prune_inputs),
        base_model_input,
        allocation="results/allocation/model~{model}/variant~{variant}.parquet",
    output:
        checkpoint=checkpoint_output("results/models/model~{model}/variant~{variant}"),
        sparsity="results/sparsity/model~{model}/variant~{variant}.parquet",
    log:
        "results/logs/prune/model~{model}_variant~{variant}.log",
    benchmark:
        "results/logs/prune/model~{model}_variant~{variant}.benchmark.tsv"
    conda:
        ENV
    threads: 2
    resources:
        **rule_resources("prune"),
    params:
        model_path=base_model_path,
        wanda=wanda_params,
        capture=prune_capture_params,
        trust_remote_code=trust_remote_code,
        impl=IMPL_VERSION["prune"],
    script:
        "../../scripts/prune.py"
