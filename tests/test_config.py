"""Configuration structure: defaults, YAML files, precedence and every validation error."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from mlmclm.components import resolve_config
from mlmclm.config import (
    CONFIG_DIR,
    DEFAULT_CONFIG_PATH,
    QUICK_TEST_CONFIG_PATH,
    ExperimentConfig,
    config_keys,
    load_yaml,
)
from mlmclm.errors import ConfigError


def write_yaml(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_default_yaml_states_exactly_the_built_in_defaults():
    assert load_yaml(DEFAULT_CONFIG_PATH) == ExperimentConfig().to_dict()


def test_documented_defaults():
    config = resolve_config(DEFAULT_CONFIG_PATH)
    assert config.objectives == ["mlm", "clm"]
    assert config.attention == ["standard", "rope", "exposb", "absolute"]
    assert (config.training.epochs, config.training.batch_size, config.training.learning_rate) == (20, 32, 1e-4)
    assert config.data.max_seq_length == 512
    assert (config.model.hidden_size, config.model.num_layers, config.model.num_heads) == (768, 12, 12)
    assert (config.data.mlm_strategy, config.data.clm_strategy) == ("dynamic", "standard")
    assert config.data.get("static_mask_copies") == 10
    assert config.num_runs == 3 and config.folds == 3
    assert config.statistics.significance_level == 0.05 and config.statistics.confidence_level == 0.95


def test_quick_test_preset_is_tiny_but_keeps_the_default_grid():
    config = resolve_config(quick_test=True)
    assert config.model.hidden_size <= 128 and config.model.num_layers <= 2
    assert config.training.max_steps is not None and config.training.max_steps <= 100
    assert config.objectives == ["mlm", "clm"] and len(config.attention) == 4
    assert load_yaml(QUICK_TEST_CONFIG_PATH)


def test_precedence_defaults_then_yaml_then_quick_test_then_cli(tmp_path):
    path = write_yaml(
        tmp_path / "c.yaml",
        {"training": {"batch_size": 8, "epochs": 7, "max_steps": 99}, "model": {"hidden_size": 384}},
    )
    from_yaml = resolve_config(path)
    assert (from_yaml.training.batch_size, from_yaml.training.epochs) == (8, 7)
    assert from_yaml.training.learning_rate == 1e-4  # untouched keys keep the default
    quick = resolve_config(path, quick_test=True)
    assert quick.training.batch_size == 16  # the preset overrides the file
    assert quick.training.epochs == 1
    cli = resolve_config(path, quick_test=True, overrides={"training": {"batch_size": 4}})
    assert cli.training.batch_size == 4  # flags override everything
    assert cli.training.max_steps == quick.training.max_steps


def test_seeds_set_the_number_of_runs():
    config = resolve_config(overrides={"seeds": [7, 8, 9, 10]})
    assert config.num_runs == 4 and config.run_seeds() == [7, 8, 9, 10]
    assert resolve_config(overrides={"num_runs": 2}).run_seeds() == [42, 43]


def test_seeds_inconsistent_with_explicit_num_runs_is_an_error():
    with pytest.raises(ConfigError, match="num_runs is 2 but 3 seeds"):
        resolve_config(overrides={"num_runs": 2, "seeds": [1, 2, 3]})


def test_yaml_numbers_without_a_dot_are_accepted():
    # PyYAML reads "5e-5" (no dot) as a string; a researcher writing it should not get an error.
    config = resolve_config(overrides={"training": {"learning_rate": "5e-5"}})
    assert config.training.learning_rate == 5e-5


def test_unknown_key_suggests_the_nearest(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"training": {"learnig_rate": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown config key 'training.learnig_rate'.*'training.learning_rate'"):
        resolve_config(path)
    with pytest.raises(ConfigError, match="did you mean 'num_runs'"):
        resolve_config(overrides={"num_run": 3})


def test_malformed_yaml_reports_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: 3\n  batch_size: [1, 2\n")
    with pytest.raises(ConfigError, match=r"malformed YAML .* line \d+"):
        resolve_config(path)


def test_missing_config_file_and_non_mapping_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        resolve_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must contain a mapping"):
        resolve_config(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"training": {"epochs": "three"}}, "training.epochs must be an integer"),
        ({"training": {"batch_size": 1.5}}, "training.batch_size must be an integer"),
        ({"cross_validation": "yes"}, "cross_validation must be true or false"),
        ({"attention": "rope"}, "attention must be a list"),
        ({"model": 3}, "model must be a mapping"),
        ({"training": {"learning_rate": 0}}, "training.learning_rate must be > 0"),
        ({"training": {"learning_rate": -1e-4}}, "training.learning_rate must be > 0"),
        ({"training": {"batch_size": 0}}, "training.batch_size must be > 0"),
        ({"training": {"epochs": -1}}, "training.epochs must be > 0"),
        ({"model": {"hidden_size": 100, "num_heads": 12}}, "must be divisible by model.num_heads"),
        ({"cross_validation": True, "folds": 1}, "folds must be >= 2"),
        ({"statistics": {"significance_level": 1.5}}, "significance_level must lie strictly between 0 and 1"),
        ({"statistics": {"confidence_level": 0}}, "confidence_level must lie strictly between 0 and 1"),
        ({"statistics": {"correction": "sidak"}}, "statistics.correction: unknown value 'sidak'"),
        ({"objectives": ["mlm", "plm"]}, "objectives: unknown value 'plm'"),
        ({"attention": ["roap"]}, "attention: unknown value 'roap'; did you mean 'rope'"),
        ({"data": {"mlm_strategy": "spam"}}, "data.mlm_strategy: unknown value 'spam'; did you mean 'span'"),
        ({"data": {"clm_strategy": "pack"}}, "data.clm_strategy: unknown value 'pack'"),
        ({"data": {"mlm_strategy": "standard"}}, "data.mlm_strategy 'standard' was renamed: use 'dynamic'"),
        ({"data": {"static_mask_copies": 0}}, "data.static_mask_copies must be > 0"),
        ({"data": {"split_ratios": [0.5, 0.5, 0.5]}}, "split_ratios must sum to 1"),
        ({"data": {"mlm_probability": 1.2}}, "mlm_probability must lie strictly between 0 and 1"),
        ({"experiment_name": "../x"}, "must be a plain file name"),
        ({"experiment_name": "a/b"}, "must be a plain file name"),
        ({"seeds": [1, 1]}, "seeds must be distinct"),
        ({"device": "tpu"}, "device: unknown value 'tpu'"),
    ],
)
def test_invalid_values_raise_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_valid_choices_are_read_from_the_registries():
    from mlmclm.data.masking import MLM_STRATEGIES
    from mlmclm.data.sequences import CLM_STRATEGIES
    from mlmclm.model.attention import ATTENTION_MECHANISMS

    with pytest.raises(ConfigError) as info:
        resolve_config(overrides={"attention": ["unknown_mechanism"]})
    for name in ATTENTION_MECHANISMS.names():
        assert name in str(info.value)
    assert set(MLM_STRATEGIES.names()) == {"static", "dynamic", "span", "whole_word"}
    assert set(CLM_STRATEGIES.names()) == {"standard", "packed", "sliding_window"}
    assert {"standard", "rope", "exposb", "absolute", "alibi", "nope", "stickbreaking"} <= set(
        ATTENTION_MECHANISMS.names()
    )


def test_every_config_field_has_a_default_in_default_yaml():
    default = load_yaml(DEFAULT_CONFIG_PATH)
    for section in ("data", "model", "training", "statistics", "probes", "evaluation"):
        names = set(config_keys(type(getattr(ExperimentConfig(), section))))
        assert names == set(default[section]), section


def test_every_config_key_is_documented_in_the_configuration_reference():
    reference = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    config = ExperimentConfig()
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        names = config_keys(type(value)) if dataclasses.is_dataclass(value) else [field.name]
        for name in names:
            assert f"`{name}`" in reference, name


def test_a_flag_that_max_steps_overrides_is_refused_naming_max_steps():
    with pytest.raises(ConfigError) as info:
        resolve_config(quick_test=True, overrides={"training": {"epochs": 2}}, overrides_are_flags=True)
    message = str(info.value)
    assert message.startswith("training.epochs = 2 (from the command line) has no effect")
    assert "training.max_steps = 80 (from --quick-test)" in message and "\n" not in message


def test_api_overrides_without_effect_warn_instead_of_failing(caplog):
    config = resolve_config(quick_test=True, overrides={"training": {"epochs": 2}})
    assert config.training.max_steps == 80
    assert any("training.epochs = 2" in r.message and "training.max_steps" in r.message for r in caplog.records)


def test_a_config_file_value_without_effect_warns(tmp_path, caplog):
    path = write_yaml(tmp_path / "c.yaml", {"training": {"epochs": 7, "max_steps": 99}, "folds": 5})
    resolve_config(path)
    warnings = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert any("training.epochs = 7" in w and "training.max_steps = 99" in w for w in warnings), warnings
    assert any(w.startswith("warning: folds = 5") and "cross_validation = False" in w for w in warnings), warnings


def test_a_copy_of_default_yaml_and_the_quick_test_preset_warn_about_nothing(caplog):
    resolve_config(DEFAULT_CONFIG_PATH, quick_test=True)
    resolve_config(DEFAULT_CONFIG_PATH)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_flag_that_deliberately_overrides_a_file_setting_is_silent(tmp_path, caplog):
    path = write_yaml(tmp_path / "c.yaml", {"probes": {"mode": "finetune"}, "training": {"epochs": 3}})
    config = resolve_config(
        path, overrides={"probes": {"enabled": False}, "training": {"max_steps": 10}}, overrides_are_flags=True
    )
    assert not config.probes.enabled and config.training.max_steps == 10
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_sliding_window_stride_is_only_checked_against_the_length_when_it_is_used():
    config = resolve_config(overrides={"data": {"max_seq_length": 256}}, overrides_are_flags=True)
    assert config.data.get("sliding_window_stride") == 256  # unused by the standard CLM strategy
    with pytest.raises(ConfigError, match="sliding_window_stride"):
        resolve_config(overrides={"data": {"max_seq_length": 256, "clm_strategy": "sliding_window"}})


@pytest.mark.parametrize("separator", ["", "   ", " % ", "a\nb"])
def test_bad_document_separators_are_refused(separator):
    with pytest.raises(ConfigError, match="data.document_separator"):
        resolve_config(overrides={"data": {"document_separator": separator}})


def test_every_setting_without_effect_is_listed_in_the_configuration_reference():
    from mlmclm.config import shadowed_settings

    reference = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    section = reference.split("**Settings without effect.**", 1)[1].split("**Seeds and runs.**", 1)[0]
    for rule in shadowed_settings():
        rows = [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| ")]
        documented = "every other `probes.*` key" if rule.key.startswith("probes.") else f"`{rule.key}`"
        assert any(documented in row for row in rows), rule.key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"evaluation": {"length_multipliers": [1, 0]}}, "evaluation.length_multipliers must be > 0"),
        ({"evaluation": {"length_multipliers": [2, 2]}}, "evaluation.length_multipliers lists a value twice"),
        ({"evaluation": {"length_multipliers": [1.5]}}, "evaluation.length_multipliers[0] must be an integer"),
        ({"probes": {"eval_every": 0}}, "probes.eval_every must be > 0"),
        ({"probes": {"eval_every": 10, "eval_every_unit": "epochs"}}, "probes.eval_every_unit: unknown value"),
    ],
)
def test_bad_length_multipliers_and_probe_schedules_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config(overrides=overrides)


def test_length_multipliers_and_probe_every_flags_reach_the_config():
    from mlmclm.cli import build_parser, cli_overrides

    args = build_parser().parse_args(["train", "--length-multipliers", "1", "2", "4", "--probe-every", "25"])
    assert cli_overrides(args) == {"evaluation": {"length_multipliers": [1, 2, 4]}, "probes": {"eval_every": 25}}


def test_settings_of_a_strategy_that_is_not_chosen_warn_as_settings_without_effect(tmp_path, caplog):
    """The rule comes from the strategy's registry and Config, not from a list in config.py."""
    path = write_yaml(tmp_path / "c.yaml", {"data": {"span_max_length": 5, "sliding_window_stride": 100}})
    with caplog.at_level("WARNING", logger="mlmclm.config"):
        resolve_config(path)
    assert (
        f"data.span_max_length = 5 (from --config {path}) has no effect because data.mlm_strategy = 'dynamic' "
        "(from the default): span lengths are only used by the MLM span strategy" in caplog.text
    )
    assert "data.sliding_window_stride = 100" in caplog.text
    assert "the stride is only used by the CLM sliding_window strategy" in caplog.text
    caplog.clear()
    path = write_yaml(tmp_path / "d.yaml", {"data": {"mlm_strategy": "span", "span_max_length": 5}})
    with caplog.at_level("WARNING", logger="mlmclm.config"):
        resolve_config(path)
    assert "span_max_length" not in caplog.text


