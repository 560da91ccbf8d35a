"""Typed, validated experiment configuration.

Precedence (lowest to highest): the dataclass defaults below < the ``--config`` YAML file < the
``--quick-test`` preset (``configs/quick_test.yaml``) < command-line flags. Every key is checked: an unknown
key suggests the nearest valid one, wrong types and impossible values raise :class:`ConfigError`, which the
CLI prints as one line with exit code 2.

This module imports nothing above it. A component (an attention mechanism) declares its own settings as a
``Config`` dataclass with a ``check()`` in its own file and registers it with :func:`register_settings`; its
YAML keys stay flat (``model.rope_base``). Registered *names* (attention mechanisms, masking strategies, probe
tasks) are checked where the registries live: :func:`mlmclm.components.check_plan`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlmclm.errors import ConfigError, closest_name, did_you_mean
from mlmclm.objectives import OBJECTIVES, uses_masking

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda", "mps")
# statistics.correction: name -> how the report names it. Every name but "none" is a method of statsmodels'
# multipletests (analysis/multiple_comparisons.py applies it by name), so a correction is added here alone.
CORRECTIONS = {"holm": "Holm", "bonferroni": "Bonferroni", "fdr_bh": "Benjamini-Hochberg", "none": "no"}
TEST_CHOICES = ("default", "aso")  # aso: also Almost Stochastic Order per comparison (analysis/aso.py)
PROBE_EVAL_UNITS = ("steps", "tokens")  # what probes.eval_every counts
# data.format of a corpus file by its extension (data/sources.py reads files by it); "auto" looks it up here.
FORMATS_BY_SUFFIX = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".json": "json", ".csv": "csv",
                     ".parquet": "parquet"}
TEXT_SEPARATORS = ("line", "blank_line")  # any other data.document_separator is the text of a separator line
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG_PATH = CONFIG_DIR / "default.yaml"
QUICK_TEST_CONFIG_PATH = CONFIG_DIR / "quick_test.yaml"
QUICK_TEST_LAYER = "--quick-test"
PRESET_LAYER_PREFIX = "the preset "
"""Label of a ``--config`` layer that is one of the shipped presets (``CONFIG_DIR``): like ``--quick-test``, a
preset sets every strategy's settings for its scale on purpose, so an unchosen strategy's key is no mistake."""
COMMAND_LINE_LAYER = "the command line"
_MAX_INT = 2**63
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------------- component settings

# section ("model") -> component name ("rope") -> its Config dataclass; filled by register_settings.
_SETTINGS: dict[str, dict[str, type]] = {"model": {}, "data": {}, "probes": {}}
# (section, component) -> (key that chooses it, "it is not used" predicate, reason): its settings' shadow rule.
_UNUSED_RULES: dict[tuple[str, str], tuple[str, Callable[[ExperimentConfig], bool], str]] = {}


def register_settings(
    section: str,
    owner: str,
    settings: type,
    unused: tuple[str, Callable[[ExperimentConfig], bool], str] | None = None,
) -> None:
    """Declare component ``owner``'s settings: the fields of dataclass ``settings``, read from YAML keys
    ``<section>.<owner>_<field>`` (or a field's ``metadata["key"]``), checked by ``settings.check(config)``
    with the whole :class:`ExperimentConfig` (for checks against other settings). ``unused`` = (the key that
    chooses the component, when it is not used, why): its settings are then "settings without effect"."""
    if not dataclasses.is_dataclass(settings) or not callable(getattr(settings, "check", None)):
        raise TypeError(f"settings of {owner!r} must be a dataclass with a check() method")
    taken = set(config_keys(_SECTIONS[section]))
    clash = taken & set(_flat_keys(owner, settings))
    if owner in _SETTINGS[section] or clash:
        raise ValueError(f"settings of {section}.{owner} registered twice or reusing keys {sorted(clash)}")
    _SETTINGS[section][owner] = settings
    if unused is not None:
        _UNUSED_RULES[section, owner] = unused


def _flat_keys(owner: str, settings: type) -> dict[str, str]:
    return {f.metadata.get("key", f"{owner}_{f.name}"): f.name for f in dataclasses.fields(settings)}


def settings_keys(section: str, owner: str) -> dict[str, str]:
    """YAML key -> field name of one component's settings, e.g. ``{"rope_base": "base"}``."""
    return _flat_keys(owner, _SETTINGS[section][owner])


def config_keys(cls: type) -> list[str]:
    """The keys users write for config dataclass ``cls``, in order: its fields, with the registered
    components' keys in place of the field that holds their settings."""
    keys = []
    for f in dataclasses.fields(cls):
        if f.name != getattr(cls, "COMPONENTS", None):
            keys.append(f.name)
            continue
        keys += [key for owner in _SETTINGS[cls.SECTION] for key in settings_keys(cls.SECTION, owner)]
    return keys


def default_settings(section: str) -> dict[str, Any]:
    """Every registered component's Config at its defaults."""
    return {owner: settings() for owner, settings in _SETTINGS[section].items()}


def _settings_from_dict(section: str, values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Build each component's Config from its flat keys in ``values`` (which are removed from it)."""
    built = {}
    for owner, settings in _SETTINGS[section].items():
        hints = typing.get_type_hints(settings)
        given = {
            name: _coerce(hints[name], values.pop(key), f"{prefix}{key}")
            for key, name in settings_keys(section, owner).items()
            if key in values
        }
        built[owner] = settings(**given)
    return built


class ComponentSection:
    """A config section whose registered components (mechanisms, strategies, probe tasks) own settings.

    ``COMPONENTS`` names the dict field holding each component's ``Config`` by component name; users still
    write flat keys (``data.span_max_length``), which :meth:`to_dict`, :meth:`get` and :meth:`replace` speak.
    """

    SECTION: typing.ClassVar[str]
    COMPONENTS: typing.ClassVar[str]

    def settings(self, owner: str) -> Any:
        """One component's ``Config``, e.g. ``model.settings("rope").base`` for ``model.rope_base``."""
        return getattr(self, self.COMPONENTS).get(owner) or _SETTINGS[self.SECTION][owner]()

    def get(self, key: str) -> Any:
        """The value of a flat key users write, a field or a component's setting."""
        for owner in _SETTINGS[self.SECTION]:
            if key in settings_keys(self.SECTION, owner):
                return getattr(self.settings(owner), settings_keys(self.SECTION, owner)[key])
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping users write for this section, in the layout of configs/default.yaml."""
        return copy.deepcopy({key: self.get(key) for key in config_keys(type(self))})

    def replace(self, **keys: Any) -> Any:
        """A copy with some flat keys changed (``dataclasses.replace`` for the keys users write), re-checked
        for types; e.g. ``data_cfg.replace(static_mask_copies=3)``."""
        return from_dict(type(self), {**self.to_dict(), **keys}, f"{self.SECTION}.")


@dataclass
class DataConfig(ComponentSection):
    """Where the text comes from, how it is split and tokenized, and how MLM/CLM batches are built."""

    SECTION: typing.ClassVar[str] = "data"
    COMPONENTS: typing.ClassVar[str] = "strategies"

    path: str | None = None  # None: the embedded standard-library documentation corpus
    format: str = "auto"  # auto | txt | jsonl | json | csv | parquet | hf
    document_separator: str = "line"  # .txt files: one document per "line", per "blank_line" block, or a line like "%"
    text_field: str = "text"  # column / field holding the text in jsonl, json, csv, parquet, hf
    min_document_chars: int = 20
    max_documents: int | None = None  # keep only the first N cleaned documents (a slice for quick tests)
    deduplicate: bool = True
    tokenizer: str | None = None  # a tokenizer.json / transformers tokenizer directory; None: train one
    vocab_size: int = 30522
    max_seq_length: int = 512
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 1234
    length_bins: int = 5
    mlm_strategy: str = "dynamic"  # fresh masks every epoch (RoBERTa §4.1); see docs/data.md
    clm_strategy: str = "standard"
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    # Each MLM/CLM strategy's own settings (its ``Config``, in data/masking.py and data/sequences.py) by
    # strategy name; YAML: data.<strategy>_<field>, e.g. data.static_mask_copies, data.sliding_window_stride.
    strategies: dict[str, Any] = field(default_factory=lambda: default_settings("data"))
    eval_seed: int = 2024  # fixes the evaluation masks so every MLM run is scored on the same positions
    packing: bool = False  # padding-free rows of whole sequences, attention kept within each (docs/data.md)
    cache_dir: str | None = None  # None: <output_dir>/cache (see default_cache_dir)


@dataclass
class ModelConfig(ComponentSection):
    """One BERT-style transformer shared by both objectives; only mask and targets differ between arms."""

    SECTION: typing.ClassVar[str] = "model"
    COMPONENTS: typing.ClassVar[str] = "mechanisms"

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    norm: str = "post"  # post (BERT) | pre
    initializer_range: float = 0.02
    # Each attention mechanism's own settings (its ``Config``) by mechanism name; YAML: model.<name>_<field>.
    mechanisms: dict[str, Any] = field(default_factory=lambda: default_settings("model"))


@dataclass
class TrainingConfig:
    """Optimisation and evaluation budget of one run; identical for every run of a comparison."""

    epochs: int = 20
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 32
    eval_batch_size: int | None = None  # None: same as batch_size
    learning_rate: float = 1e-4  # BERT-base's pre-training rate (Devlin et al. 2019); docs/training.md says why
    lr_sweep: list[float] = field(default_factory=list)  # peak rates; each condition picks its best on validation
    lr_sweep_seed: int = 0  # seed of the sweep runs; must differ from every final seed
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None  # overrides warmup_ratio when set
    scheduler: str = "linear"  # linear | cosine | constant
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    eval_interval: int = 500  # optimizer steps between validation evaluations
    eval_max_batches: int | None = None  # None: the whole validation split
    convergence_tolerance: float = 0.01
    early_stopping: bool = False  # off by default so every run gets the same budget
    early_stopping_patience: int = 5
    checkpoint_interval: int = 1000  # optimizer steps between resumable mid-run checkpoints
    threads: int | None = None  # torch intra-op threads per run; None: divided among workers
    hybrid_clm_fraction: float = 0.5  # clm_mlm: share of the steps in the CLM phase (mlmclm/objectives.py)
    mntp_causal_fraction: float = 0.0625  # mntp: share of causal micro-batches (GPT-BERT's 1:15 is 1/16)


@dataclass
class StatisticsConfig:
    """How runs are compared: tests, intervals, corrections and power."""

    significance_level: float = 0.05
    confidence_level: float = 0.95
    correction: str = "holm"
    primary_metric: str = "probe_accuracy_gain"  # the declared primary endpoint (analysis/endpoint.py)
    secondary_metrics: list[str] = field(default_factory=lambda: ["val_loss", "val_accuracy"])
    bootstrap_resamples: int = 10000
    power: float = 0.8
    seed: int = 0
    test: str = "default"  # "aso" adds Almost Stochastic Order (ε_min) to every comparison


@dataclass
class ProbeConfig(ComponentSection):
    """Objective-neutral downstream probes that make MLM and CLM comparable like for like."""

    SECTION: typing.ClassVar[str] = "probes"
    COMPONENTS: typing.ClassVar[str] = "task_settings"

    enabled: bool = True
    mode: str = "linear"  # linear (frozen encoder + logistic regression) | finetune
    tasks: list[str] = field(
        default_factory=lambda: ["bigram_shift", "word_order", "sentence_length", "word_content", "coherence"]
    )
    data_files: list[str] = field(default_factory=list)  # user tasks: jsonl with text, label[, text_pair]
    examples_per_task: int = 500
    test_fraction: float = 0.3
    finetune_epochs: int = 3
    finetune_learning_rate: float = 5e-5
    seed: int = 0
    max_sentence_words: int = 40  # longer held-out sentences are not used (they would be truncated)
    # Each probe task's own settings (its ``Config``, in probes/tasks.py) by task name, e.g.
    # probes.length_buckets (sentence_length) and probes.word_content_words (word_content).
    task_settings: dict[str, Any] = field(default_factory=lambda: default_settings("probes"))
    eval_every: int | None = None  # also probe every N steps (or tokens) during training: probe curves
    eval_every_unit: str = "steps"  # steps | tokens: what eval_every counts


# The config sections whose components may declare settings (see register_settings).
_SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "probes": ProbeConfig}


@dataclass
class EvaluationConfig:
    """Extra evaluations after training (docs/training.md, "Length generalisation")."""

    # Evaluate each finished run at k x data.max_seq_length for every k; [] or [1] adds nothing new.
    length_multipliers: list[int] = field(default_factory=list)


@dataclass
class RayConfig:
    """How the Ray executor uses a cluster (docs/scaling.md); none of it changes what a run computes."""

    address: str | None = None  # None: RAY_ADDRESS, else a local Ray instance; "auto": the node's cluster
    max_retries: int = 1  # resubmissions of a run whose worker or node died; it resumes from its checkpoint
    cpus_per_run: float | None = None  # None: training.threads, else 1
    gpus_per_run: float | None = None  # None: 1 when CUDA is visible and device is auto or cuda, else 0


@dataclass
class ExperimentConfig:
    """The whole experiment: which conditions, how many runs, and every sub-configuration."""

    experiment_name: str = "mlm_vs_clm"
    output_dir: str = "outputs"
    objectives: list[str] = field(default_factory=lambda: ["mlm", "clm"])  # any of OBJECTIVES
    attention: list[str] = field(default_factory=lambda: ["standard", "rope", "exposb", "absolute"])
    num_runs: int = 3
    seeds: list[int] | None = None  # when given, the seeds set the runs (num_runs = len(seeds))
    base_seed: int = 42  # seeds are base_seed + i when none are given
    cross_validation: bool = False
    folds: int = 3
    device: str = "auto"
    mixed_precision: bool = False
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile the training loss: measured slower on CPU (docs/performance.md)
    workers: int = 1
    executor: str = "local"  # local | ray
    resume: bool = True
    smoke_test: bool = False  # a pipeline check, not an experiment: the report opens with a banner saying so
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def run_seeds(self) -> list[int]:
        """The seed list shared by every condition, so runs pair up across conditions by (fold, seed)."""
        return list(self.seeds) if self.seeds is not None else [self.base_seed + i for i in range(self.num_runs)]

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for section in (self.data, self.model, self.probes):
            values[section.SECTION] = section.to_dict()
        return values


# --------------------------------------------------------------------------------------------- loading


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``safe_load``; malformed YAML is a one-line error with its line number."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise ConfigError(f"config file {path} is nested too deeply to be a configuration") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML in {path}{where}: {problem}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must contain a mapping of keys, not {type(loaded).__name__}")
    return loaded


def merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (nested sections merge key by key)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def is_plain_name(name: str) -> bool:
    """A file name without directories: letters, digits, '.', '_', '-', not starting with '.' or '-'."""
    return bool(_PLAIN_NAME.match(name))


def build_config(
    config_file: str | Path | None = None,
    quick_test: bool = False,
    overrides: dict[str, Any] | None = None,
    overrides_are_flags: bool = False,
) -> ExperimentConfig:
    """Build the validated config from defaults < YAML file < quick-test preset < CLI overrides.

    Components must be registered first; :func:`mlmclm.components.resolve_config` imports them and also
    checks the registered names, and is what callers want.

    A setting the user gave that another setting makes ineffective (see :data:`SHADOWED_SETTINGS`) is an
    error when it came from a command-line flag (``overrides_are_flags``) and otherwise a warning.
    """
    layers: list[dict[str, Any]] = []
    labels: list[str] = []
    if config_file is not None:
        layers.append(load_yaml(config_file))
        labels.append(_config_file_label(config_file))
    if quick_test:
        layers.append(load_yaml(QUICK_TEST_CONFIG_PATH))
        labels.append(QUICK_TEST_LAYER)
    layers.append(overrides or {})
    labels.append(COMMAND_LINE_LAYER if overrides_are_flags else "the overrides")
    if config_file is not None:
        _check_on_its_own(layers[0], labels[0])
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge_dicts(merged, layer)
    _apply_seed_rule(merged, layers)
    config = from_dict(ExperimentConfig, merged, "")
    if config.data.cache_dir is None:
        config.data.cache_dir = default_cache_dir(config.output_dir)
    validate(config)
    check_shadowed_settings(config, list(zip(labels, layers, strict=True)))
    return config


def _check_on_its_own(layer: dict[str, Any], label: str) -> None:
    """A config file must be valid by itself (over the defaults): a later layer (``--quick-test``, a flag) that
    overrides a bad value would otherwise hide it until the day the file is used without that layer."""
    alone = copy.deepcopy(layer)
    try:
        _apply_seed_rule(alone, [layer])
        validate(from_dict(ExperimentConfig, alone, ""))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def _config_file_label(config_file: str | Path) -> str:
    shipped = Path(config_file).resolve().parent == CONFIG_DIR.resolve()
    return f"{PRESET_LAYER_PREFIX}--config {config_file}" if shipped else f"--config {config_file}"


def default_cache_dir(output_dir: str) -> str:
    """``<output_dir>/cache``: the corpus, tokenizer and token arrays live beside the results they produced.

    Why: a cache under the current directory made the tokenizer an experiment was trained with depend on
    where the command was started; beside the outputs, a resume always finds the data its runs used.
    """
    return str(Path(output_dir) / "cache")


def _apply_seed_rule(merged: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    """Seeds set the runs: num_runs follows len(seeds) unless num_runs was set explicitly to another value."""
    seeds = merged.get("seeds")
    if not isinstance(seeds, list):
        return
    explicit = [layer["num_runs"] for layer in layers if "num_runs" in layer]
    if explicit and explicit[-1] != len(seeds):
        raise ConfigError(
            f"num_runs is {explicit[-1]} but {len(seeds)} seeds were given; the seeds set the runs, "
            f"so give {explicit[-1]} seeds or drop num_runs"
        )
    merged["num_runs"] = len(seeds)


def from_dict(cls: type, values: Any, prefix: str) -> Any:
    """Convert a plain mapping into dataclass ``cls``, checking keys and types on the way."""
    where = prefix.rstrip(".") or "config"
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(values).__name__}")
    fields = config_keys(cls)
    for key in values:
        if key not in fields:
            close = closest_name(key, fields, cutoff=0.5)
            hint = f"; did you mean '{prefix}{close}'?" if close else ""
            raise ConfigError(f"unknown config key '{prefix}{_printable(key)}'{hint}")
    values = dict(values)
    kwargs = {}
    if issubclass(cls, ComponentSection):
        kwargs[cls.COMPONENTS] = _settings_from_dict(cls.SECTION, values, prefix)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(annotation: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {_describe(value)}")
        return [_coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {_describe(value)}")
    if annotation is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= _MAX_INT:  # seeds and sizes end up in torch/numpy int64
                raise ConfigError(f"{key} must be below 2**63 in magnitude, got {_describe(value)}")
            return value
        raise ConfigError(f"{key} must be an integer, got {_describe(value)}")
    if annotation is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if abs(value) < 1e308 else math.inf
        elif isinstance(value, str):  # YAML reads 5e-5 (without a dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise ConfigError(f"{key} must be a finite number, got {_describe(value)}")
        raise ConfigError(f"{key} must be a number, got {_describe(value)}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {_describe(value)}")
    raise TypeError(f"unsupported config annotation {annotation!r} for {key}")


def _printable(key: Any) -> str:
    """A key as typed, with control characters escaped so the error stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(key))


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**60 else f"~1e{len(str(abs(value))) - 1}"
    return f"{type(value).__name__} {text[:77] + '...' if len(text) > 80 else text}"


# ------------------------------------------------------------------------------------------ validation


def require_choice(key: str, value: str, valid: typing.Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}{did_you_mean(value, valid)} (valid: {', '.join(valid)})")


def require_positive(key: str, value: float | int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def require_at_least(key: str, value: float, minimum: float, why: str) -> None:
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum} ({why}), got {value}")


def _non_negative(key: str, value: float | int) -> None:
    if value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}")


