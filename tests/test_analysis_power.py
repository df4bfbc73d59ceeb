"""How many seeds an observed effect needs: the power column of the arm table and the index.md sentence.

The answers are checked against the power of a two-sided paired t-test computed here directly from
scipy's noncentral t, not against statsmodels (which computes them in the code under test).
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
from test_analysis_stats import gate_sweep

from analysis import stats, tables
from analysis.report import underpowered_notes


def paired_power(d_z: float, pairs: int, alpha: float = 0.05) -> float:
    """P(reject) of a two-sided one-sample t-test on ``pairs`` differences whose true mean/std is d_z."""
    df, nc = pairs - 1, abs(d_z) * math.sqrt(pairs)
    crit = scipy.stats.t.ppf(1 - alpha / 2, df)
    return float(scipy.stats.nct.sf(crit, df, nc) + scipy.stats.nct.cdf(-crit, df, nc))


@pytest.mark.parametrize("d_z", [0.3, -0.8, 1.5, 3.0, 10.0])
def test_seeds_needed_is_the_smallest_count_with_80_percent_power(d_z):
    n = int(stats.seeds_needed(d_z))
    assert paired_power(d_z, n) >= 0.8
    assert n == 2 or paired_power(d_z, n - 1) < 0.8


def test_seeds_needed_known_values_and_no_effect():
    assert stats.seeds_needed(0.5) == 34  # the textbook figure for a medium paired effect
    assert stats.seeds_needed(-0.5) == 34  # direction does not matter
    assert math.isnan(stats.seeds_needed(0.0)) and math.isnan(stats.seeds_needed(math.nan))


def test_comparisons_report_the_seeds_their_effect_needs():
    # topk: a large, consistent gain over none; random: a tiny, noisy one
    trials, keys = gate_sweep(
        {
            "none": [0.30, 0.32, 0.34, 0.31, 0.33],
            "random": [0.305, 0.31, 0.345, 0.30, 0.335],
            "topk": [0.20, 0.23, 0.25, 0.21, 0.24],
        }
    )
    compared = stats.compare_to_control(trials, keys, {"gate.selection": "none"}).set_index("arm")
    for arm in ("selection=random", "selection=topk"):
        assert compared.loc[arm, "seeds_needed"] == stats.seeds_needed(compared.loc[arm, "d_z"])
    assert compared.loc["selection=topk", "seeds_needed"] <= 5 < compared.loc["selection=random", "seeds_needed"]

    table = tables.arm_table(trials, keys, {"gate.selection": "none"})
    column = table.header.index("seeds for 80% power")
    cells = {row[1]: row[column] for row in table.rows}  # by selection, after the arm's name
    assert cells["none"] == "" and cells["topk"] == f"{compared.loc['selection=topk', 'seeds_needed']:.0f}"
    assert any("seeds for 80% power: seeds a paired t-test needs" in note for note in table.notes)
    assert "vs_control_seeds_needed" in tables.render(table, "csv").splitlines()[0]

    notes = underpowered_notes(table.numbers)
    assert len(notes) == 1 and "1 of 2 comparisons" in notes[0]
    assert "`selection=random`" in notes[0] and "`selection=topk`" not in notes[0]


def test_tiny_effects_show_a_bound_not_a_huge_count():
    assert tables.seeds_cell(7_848_863.0) == ">10,000" and tables.seeds_cell(34.0) == "34"
    assert tables.seeds_cell(math.nan) == "—"


def test_a_well_powered_sweep_gets_no_sentence():
    trials, keys = gate_sweep({"none": [0.30, 0.32, 0.34, 0.31, 0.33], "topk": [0.20, 0.23, 0.25, 0.21, 0.24]})
    assert underpowered_notes(tables.arm_table(trials, keys).numbers) == []