def test_a_shipped_preset_file_sets_unchosen_strategies_without_a_warning(tmp_path, caplog):
    """quick_test.yaml sets the sliding-window stride for its scale on purpose (validate's tiny grids load it as
    --config); the same values in a user's own copy still warn."""
    from mlmclm.config import QUICK_TEST_CONFIG_PATH

    with caplog.at_level("WARNING", logger="mlmclm.config"):
        resolve_config(QUICK_TEST_CONFIG_PATH)
    assert "has no effect" not in caplog.text
    copy = tmp_path / "quick_test.yaml"
    copy.write_text(QUICK_TEST_CONFIG_PATH.read_text())
    with caplog.at_level("WARNING", logger="mlmclm.config"):
        resolve_config(copy)
    assert "data.sliding_window_stride = 32" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"training": 5}, "training must be a mapping"),
        ({"training": {"batch_size": -4}}, "training.batch_size must be > 0"),
        ({"training": {"batch_size": "abc"}}, "training.batch_size"),
        ({"training": {"learning_rate": float("nan")}}, "training.learning_rate"),
        ({"model": {"hidden_size": 65, "num_heads": 2}}, "divisible"),
        ({"data": {"vocab_size": -1}}, "data.vocab_size"),
    ],
)
def test_a_bad_config_file_value_is_refused_even_where_a_later_layer_overrides_it(tmp_path, content, message):
    """--quick-test (and flags) set these keys again; the file must still be valid on its own, or it fails
    the day it is used without them."""
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        resolve_config(path, quick_test=True, overrides={"training": {"batch_size": 4, "learning_rate": 1e-3}})
    assert str(raised.value).startswith(f"--config {path}: ")


def test_an_empty_output_dir_is_refused():
    """'' silently put the results and the cache into the current directory."""
    with pytest.raises(ConfigError, match="output_dir must not be empty"):
        resolve_config(quick_test=True, overrides={"output_dir": ""})


@pytest.mark.parametrize("name", sorted(path.name for path in CONFIG_DIR.glob("*.yaml")))
def test_every_shipped_preset_is_a_valid_config_on_its_own(name):
    """A preset file with a misspelt key or an invalid value would fail only when someone first trains it."""
    config = resolve_config(CONFIG_DIR / name)
    assert config.experiment_name


def test_cpu_order_is_cpu_small_trained_longer_on_smaller_batches():
    """cpu_order's measurements (docs/validation.md) are cpu_small's model and data at another step budget."""
    small, order = (yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) for name in ("cpu_small", "cpu_order"))
    for section in ("data", "model", "probes"):
        assert order[section] == small[section]
    assert (order["training"]["max_steps"], order["training"]["batch_size"]) == (10000, 8)
    assert order["training"]["learning_rate"] == small["training"]["learning_rate"]
