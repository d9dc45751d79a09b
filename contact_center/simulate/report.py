"""The simulator's results: a table per channel against the Erlang prediction, and a PNG chart
of service level, mean wait and abandons through the run (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contact_center.simulate.model import (
    LIVE,
    Figures,
    Outcome,
    Prediction,
    Scenario,
    figures,
    predict,
    series,
)

__all__ = ["chart", "summary", "table"]


def summary(scenario: Scenario, outcomes: list[Outcome]) -> dict[str, Any]:
    """Per channel: what happened, and for live ones what Erlang A/C expects."""
    out: dict[str, Any] = {}
    for mix in scenario.mix:
        mine = [o for o in outcomes if o.arrival.channel == mix.channel]
        fig = figures(mine, scenario.threshold_seconds, scenario.short_abandon_seconds)
        pred = (
            predict(mix, scenario.agents, scenario.threshold_seconds)
            if mix.channel in LIVE
            else None
        )
        out[mix.channel] = {"figures": fig, "prediction": pred, "mix": mix}
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f} %"


def _sec(x: float | None) -> str:
    return "-" if x is None else f"{x:6.1f} s"


def table(scenario: Scenario, result: dict[str, Any]) -> str:
    """A plain-text table (what the CLI prints at the end)."""
    head = (f"{'channel':<8} {'offered':>7} {'answered':>8} {'aband.':>6} {'SL(V4)':>8} "
            f"{'in T/off':>8} {'Erlang':>8} {'wait':>8} {'Erlang':>8} {'aband.%':>8} "
            f"{'Erlang':>8} {'offer':>8}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for channel, r in result.items():
        f: Figures = r["figures"]
        p: Prediction | None = r["prediction"]
        lines.append(
            f"{channel:<8} {f.offered:>7} {f.answered:>8} {f.abandoned:>6} "
            f"{_pct(f.service_level):>8} {_pct(f.within_of_offered):>8} "
            f"{_pct(p.within_of_offered if p else None):>8} {_sec(f.mean_wait_seconds):>8} "
            f"{_sec(p.mean_wait_seconds if p else None):>8} "
            f"{_pct(f.abandoned_of_offered):>8} "
            f"{_pct(p.abandoned_of_offered if p else None):>8} "
            f"{_sec(f.mean_offer_seconds):>8}"
        )
    lines.append(
        f"T = {scenario.threshold_seconds:g} s; {scenario.agents} agents, one live contact each; "
        "SL(V4) = answered within T / (answered + abandoned - short abandons); 'in T/off' = "
        "answered within T / offered, the figure Erlang A predicts; wait = mean time to the "
        "answer or the hang-up; offer = mean time from arrival to the agent's offer event."
    )
    return "\n".join(lines)


def chart(scenario: Scenario, outcomes: list[Outcome], result: dict[str, Any], path: Path,
          step: float = 60.0) -> Path:  # fmt: skip
    """Service level, mean wait and abandons per ``step`` seconds, with the prediction dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # an operator's install without the dev extra
        raise RuntimeError("the chart needs matplotlib: pip install 'contact-center[dev]'") from err

    step = min(step, max(scenario.seconds / 5, 1.0))
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for channel in (c for c in result if c in LIVE):
        mine = [o for o in outcomes if o.arrival.channel == channel]
        points = list(series(mine, scenario.seconds, step, scenario.threshold_seconds,
                             scenario.short_abandon_seconds))  # fmt: skip
        xs = [t / 60 for t, _ in points]
        pred: Prediction | None = result[channel]["prediction"]
        rows = (
            ("answered within T / offered", [f.within_of_offered for _, f in points],
             pred.within_of_offered if pred else None, 100.0),
            ("mean wait (s)", [f.mean_wait_seconds for _, f in points],
             pred.mean_wait_seconds if pred else None, 1.0),
            ("abandoned / offered", [f.abandoned_of_offered for _, f in points],
             pred.abandoned_of_offered if pred else None, 100.0),
        )  # fmt: skip
        for ax, (label, ys, predicted, scale) in zip(axes, rows, strict=True):
            ax.plot(xs, [None if y is None else y * scale for y in ys], marker="o",
                    label=f"{channel} simulated")  # fmt: skip
            if predicted is not None:
                ax.axhline(predicted * scale, linestyle="--",
                           label=f"{channel} {pred.model if pred else ''}")  # fmt: skip
            ax.set_ylabel(label + (" %" if scale == 100.0 else ""))
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"Simulated service against Erlang ({scenario.agents} agents)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
