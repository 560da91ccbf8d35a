"""Each validation check reaches its verdict through the ordinary analysis, and a broken condition makes it FAIL.

The documents are fabricated (tests/validate/fabricated.py) so the known answer is under the test's control:
the correct condition must PASS and the broken one must FAIL, which a check that always passes cannot do.
"""

from __future__ import annotations

import dataclasses

import pytest

from mlmclm.analysis import power
from mlmclm.validate import aa, nope_structure, planted, probe_validity
from mlmclm.validate.grids import AA, NOPE, PLANTED, PLANTED_TINY, STANDARD, aa_seeds, main_seeds
from mlmclm.validate.records import PRESETS, CheckResult
from tests.validate.fabricated import CHANCE, TASKS, grid, probe_metrics

PRESET = dataclasses.replace(PRESETS["cpu"], runs=7, aa_repetitions=2, aa_labels=2, aa_runs=6, planted_repetitions=2)


def verdict(name: str, findings) -> bool:
    return CheckResult(name, "?", tuple(findings)).passed


def aa_grid(shift_label: int | None, shift: float) -> dict:
    """The A/A grid; runs of label ``shift_label`` (in every repetition) get ``shift`` added to their accuracy."""
    shifted = {s for r in range(PRESET.aa_repetitions) for s in aa_seeds(PRESET, r, shift_label)} if (
        shift_label is not None) else set()
    seeds = [s for r in range(PRESET.aa_repetitions) for j in range(PRESET.aa_labels) for s in aa_seeds(PRESET, r, j)]
    return grid(["mlm"], ["standard"], seeds,
                lambda o, a, seed, rng: probe_metrics(rng, 0.7 + shift * (seed in shifted), 0.6, CHANCE))


def test_aa_passes_without_a_difference_and_fails_when_one_label_differs():
    assert verdict("aa", aa.evaluate({AA: aa_grid(None, 0.0)}, PRESET))
    findings = aa.evaluate({AA: aa_grid(1, 0.1)}, PRESET)
    assert findings[0].numbers["false_positives"] == PRESET.aa_repetitions
    assert not verdict("aa", findings)


def planted_grids(handicap: float) -> dict:
    """The planted grids: the handicapped arms' loss is higher by ``handicap`` (5 SDs per 0.1)."""
    full = grid(["mlm"], ["standard"], main_seeds(PRESET), lambda o, a, s, rng: probe_metrics(rng, 0.75, 0.6, CHANCE))
    low = grid(["mlm"], ["standard"], main_seeds(PRESET),
               lambda o, a, s, rng: probe_metrics(rng, 0.75, 0.6, CHANCE, val_loss=4.0 + handicap))
    tiny_seeds = [s for r in range(PRESET.planted_repetitions) for s in aa_seeds(PRESET, r, 0)]
    tiny_low = grid(["mlm"], ["standard"], tiny_seeds,
                    lambda o, a, s, rng: probe_metrics(rng, 0.7, 0.6, CHANCE, val_loss=4.0 + handicap))
    return {STANDARD: full, PLANTED: low, AA: aa_grid(None, 0.0), PLANTED_TINY: tiny_low}


def test_planted_effect_is_found_in_the_right_direction_and_a_zero_effect_fails():
    findings = planted.evaluate(planted_grids(0.1), PRESET)
    assert verdict("planted", findings)
    assert findings[2].numbers["detected"] == PRESET.planted_repetitions  # 5 SDs of val_loss: always detected
    assert not verdict("planted", planted.evaluate(planted_grids(0.0), PRESET))
    assert not verdict("planted", planted.evaluate(planted_grids(-0.1), PRESET))  # wrong direction


def test_tiny_repetitions_set_detections_beside_the_power_of_the_sign_flip_test_at_the_mean_g():
    # not statsmodels' t-test power at the mean |d_z|: d_z overstates δ at n = 6, and the t-test is not the test
    numbers = planted.evaluate(planted_grids(0.01), PRESET)[2].numbers
    assert numbers["power_method"] == power.SIMULATED_SIGN_FLIP
    n = PRESET.aa_runs
    assert numbers["implied_power"] == power.power_at(numbers["mean_abs_g"], n, n, paired=True, alpha=PRESET.alpha)


def nope_grid(mlm_nope_accuracy: float) -> dict:
    def metrics(objective, attention, seed, rng):
        blind = objective == "mlm" and attention == "nope"
        return probe_metrics(rng, mlm_nope_accuracy if blind else 0.7, 0.6, CHANCE)

    seeds = main_seeds(PRESET)
    return {NOPE: grid(["mlm", "clm"], ["nope"], seeds, metrics), STANDARD: grid(["mlm"], ["standard"], seeds, metrics)}


def test_nope_structure_passes_at_chance_and_fails_when_position_leaks_into_mlm_nope():
    assert verdict("nope_structure", nope_structure.evaluate(nope_grid(CHANCE), PRESET))
    leaked = nope_structure.evaluate(nope_grid(0.7), PRESET)  # as if nope_mlm could see order
    assert not leaked[0].passed and not verdict("nope_structure", leaked)


@pytest.mark.parametrize(("accuracy", "control", "passes"), [
    (0.75, CHANCE, True),
    (0.75, 0.65, True),  # the probe memorises some types (control above chance) but the task beats that
    (0.6, CHANCE, False),  # no gain over random init
    (0.75, 0.8, False),  # the control scores as well as the task: not selective
])
def test_probe_validity_needs_a_gain_over_random_init_and_a_selective_probe(accuracy, control, passes):
    raws = {STANDARD: grid(["mlm"], ["standard"], main_seeds(PRESET),
                           lambda o, a, s, rng: probe_metrics(rng, accuracy, 0.6, control))}
    findings = probe_validity.evaluate(raws, PRESET, {task: CHANCE for task in TASKS})
    assert verdict("probe_validity", findings) is passes


@pytest.mark.parametrize(("control_chance", "passes"), [(0.75, True), (CHANCE, False)])
def test_probe_validity_takes_each_accuracy_above_its_own_chance(control_chance, passes):
    """A control of 0.8 against a task of 0.7 is selective when the control's chance is 0.75 (0.05 above it,
    the task 0.2 above its 0.5), and is not when both chances are 0.5."""
    raws = {STANDARD: grid(["mlm"], ["standard"], main_seeds(PRESET),
                           lambda o, a, s, rng: probe_metrics(rng, 0.7, 0.6, 0.8))}
    findings = probe_validity.evaluate(raws, PRESET, dict.fromkeys(TASKS, control_chance))
    assert verdict("probe_validity", findings) is passes
