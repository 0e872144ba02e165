localrules:
    aggregate,
    plot_accuracy,
    plot_layers,


rule aggregate:
    input:
        expand(
            "results/grades/model~{model}/variant~{variant}/bench~{bench}/seed~{seed}.parquet",
            model=MODELS,
            variant=VARIANTS,
            bench=BENCHES,
            seed=SEEDS,
        ),
    output:
        scores="results/tables/scores.parquet",
        summary_md="results/tables/summary.md",
        summary_csv="results/tables/summary.csv",
    log:
        "results/logs/aggregate/aggregate.log",
    conda:
        ENV
    params:
        impl=IMPL_VERSION["aggregate"],
    script:
        "../../scripts/aggregate.py"


rule plot_accuracy:
    input:
        "results/tables/scores.parquet",
    output:
        "results/figures/accuracy_vs_budget/model~{model}_bench~{bench}.png",
    log:
        "results/logs/plot_accuracy/model~{model}_bench~{bench}.log",
    conda:
        ENV
    script:
        "../../scripts/plot.py"


rule plot_layers:
    input:
        sparsity=expand(
            "results/sparsity/model~{{model}}/variant~{variant}.parquet",
            variant=PRUNED,
        ),
        scores=expand(
            "results/scores/model~{{model}}/scorer~{scorer}.parquet", scorer=SCORERS
        ),
    output:
        "results/figures/layer_sparsity/model~{model}.png",
    log:
        "results/logs/plot_layers/model~{model}.log",
    conda:
        ENV
    script:
        "../../scripts/plot_layers.py"
