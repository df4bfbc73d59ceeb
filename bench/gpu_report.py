"""Collects bench/gpu.sh's step logs into one Markdown table (OUT/gpu.md) and one JSON file (OUT/gpu.json).

Why a separate collector: each step runs capped by ``timeout`` and may be cut; every step that finished
has left its last line as JSON (bench/step.py, bench/fusion.py), so the table is built from whatever is
there and names each step that did not finish. Step times are the last phase's median (PaRe's hard
top-k epochs; steady epochs for the bare body).

Capture's default (issue 21) is decided by a default-length trial, compile time included: capture costs
its run's extra seconds (the captured run's wall time minus eager's, first repeat: set-up and compiling)
and saves the per-step difference, so it pays after ``extra s / saved ms`` steps; a default trial (the
bench's task and batch, ``train.epochs`` of the default config) takes ``steps_per_epoch x epochs`` steps.

MFU of the paper-size PaRe step (RoBERTa-base, full fine-tune, batch 64 x 64 tokens): model FLOPs of
the matmuls, 2 per multiply-add, the backward twice the forward (Kaplan et al. 2020, "Scaling Laws for
Neural Language Models", section 2.1), times 2 for PaRe's two backbone passes (clean and mixed).
Per layer and token: 4 h^2 (q, k, v, out) + 2 h f (feed-forward) multiply-adds, plus 2 s h for the
attention scores and their weighted sum. The peak is H200 SXM's dense bf16, 989 TFLOP/s (NVIDIA's
H200 data sheet; its 1979 is with sparsity), overridable with --peak-tflops.

    python bench/gpu_report.py OUT [--quick] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PAPER = {"layers": 12, "hidden": 768, "ffn": 3072, "batch": 64, "tokens": 64}  # bench/gpu.sh's paper_pare
QUICK = {"layers": 2, "hidden": 32, "ffn": 64, "batch": 16, "tokens": 8}  # the tiny roberta config, --quick


def pare_step_flops(layers: int, hidden: int, ffn: int, batch: int, tokens: int) -> float:
    """Training FLOPs of one PaRe step with the whole body trained (two backbone passes)."""
    macs_per_token = layers * (4 * hidden * hidden + 2 * hidden * ffn + 2 * tokens * hidden)
    return 2 * 2 * 3 * macs_per_token * batch * tokens


def last_json(log: Path) -> dict | None:
    """The step's result: its log's last line that parses as a JSON object, None if it has none."""
    if not log.exists():
        return None
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def steady_ms(result: dict | None, arm: str) -> float | None:
    """An arm's ms per step in the last phase of a bench/step.py result."""
    if result is None:
        return None
    return list(result["ms"].values())[-1][arm]


def break_even(eager: dict | None, captured: dict | None, arm: str) -> dict | None:
    """What capture costs and saves for ``arm`` of a bench/step.py result pair, and the steps it needs to pay."""
    if eager is None or captured is None:
        return None
    from pare_core.config import TrialConfig

    extra_s = captured["run_s"][arm][0] - eager["run_s"][arm][0]
    saved_ms = steady_ms(eager, arm) - steady_ms(captured, arm)
    default_steps = eager["steps_per_epoch"] * TrialConfig().train.epochs
    steps = extra_s / (saved_ms / 1000) if saved_ms > 0 else None
    return {"extra_s": extra_s, "saved_ms": saved_ms, "break_even_steps": steps, "default_trial_steps": default_steps}


