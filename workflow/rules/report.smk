# Statistics, figures and the outputs shown by `snakemake --report results/report.html` (captions: workflow/report/).


localrules:
    aggregate,
    plot_accuracy,
    plot_diff,
    plot_thinking,
    plot_layers,


rule aggregate:
    input:
        all_grades,
    output:
        scores="results/tables/scores.parquet",
        stats="results/tables/stats.parquet",
        summary_md="results/tables/summary.md",
        summary_csv=report(
            "results/tables/summary.csv",
            caption="../report/summary_csv.rst",
            category="1. Summary",
            labels={"table": "summary (CSV, download)"},
        ),
        summary_html=report(
            "results/tables/summary.html",
            caption="../report/summary.rst",
            category="1. Summary",
            labels={"table": "summary"},
        ),
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
        "results/tables/stats.parquet",
    output:
        report(
            "results/figures/accuracy_vs_budget/model~{model}_bench~{bench}.png",
            caption="../report/accuracy_vs_budget.rst",
            category="2. Accuracy vs budget",
            subcategory="model {model}",
            labels={"model": "{model}", "benchmark": "{bench}"},
        ),
    log:
        "results/logs/plot_accuracy/model~{model}_bench~{bench}.log",
    conda:
        ENV
    params:
        impl=IMPL_VERSION["plot"],
    script:
        "../../scripts/plot.py"


rule plot_diff:
    input:
        "results/tables/stats.parquet",
    output:
        report(
            "results/figures/diff_vs_dense/model~{model}_bench~{bench}.png",
            caption="../report/diff_vs_dense.rst",
            category="3. Difference vs dense",
            subcategory="model {model}",
            labels={"model": "{model}", "benchmark": "{bench}"},
        ),
    log:
        "results/logs/plot_diff/model~{model}_bench~{bench}.log",
    conda:
        ENV
    params:
        impl=IMPL_VERSION["plot"],
    script:
        "../../scripts/plot_diff.py"


rule plot_thinking:
    input:
        grades_of,
    output:
        report(
            "results/figures/thinking_tokens/model~{model}_bench~{bench}.png",
            caption="../report/thinking_tokens.rst",
            category="4. Thinking length",
            subcategory="model {model}",
            labels={"model": "{model}", "benchmark": "{bench}"},
        ),
    log:
        "results/logs/plot_thinking/model~{model}_bench~{bench}.log",
    conda:
        ENV
    params:
        impl=IMPL_VERSION["plot"],
    script:
        "../../scripts/plot_thinking.py"


rule plot_layers:
    input:
        sparsity=sparsity_of,
        scores=expand(
            "results/scores/model~{{model}}/scorer~{scorer}.parquet", scorer=SCORERS
        ),
    output:
        report(
            "results/figures/layer_sparsity/model~{model}.png",
            caption="../report/layer_sparsity.rst",
            category="5. Per-layer sparsity",
            labels={"model": "{model}"},
        ),
    log:
        "results/logs/plot_layers/model~{model}.log",
    conda:
        ENV
    params:
        impl=IMPL_VERSION["plot"],
    script:
        "../../scripts/plot_layers.py"
