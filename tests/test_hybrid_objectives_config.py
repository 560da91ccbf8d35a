"""The hybrid objectives' settings: validated ranges, one-line CLI errors, the worked example config."""

from __future__ import annotations

import pytest

from mlmclm.components import resolve_config
from mlmclm.errors import ConfigError
from tests.test_cli import REPO, _assert_one_line, planned, run_cli, tiny_corpus  # noqa: F401


@pytest.mark.parametrize("key", ["hybrid_clm_fraction", "mntp_causal_fraction"])
@pytest.mark.parametrize("value", [0.0, 1.0, -0.2])
def test_a_hybrid_fraction_outside_the_open_unit_interval_is_refused(key, value):
    with pytest.raises(ConfigError, match=f"training.{key} must lie strictly between 0 and 1"):
        resolve_config(overrides={"objectives": ["clm_mlm", "mntp"], "training": {key: value}})


def test_a_bad_fraction_flag_is_one_line_and_exit_code_2(capsys):
    code, _, err = run_cli(
        capsys, "train", "--quick-test", "--dry-run", "--objectives", "clm_mlm", "--hybrid-clm-fraction", "1.5"
    )
    assert code == 2
    _assert_one_line(err, "training.hybrid_clm_fraction must lie strictly between 0 and 1")


def test_a_fraction_flag_without_its_objective_is_refused(capsys):
    code, _, err = run_cli(capsys, "train", "--quick-test", "--dry-run", "--mntp-causal-fraction", "0.5")
    assert code == 2
    _assert_one_line(err, "no mntp runs are planned")


def test_the_hybrid_objectives_are_planned_as_further_arms(capsys, tiny_corpus):  # noqa: F811
    code, out, _ = run_cli(
        capsys, "train", "--quick-test", "--objectives", "mlm", "clm", "clm_mlm", "mntp", "--attention", "rope",
        "--hybrid-clm-fraction", "0.75", "--data", tiny_corpus, "--dry-run", "--no-probes",
    )
    assert code == 0
    assert planned(out) == 4 * 3  # 4 objectives x 1 mechanism x 3 seeds
    assert "rope_clm_mlm_run0" in out and "rope_mntp_run2" in out


def test_the_hybrid_split_example_config_is_valid_and_one_flag_changes_the_split():
    path = REPO / "configs" / "hybrid_split.yaml"
    config = resolve_config(path)
    assert config.objectives == ["mlm", "clm", "clm_mlm"] and config.training.hybrid_clm_fraction == 0.5
    quarter = resolve_config(path, overrides={"training": {"hybrid_clm_fraction": 0.25}}, overrides_are_flags=True)
    assert quarter.training.hybrid_clm_fraction == 0.25


def test_masking_settings_take_effect_for_a_hybrid_without_an_mlm_arm(capsys, tiny_corpus):  # noqa: F811
    """``--mlm-strategy`` shapes the masked batches of clm_mlm and mntp, so it is not refused as shadowed."""
    code, _, err = run_cli(
        capsys, "train", "--quick-test", "--dry-run", "--no-probes", "--objectives", "clm", "mntp",
        "--mlm-strategy", "static", "--data", tiny_corpus,
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "train", "--quick-test", "--dry-run", "--objectives", "clm", "--mlm-strategy", "static"
    )
    assert code == 2
    _assert_one_line(err, "no MLM runs are planned")
