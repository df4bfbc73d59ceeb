import pytest

from pare_core.config import AUTO, CurriculumConfig, TrialConfig
from pare_core.curriculum import SHAPES, n_replaced, ratio


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("start,end", [(0.64, 0.0), (0.5, 0.1), (0.2, 0.8)])
def test_endpoints_formula_reaches_end_and_is_monotone(shape, start, end):
    cfg = CurriculumConfig(shape=shape, start=start, end=end, levels=4, formula="endpoints")
    epochs = 20
    values = [ratio(cfg, e, epochs) for e in range(epochs)]
    assert values[0] == pytest.approx(start)
    assert values[-1] == pytest.approx(start if shape == "constant" else end)
    sign = 1 if end >= start else -1
    diffs = [sign * (b - a) for a, b in zip(values, values[1:])]
    assert all(d >= -1e-12 for d in diffs), values
    assert all(min(start, end) - 1e-12 <= v <= max(start, end) + 1e-12 for v in values)


def test_official_formula_matches_the_official_k():
    """k = int(begin - end * ep / epochs), BIT-DA/PaRe src/main_PaRe.py:192 (2D) and main_PaRe_1d.py (1D)."""
    tokens = 3136  # 2D: 56 x 56 Swin patches, begin_num 2000, end_num 1500, 60 epochs
    cfg = CurriculumConfig(start=2000 / tokens, end=500 / tokens, formula="official")
    official = [int(2000 - 1500 * ep / 60) for ep in range(60)]
    assert [n_replaced(cfg, ep, 60, tokens) for ep in range(60)] == official
    assert official[-1] == 525  # the last epoch still mixes
    ecg = CurriculumConfig(start=32 / 50, end=0.0, formula="official")  # 1D: seq_num 32 of 50 tokens, 15 epochs
    assert [n_replaced(ecg, ep, 15, 50) for ep in range(15)] == [int(32 - 32 * ep / 15) for ep in range(15)]


def test_paper_default_end_never_reaches_zero_in_2d():
    from pare_core.config import resolve

    cfg = resolve(TrialConfig(), kind="classification", layout="2d")
    assert cfg.curriculum.end == pytest.approx(0.16) and cfg.curriculum.formula == "official"
    assert min(n_replaced(cfg.curriculum, ep, 12, 8) for ep in range(12)) >= 1
    one_d = resolve(TrialConfig(), kind="classification", layout="1d")
    assert one_d.curriculum.end == 0.0


def test_unresolved_end_is_refused():
    with pytest.raises(ValueError, match="resolve"):
        ratio(CurriculumConfig(end=AUTO), 0, 10)


def test_shapes_differ_in_the_middle():
    mids = {s: ratio(CurriculumConfig(shape=s, start=0.6, end=0.0, formula="endpoints"), 10, 21) for s in SHAPES}
    assert mids["linear"] == pytest.approx(0.3)
    assert mids["cosine"] == pytest.approx(0.3)
    assert mids["exp"] < 0.1 and mids["constant"] == pytest.approx(0.6)
    assert ratio(CurriculumConfig(shape="cosine", start=0.6, end=0.0, formula="endpoints"), 5, 21) > 0.45  # slow start


def test_endpoints_k_rounds_ratio_times_tokens():
    cfg = CurriculumConfig(shape="linear", start=0.64, end=0.0, formula="endpoints")
    assert n_replaced(cfg, 0, 10, 50) == 32  # the paper's ECG setting: 32 of 50 tokens
    assert n_replaced(cfg, 9, 10, 50) == 0
