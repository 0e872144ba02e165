from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from prunetts.config import ConfigError, check, format_sparsity, parse_variant, scorers, variants

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def demo_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_demo_config_validates_and_grid():
    cfg = demo_config()
    validate(cfg, SCHEMA)
    check(cfg)
    assert variants(cfg) == ["dense"] + [
        f"{m}-{a}-s{s}" for m in ("magnitude", "wanda") for a in ("uniform", "owl", "layerif") for s in ("0.30", "0.50")
    ] + ["shortgpt-s0.30", "shortgpt-s0.50"]
    assert scorers(cfg) == ["owl", "bi", "layerif"]


@pytest.mark.parametrize(
    "slug",
    ["dense", "wanda-uniform-s0.20", "magnitude-owl-s0.05", "wanda-layerif-s0.125", "shortgpt-s0.20", "shortgpt-n3"],
)
def test_variant_round_trip(slug):
    assert parse_variant(slug).id == slug


def test_format_sparsity():
    assert format_sparsity(0.2) == "0.20"
    assert format_sparsity(0.125) == "0.125"


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(typo_key=1),
        lambda c: c["pruning"].update(methods=["sparsegpt"]),
        lambda c: c["pruning"].update(allocations=["owl-typo"]),
        lambda c: c["benchmarks"].update(aime25={}),
        lambda c: c["pruning"].update(sparsities=[1.2]),
        lambda c: c["generation"].update(budgets=[0, 16]),
        lambda c: c["generation"].update(temprature=0.5),
    ],
)
def test_schema_rejects(edit):
    cfg = demo_config()
    edit(cfg)
    with pytest.raises(WorkflowError):
        validate(cfg, SCHEMA)


def test_shortgpt_layers_need_the_method():
    cfg = demo_config()
    cfg["pruning"].update(methods=["wanda"], shortgpt_layers=[2])
    with pytest.raises(ConfigError, match="shortgpt_layers"):
        check(cfg)


def test_check_rejects_unsorted_budgets():
    cfg = demo_config()
    cfg["generation"]["budgets"] = [64, 16]
    with pytest.raises(ConfigError, match="generation.budgets"):
        check(cfg)


def test_wanda_setting_applies_the_allocations_override_on_top_of_the_global_knobs():
    from prunetts.config import wanda_setting

    wanda = {
        "mode": "sequential",
        "group": "row",
        "by_allocation": {"layerif": {"mode": "one_pass", "group": "matrix"}},
    }
    assert wanda_setting(wanda, "uniform") == {"mode": "sequential", "group": "row"}
    assert wanda_setting(wanda, "layerif") == {"mode": "one_pass", "group": "matrix"}
    assert wanda_setting({"mode": "one_pass", "by_allocation": {"owl": {"group": "matrix"}}}, "owl") == {
        "mode": "one_pass",
        "group": "matrix",
    }
    assert wanda_setting({}, "owl") == {"mode": "sequential", "group": "row"}


def test_check_rejects_an_even_savitzky_golay_window():
    cfg = demo_config()
    cfg["pruning"]["layerif"] = {"window": 4, "polyorder": 2}
    with pytest.raises(ConfigError, match=r"pruning.layerif.window: 4 is even"):
        check(cfg)
