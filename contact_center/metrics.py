"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics"]


@dataclass(frozen=True, slots=True)
class Metrics:
    """The app's instruments."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    contacts: Counter
    events: Counter
    event_lag: Histogram

    @classmethod
    def create(cls) -> Metrics:
        """Fresh instruments on a fresh registry."""
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            requests=Counter(
                "cc_http_requests", "HTTP requests", ["method", "route", "status"], registry=reg
            ),
            latency=Histogram(
                "cc_http_request_seconds",
                "HTTP request latency",
                ["route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=reg,
            ),
            contacts=Counter(
                "cc_contacts_ingested", "Inbound contacts", ["channel", "outcome"], registry=reg
            ),
            events=Counter("cc_events", "Committed events", ["type"], registry=reg),
            event_lag=Histogram(
                "cc_event_lag_seconds",
                "From an event's transaction to its dispatch in this process (the stream's lag)",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300),
                registry=reg,
            ),
        )