def require_open_unit(key: str, value: float) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{key} must lie strictly between 0 and 1, got {value}")


def validate(config: ExperimentConfig) -> None:
    """Check every value that types alone cannot: ranges and consistency (registered names: check_plan)."""
    _validate_experiment(config)
    _validate_data(config)
    validate_model(config.model, config)
    _validate_training(config)
    validate_statistics(config.statistics)
    _validate_probes(config)
    validate_evaluation(config.evaluation)


def _validate_experiment(config: ExperimentConfig) -> None:
    """The grid's shape (names, seeds, folds) and where it runs."""
    if len(config.experiment_name) > 100:  # it prefixes file names, which most file systems cap at 255 bytes
        raise ConfigError(f"experiment_name must be at most 100 characters, got {len(config.experiment_name)}")
    if not _PLAIN_NAME.match(config.experiment_name):
        raise ConfigError(
            f"experiment_name {config.experiment_name!r} must be a plain file name "
            "(letters, digits, '.', '_', '-'; no slashes or '..')"
        )
    if not config.output_dir.strip():  # "" silently wrote the results and the cache into the current directory
        raise ConfigError("output_dir must not be empty (use '.' for the current directory)")
    if not config.objectives:
        raise ConfigError("objectives must name at least one of: " + ", ".join(OBJECTIVES))
    for objective in config.objectives:
        require_choice("objectives", objective, OBJECTIVES)
    for values, key in ((config.objectives, "objectives"), (config.attention, "attention")):
        if len(set(values)) != len(values):
            raise ConfigError(f"{key} lists a name twice: {values}")
    require_positive("num_runs", config.num_runs)
    if config.seeds is not None:
        if not config.seeds:
            raise ConfigError("seeds must not be empty")
        if len(set(config.seeds)) != len(config.seeds):
            raise ConfigError(f"seeds must be distinct, got {config.seeds}")
        if any(seed < 0 for seed in config.seeds):
            raise ConfigError(f"seeds must be >= 0, got {config.seeds}")
    if config.cross_validation and config.folds < 2:
        raise ConfigError(f"folds must be >= 2 for cross-validation, got {config.folds}")
    if config.folds < 2:
        raise ConfigError(f"folds must be >= 2, got {config.folds}")
    require_choice("device", config.device, DEVICES)
    require_choice("executor", config.executor, ("local", "ray"))
    require_positive("workers", config.workers)
    _non_negative("ray.max_retries", config.ray.max_retries)
    require_positive("ray.cpus_per_run", config.ray.cpus_per_run, allow_none=True)
    if config.ray.gpus_per_run is not None:
        _non_negative("ray.gpus_per_run", config.ray.gpus_per_run)
    require_open_unit("training.hybrid_clm_fraction", config.training.hybrid_clm_fraction)
    require_open_unit("training.mntp_causal_fraction", config.training.mntp_causal_fraction)


