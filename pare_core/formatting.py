"""How numbers and tables are written, in one place: the task table, the live sweep summary, the
analysis tables and the benchmarks all print the same way.

Markdown tables go through tabulate with number parsing off, so cells appear exactly as given
(``0.100`` stays ``0.100``, ``—`` stays ``—``).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

from tabulate import tabulate

MISSING = "—"


def markdown_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A pipe Markdown table of the cells as given."""
    return tabulate(
        [[str(c) for c in row] for row in rows],
        headers=[str(h) for h in headers],
        tablefmt="pipe",
        disable_numparse=True,
    )


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``0.123 ± 0.010``; ``0.123`` without a std (one value), ``—`` without a mean."""
    if missing(mean):
        return MISSING
    return f"{mean:.{digits}f}" + ("" if missing(std) else f" ± {std:.{digits}f}")


def mean_std_of(values: Sequence[float], digits: int = 3, scale: float = 1.0, count: bool = False) -> str:
    """Mean ± sample std of the finite ``values`` (× ``scale``, e.g. 100 for percent); with ``count``,
    `` (n=5)`` after it."""
    finite = [scale * v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return MISSING
    std = statistics.stdev(finite) if len(finite) > 1 else math.nan
    return mean_std(statistics.mean(finite), std, digits) + (f" (n={len(finite)})" if count else "")


def short(value: Any) -> Any:
    """Floats with 4 significant digits (``0.0003``, ``5.5e-03`` stays readable); other values as they are."""
    return f"{value:.4g}" if isinstance(value, float) else value


def fmt_duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h04m``, ``2d05h``: short and unambiguous at a glance."""
    if not math.isfinite(seconds):
        return MISSING
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
