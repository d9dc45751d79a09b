"""The agent console and wallboard: pages, static assets and Socket.IO namespaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_console.pages import pages_registry

__all__ = ["namespace_factories", "pages_registry"]


def namespace_factories() -> list[Callable[[Any], Any]]:
    """Socket.IO namespaces of the console and wallboard (each built with the app's services)."""
    from agent_console.agent import AgentNamespace
    from agent_console.wallboard import WallboardNamespace

    return [AgentNamespace, WallboardNamespace]