def _validate_data(config: ExperimentConfig) -> None:
    """Corpus, split, tokenizer and batch settings; each strategy checks its own settings."""
    data = config.data
    require_choice("data.format", data.format, ("auto", "txt", "jsonl", "json", "csv", "parquet", "hf"))
    _check_document_separator(data.document_separator)
    if data.mlm_strategy == "standard":
        raise ConfigError(
            "data.mlm_strategy 'standard' was renamed: use 'dynamic' (fresh masks every epoch, the default) or "
            "'static' (BERT's data.static_mask_copies masks per sequence, used in turn)"
        )
    _non_negative("data.min_document_chars", data.min_document_chars)
    require_positive("data.max_documents", data.max_documents, allow_none=True)
    if data.vocab_size < 10:
        raise ConfigError(f"data.vocab_size must be >= 10, got {data.vocab_size}")
    if data.max_seq_length < 8:
        raise ConfigError(f"data.max_seq_length must be >= 8, got {data.max_seq_length}")
    if len(data.split_ratios) != 3 or any(r < 0 for r in data.split_ratios):
        raise ConfigError(f"data.split_ratios must be three non-negative numbers, got {data.split_ratios}")
    if abs(sum(data.split_ratios) - 1.0) > 1e-6:
        raise ConfigError(f"data.split_ratios must sum to 1, got {data.split_ratios} (sum {sum(data.split_ratios)})")
    if min(data.split_ratios) == 0:
        raise ConfigError(f"data.split_ratios must give every split some documents, got {data.split_ratios}")
    require_positive("data.length_bins", data.length_bins)
    require_open_unit("data.mlm_probability", data.mlm_probability)
    for key in ("mask_replace_prob", "random_replace_prob"):
        value = getattr(data, key)
        if not 0 <= value <= 1:
            raise ConfigError(f"data.{key} must lie in [0, 1], got {value}")
    if data.mask_replace_prob + data.random_replace_prob > 1 + 1e-9:
        raise ConfigError("data.mask_replace_prob + data.random_replace_prob must be <= 1")
    _check_components(data, config)


