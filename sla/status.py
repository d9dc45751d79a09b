"""SLA status of a ticket at an instant: met, breached, warning, paused, remaining time.

Pure: input is a policy, the ticket's timeline facts and ``now``; see :mod:`sla.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sla.clock import elapsed_excluding
from sla.policy import Metric, SlaPolicy, TicketFacts, due_and_warn, paused_for

__all__ = ["MetricStatus", "SlaStatus", "evaluate"]


@dataclass(frozen=True, slots=True)
class MetricStatus:
    """One metric at ``now``: ``met`` is None while open; remaining is in business seconds."""

    metric: Metric
    target_seconds: float
    due: datetime | None
    warn_at: datetime | None
    elapsed_seconds: float
    remaining_seconds: float
    met: bool | None
    breached: bool
    warning: bool
    paused: bool


@dataclass(frozen=True, slots=True)
class SlaStatus:
    """Status of every tracked metric of a ticket at ``now``."""

    metrics: tuple[MetricStatus, ...]

    def get(self, metric: Metric) -> MetricStatus | None:
        """The status of one metric, or ``None`` if it is not tracked/running."""
        return next((m for m in self.metrics if m.metric is metric), None)

    @property
    def breached(self) -> bool:
        """Whether any metric is breached (missed or overdue)."""
        return any(m.breached for m in self.metrics)


def evaluate(policy: SlaPolicy, facts: TicketFacts, now: datetime) -> SlaStatus:
    """Met / breached / remaining for each applicable metric at ``now``.

    A metric completed at or before its due instant is met; one still open at or after its due
    instant (or completed after it) is breached.
    """
    result: list[MetricStatus] = []
    for metric in Metric:
        start, target = facts.start(metric), policy.target(metric)
        if start is None or target is None or not policy.applies(metric, facts.channel):
            continue
        base, paused = policy.time_base(metric), paused_for(policy, metric, facts.pauses)
        due, warn = due_and_warn(policy, metric, start, facts.pauses)
        done = facts.completed(metric) or (
            facts.resolved_at if metric is not Metric.RESOLUTION else None
        )
        until = min(done, now) if done is not None else now
        elapsed = elapsed_excluding(base, start, until, paused)
        met = None if done is None else due is None or done <= due
        breached = met is False if done is not None else due is not None and now >= due
        is_paused = any(p.end is None and p.start <= now for p in paused) and done is None
        warning = done is None and warn is not None and now >= warn and not breached
        result.append(
            MetricStatus(
                metric=metric,
                target_seconds=target,
                due=due,
                warn_at=warn,
                elapsed_seconds=elapsed,
                remaining_seconds=target - elapsed,
                met=met,
                breached=breached,
                warning=warning,
                paused=is_paused,
            )
        )
    return SlaStatus(tuple(result))
