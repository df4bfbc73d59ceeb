import pytest

from pare_core.config import CurriculumConfig
from pare_core.curriculum import SHAPES, n_replaced, ratio


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("start,end", [(0.64, 0.0), (0.5, 0.1), (0.2, 0.8)])
def test_endpoints_and_monotonicity(shape, start, end):
    cfg = CurriculumConfig(shape=shape, start=start, end=end, levels=4)
    epochs = 20
    values = [ratio(cfg, e, epochs) for e in range(epochs)]
    assert values[0] == pytest.approx(start)
    assert values[-1] == pytest.approx(start if shape == "constant" else end)
    sign = 1 if end >= start else -1
    diffs = [sign * (b - a) for a, b in zip(values, values[1:])]
    assert all(d >= -1e-12 for d in diffs), values
    assert all(min(start, end) - 1e-12 <= v <= max(start, end) + 1e-12 for v in values)


def test_shapes_differ_in_the_middle():
    mids = {s: ratio(CurriculumConfig(shape=s, start=0.6, end=0.0), 10, 21) for s in SHAPES}
    assert mids["linear"] == pytest.approx(0.3)
    assert mids["cosine"] == pytest.approx(0.3)
    assert mids["exp"] < 0.1 and mids["constant"] == pytest.approx(0.6)
    assert ratio(CurriculumConfig(shape="cosine", start=0.6, end=0.0), 5, 21) > 0.45  # slow start


def test_k_rounds_ratio_times_tokens():
    cfg = CurriculumConfig(shape="linear", start=0.64, end=0.0)
    assert n_replaced(cfg, 0, 10, 50) == 32  # the paper's ECG setting: 32 of 50 tokens
    assert n_replaced(cfg, 9, 10, 50) == 0