def validate_model(model: ModelConfig, config: ExperimentConfig | None = None) -> None:
    """Shapes the transformer can be built with; each mechanism checks its own settings.

    ``config`` is the experiment the mechanisms may cross-check against; a saved model's config (read back by
    ``mlmclm.model.serialization``) comes without one, and is checked as part of a default experiment.
    """
    for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
        require_positive(f"model.{key}", getattr(model, key))
    if model.hidden_size % model.num_heads:
        raise ConfigError(
            f"model.hidden_size ({model.hidden_size}) must be divisible by model.num_heads ({model.num_heads})"
        )
    if (model.hidden_size // model.num_heads) % 2:
        raise ConfigError("model.hidden_size / model.num_heads must be even (rotary embeddings rotate pairs)")
    for key in ("hidden_dropout", "attention_dropout"):
        value = getattr(model, key)
        if not 0 <= value < 1:
            raise ConfigError(f"model.{key} must lie in [0, 1), got {value}")
    require_choice("model.norm", model.norm, ("post", "pre"))
    require_positive("model.layer_norm_eps", model.layer_norm_eps)
    require_positive("model.initializer_range", model.initializer_range)
    _check_components(model, config if config is not None else ExperimentConfig(model=model))


def _validate_training(config: ExperimentConfig) -> None:
    """The optimisation budget; the learning-rate sweep has its own check."""
    training = config.training
    require_positive("training.epochs", training.epochs)
    require_positive("training.max_steps", training.max_steps, allow_none=True)
    require_positive("training.batch_size", training.batch_size)
    require_positive("training.eval_batch_size", training.eval_batch_size, allow_none=True)
    require_positive("training.learning_rate", training.learning_rate)
    validate_lr_sweep(config)
    _non_negative("training.weight_decay", training.weight_decay)
    for key in ("adam_beta1", "adam_beta2"):
        value = getattr(training, key)
        if not 0 <= value < 1:
            raise ConfigError(f"training.{key} must lie in [0, 1), got {value}")
    require_positive("training.adam_epsilon", training.adam_epsilon)
    if not 0 <= training.warmup_ratio < 1:
        raise ConfigError(f"training.warmup_ratio must lie in [0, 1), got {training.warmup_ratio}")
    if training.warmup_steps is not None:
        _non_negative("training.warmup_steps", training.warmup_steps)
    require_choice("training.scheduler", training.scheduler, ("linear", "cosine", "constant"))
    require_positive("training.max_grad_norm", training.max_grad_norm)
    require_positive("training.gradient_accumulation_steps", training.gradient_accumulation_steps)
    require_positive("training.eval_interval", training.eval_interval)
    require_positive("training.eval_max_batches", training.eval_max_batches, allow_none=True)
    _non_negative("training.convergence_tolerance", training.convergence_tolerance)
    require_positive("training.early_stopping_patience", training.early_stopping_patience)
    require_positive("training.checkpoint_interval", training.checkpoint_interval)
    require_positive("training.threads", training.threads, allow_none=True)


def _validate_probes(config: ExperimentConfig) -> None:
    """Probe protocol and sizes; each probe task checks its own settings."""
    probes = config.probes
    require_choice("probes.mode", probes.mode, ("linear", "finetune"))
    if probes.examples_per_task < 20:
        raise ConfigError(f"probes.examples_per_task must be >= 20, got {probes.examples_per_task}")
    require_open_unit("probes.test_fraction", probes.test_fraction)
    require_positive("probes.finetune_epochs", probes.finetune_epochs)
    require_positive("probes.finetune_learning_rate", probes.finetune_learning_rate)
    if probes.max_sentence_words < 8:
        raise ConfigError(f"probes.max_sentence_words must be >= 8, got {probes.max_sentence_words}")
    _check_components(probes, config)
    require_positive("probes.eval_every", probes.eval_every, allow_none=True)
    require_choice("probes.eval_every_unit", probes.eval_every_unit, PROBE_EVAL_UNITS)


def _check_components(section: ComponentSection, config: ExperimentConfig) -> None:
    """Each registered component checks its own settings, seeing the whole config for cross-checks."""
    for owner in _SETTINGS[section.SECTION]:
        section.settings(owner).check(config)


def validate_evaluation(evaluation: EvaluationConfig) -> None:
    """Length multipliers are distinct positive integers: k x max_seq_length must be a whole length."""
    for multiplier in evaluation.length_multipliers:
        require_positive("evaluation.length_multipliers", multiplier)
    if len(set(evaluation.length_multipliers)) != len(evaluation.length_multipliers):
        raise ConfigError(f"evaluation.length_multipliers lists a value twice: {evaluation.length_multipliers}")


def _check_document_separator(value: str) -> None:
    """``line``, ``blank_line``, or the text of the lines that end a document (``%`` in fortune files)."""
    if value in TEXT_SEPARATORS:
        return
    if not value.strip():
        raise ConfigError(
            f"data.document_separator must not be empty or whitespace, got {value!r} "
            f"(use 'blank_line' for blank-line separated documents; valid: {', '.join(TEXT_SEPARATORS)}, "
            "or the text of a separator line such as '%')"
        )
    if value != value.strip() or "\n" in value or "\r" in value:
        raise ConfigError(
            f"data.document_separator {value!r} must be one line without leading or trailing whitespace "
            "(separator lines are compared after stripping their whitespace)"
        )


def validate_lr_sweep(config: ExperimentConfig) -> None:
    """The sweep's rates are positive and distinct, and its seed is not one of the final seeds: the rate is
    chosen on one run and the comparison made on others, so selection noise does not leak into the tests."""
    sweep = config.training.lr_sweep
    if not sweep:
        return
    for rate in sweep:
        require_positive("training.lr_sweep", rate)
    if len(set(sweep)) != len(sweep):
        raise ConfigError(f"training.lr_sweep lists a rate twice: {sweep}")
    _non_negative("training.lr_sweep_seed", config.training.lr_sweep_seed)
    if config.training.lr_sweep_seed in config.run_seeds():
        raise ConfigError(
            f"training.lr_sweep_seed ({config.training.lr_sweep_seed}) is also a final seed "
            f"{config.run_seeds()}; the sweep needs a seed of its own"
        )


def validate_statistics(stats: StatisticsConfig) -> None:
    """Separate so that ``mlmclm analyze`` can check its statistics settings without a full config."""
    require_open_unit("statistics.significance_level", stats.significance_level)
    require_open_unit("statistics.confidence_level", stats.confidence_level)
    require_open_unit("statistics.power", stats.power)
    require_choice("statistics.correction", stats.correction, CORRECTIONS)
    require_choice("statistics.test", stats.test, TEST_CHOICES)
    if stats.bootstrap_resamples < 100:
        raise ConfigError(f"statistics.bootstrap_resamples must be >= 100, got {stats.bootstrap_resamples}")


# ------------------------------------------------------------------------------ settings without effect


@dataclass(frozen=True)
class ShadowedSetting:
    """``key`` has no effect while ``applies(config)`` holds, because of the setting ``by``."""

    key: str  # dotted config key that would be ignored
    by: str  # dotted config key whose value makes it ineffective
    applies: Callable[[ExperimentConfig], bool]
    reason: str  # why, and what to set instead


def _probes_off(config: ExperimentConfig) -> bool:
    return not config.probes.enabled


def _not_a_txt_corpus(config: ExperimentConfig) -> bool:
    """The separator only splits .txt files; the built-in corpus, hf: datasets and other formats ignore it."""
    path, declared = config.data.path, config.data.format
    if path is None or path.startswith("hf:") or declared == "hf":
        return True
    if declared != "auto":
        return declared != "txt"
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    if not suffixes or Path(path).is_dir():
        return False  # a directory of .txt files, or an extension the data stage reports itself
    return FORMATS_BY_SUFFIX.get(suffixes[-1], "txt") != "txt"


# Every pair where one setting silently overrides another. A flag that would have no effect is refused
# before any data work; a changed value without effect in the --config file (or API overrides) is a warning.
SHADOWED_SETTINGS: tuple[ShadowedSetting, ...] = (
    ShadowedSetting(
        "training.epochs", "training.max_steps", lambda c: c.training.max_steps is not None,
        "max_steps sets the step budget and overrides epochs; set max_steps (--max-steps) instead",
    ),
    ShadowedSetting(
        "training.warmup_ratio", "training.warmup_steps", lambda c: c.training.warmup_steps is not None,
        "warmup_steps overrides warmup_ratio",
    ),
    ShadowedSetting(
        "training.early_stopping_patience", "training.early_stopping", lambda c: not c.training.early_stopping,
        "patience only matters with early stopping",
    ),
    ShadowedSetting(
        "training.learning_rate", "training.lr_sweep", lambda c: bool(c.training.lr_sweep),
        "each condition's peak rate is chosen by the sweep",
    ),
    ShadowedSetting(
        "training.lr_sweep_seed", "training.lr_sweep", lambda c: not c.training.lr_sweep,
        "the sweep seed is only used with a sweep (--lr-sweep)",
    ),
    ShadowedSetting(
        "folds", "cross_validation", lambda c: not c.cross_validation,
        "folds are only used with cross-validation (--cross-validation)",
    ),
    ShadowedSetting(
        "base_seed", "seeds", lambda c: c.seeds is not None, "explicit seeds replace base_seed + i",
    ),
    ShadowedSetting(
        "workers", "executor", lambda c: c.executor == "ray",
        "Ray schedules runs by the cluster's CPUs and GPUs, not by workers",
    ),
    *(
        ShadowedSetting(f"ray.{name}", "executor", lambda c: c.executor != "ray", "only the Ray executor uses it")
        for name in ("address", "max_retries", "cpus_per_run", "gpus_per_run")
    ),
    ShadowedSetting(
        "data.mlm_strategy", "objectives", lambda c: not uses_masking(c.objectives), "no MLM runs are planned",
    ),
    ShadowedSetting(
        "data.clm_strategy", "objectives", lambda c: "clm" not in c.objectives, "no CLM runs are planned",
    ),
    *(
        ShadowedSetting(
            f"data.{name}", "objectives", lambda c: not uses_masking(c.objectives), "no MLM runs are planned"
        )
        for name in ("mlm_probability", "mask_replace_prob", "random_replace_prob")
    ),
    ShadowedSetting(
        "training.hybrid_clm_fraction", "objectives", lambda c: "clm_mlm" not in c.objectives,
        "no clm_mlm runs are planned",
    ),
    ShadowedSetting(
        "training.mntp_causal_fraction", "objectives", lambda c: "mntp" not in c.objectives,
        "no mntp runs are planned",
    ),
    ShadowedSetting(
        "probes.eval_every_unit", "probes.eval_every", lambda c: c.probes.eval_every is None,
        "the unit only matters with intermediate probes (--probe-every)",
    ),
    ShadowedSetting(
        "data.vocab_size", "data.tokenizer", lambda c: c.data.tokenizer is not None,
        "a given tokenizer brings its own vocabulary; vocab_size only sizes a tokenizer trained here",
    ),
    ShadowedSetting(
        "data.document_separator", "data.path", _not_a_txt_corpus,
        "the separator only splits .txt corpora (data.path of a .txt file or a directory)",
    ),
)


def shadowed_settings() -> tuple[ShadowedSetting, ...]:
    """:data:`SHADOWED_SETTINGS`, the settings of components that are not chosen (a strategy's registry says
    which key chooses it), and every ``probes.*`` key under ``--no-probes``. A function: component keys are
    known only once their modules have registered them."""
    components = tuple(
        ShadowedSetting(f"{section}.{key}", by, applies, reason)
        for (section, owner), (by, applies, reason) in _UNUSED_RULES.items()
        for key in settings_keys(section, owner)
    )
    probes = tuple(
        ShadowedSetting(f"probes.{key}", "probes.enabled", _probes_off, "probes are disabled (--no-probes)")
        for key in config_keys(ProbeConfig)
        if key != "enabled"
    )
    return SHADOWED_SETTINGS + components + probes


def _sets(mapping: Any, dotted: str) -> bool:
    """Whether the nested mapping ``mapping`` (one config layer) sets the key ``dotted``."""
    for part in dotted.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return False
        mapping = mapping[part]
    return True


def _source(dotted: str, layers: list[tuple[str, dict[str, Any]]]) -> int:
    """Index of the highest layer that sets ``dotted``; -1 when the built-in default stands."""
    found = [index for index, (_, layer) in enumerate(layers) if _sets(layer, dotted)]
    return found[-1] if found else -1


def _value(obj: Any, dotted: str) -> Any:
    """The value of a dotted key users write, a component's setting (``data.span_max_length``) included."""
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, ComponentSection) else getattr(obj, part)
    return obj