def collect(out: Path, quick: bool, peak_tflops: float) -> dict:
    steps = {}
    for rc in sorted(out.glob("*.rc")):
        code, seconds = rc.read_text().split()
        steps[rc.stem] = {"rc": int(code), "seconds": int(seconds), "result": last_json(rc.with_suffix(".log"))}
    res = {name: step["result"] for name, step in steps.items()}
    ms = {
        mode: {
            "fine-tune": steady_ms(res.get(f"pare_{mode}"), "finetune"),
            "PaRe": steady_ms(res.get(f"pare_{mode}"), "pare"),
            "bare body": steady_ms(res.get(f"bare_{mode}"), "bare body"),
            "official structure": steady_ms(res.get(f"official_{mode}"), "official"),
            "ours (beside official)": steady_ms(res.get(f"official_{mode}"), "ours"),
        }
        for mode in ("eager", "captured")
    }
    dims = QUICK if quick else PAPER
    flops = pare_step_flops(**dims)
    paper_ms = steady_ms(res.get("paper_pare"), "pare")
    mfu = None if paper_ms is None else flops / (paper_ms / 1000) / (peak_tflops * 1e12)
    weights = (out / "weights.txt").read_text().splitlines() if (out / "weights.txt").exists() else []
    return {
        "quick": quick,
        "weights": weights,
        "steps": {name: {k: v for k, v in step.items() if k != "result"} for name, step in steps.items()},
        "ms_per_step": ms,
        "capture_break_even": {
            arm: break_even(res.get("pare_eager"), res.get("pare_captured"), arm) for arm in ("finetune", "pare")
        },
        "fused_vs_separate": (res.get("fused_vs_separate") or {}).get("samples_per_s"),
        "fused_vs_separate_wall_s": (res.get("fused_vs_separate") or {}).get("wall_s"),
        "gate_ablation_s": res.get("gate_ablation"),
        "paper_pare": {"dims": dims, "flops_per_step": flops, "ms": paper_ms, "peak_tflops": peak_tflops, "mfu": mfu},
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    lines = []
    if report["quick"]:
        lines.append("**Quick CPU rehearsal: tests the script, not a figure.**\n")
    lines.append("Weights: " + "; ".join(report["weights"]) + "\n")
    lines += ["| measurement | eager | captured | eager / captured |", "|---|---|---|---|"]
    for name, eager in report["ms_per_step"]["eager"].items():
        captured = report["ms_per_step"]["captured"][name]
        ratio = eager / captured if eager and captured else None
        lines.append(f"| {name} ms/step | {fmt(eager)} | {fmt(captured)} | {fmt(ratio, '.2f')} |")
    for arm, even in report["capture_break_even"].items():
        if even:
            steps = even["break_even_steps"]
            pays = "never" if steps is None else f"after {steps:.0f} steps"
            lines.append(
                f"| {arm}: capture's extra run s / saved ms per step | {even['extra_s']:.1f} | {even['saved_ms']:.2f} | "
                f"pays {pays} (a default trial: {even['default_trial_steps']} steps) |"
            )
    for seeds, rate in (report["fused_vs_separate"] or {}).items():
        lines.append(
            f"| {seeds} seeds samples/s, separate / fused | {rate['separate']:.0f} | {rate['fused']:.0f} | "
            f"fused/separate {rate['fused'] / rate['separate']:.2f} |"
        )
    for seeds, wall in (report["fused_vs_separate_wall_s"] or {}).items():
        lines.append(
            f"| {seeds} seeds end to end s (start-up included), separate / fused | {wall['separate']:.1f} | "
            f"{wall['fused']:.1f} | separate/fused {wall['separate'] / wall['fused']:.2f} |"
        )
    ablation = report["gate_ablation_s"]
    if ablation:
        lines.append(
            f"| default gate ablation s end to end, plain / fused | {fmt(ablation['unfused_s'])} | "
            f"{fmt(ablation['fused_s'])} | |"
        )
    paper = report["paper_pare"]
    lines.append(
        f"| paper-size PaRe step ms, MFU at {paper['flops_per_step'] / 1e12:.3f} TFLOP/step, "
        f"peak {paper['peak_tflops']:.0f} TFLOP/s | {fmt(paper['ms'])} | | MFU {fmt(paper['mfu'], '.1%')} |"
    )
    cut = [f"{name} (rc {step['rc']}, {step['seconds']} s)" for name, step in report["steps"].items() if step["rc"]]
    lines.append("\nSteps that did not finish: " + (", ".join(cut) if cut else "none"))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    report = collect(args.out, args.quick, args.peak_tflops)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=1))
    table = markdown(report)
    (args.out / "gpu.md").write_text(table)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