def check_shadowed_settings(config: ExperimentConfig, layers: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse a flag, and warn about a --config value, that another setting makes ineffective.

    A value counts as given only where the user gave it (a flag, the --config file or API overrides; not
    the --quick-test preset, a shipped preset file or the defaults) and at a layer at least as high as the
    setting that overrides it: ``--no-probes`` over a file's ``probes.mode`` is a deliberate override, not a
    mistake. A value equal to the built-in default changes nothing, so a copy of ``configs/default.yaml`` warns
    about nothing.
    """
    defaults = ExperimentConfig()
    for rule in shadowed_settings():
        source = _source(rule.key, layers)
        if source < 0 or _is_preset(layers[source][0]) or not rule.applies(config):
            continue
        by_source = _source(rule.by, layers)
        if source < by_source:
            continue
        label = layers[source][0]
        by_label = layers[by_source][0] if by_source >= 0 else "the default"
        value = _value(config, rule.key)
        message = (
            f"{rule.key} = {value!r} (from {label}) has no effect because {rule.by} = "
            f"{_value(config, rule.by)!r} (from {by_label}): {rule.reason}"
        )
        if label == COMMAND_LINE_LAYER:
            raise ConfigError(message)
        if value != _value(defaults, rule.key):
            log.warning("warning: %s", message)


def _is_preset(label: str) -> bool:
    return label == QUICK_TEST_LAYER or label.startswith(PRESET_LAYER_PREFIX)


def dump_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML, in the layout of ``configs/default.yaml``."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
