"""Place in line and expected wait for a caller, from the SLA service's live board.

``SlaService.queue_wait`` (``contact_center.sla_wait``) gives both without a database read:
the line of the call's queue on the voice channel in the router's order, and
``(place - free places) * handle time / staffed places`` (None while nobody is staffed or no
handle time is known). The chat widget tells its visitors the same figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contact_center.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from contact_center.sla_service import SlaService

__all__ = ["queue_estimate"]


def queue_estimate(
    sla: SlaService | None, ticket_id: int | None
) -> tuple[int | None, float | None]:
    """(place in line, expected wait in seconds) of a waiting call; None where not known
    (no SLA service, or the board does not hold the call as waiting)."""
    if sla is None or ticket_id is None:
        return None, None
    contact = sla.board.waiting.get(ticket_id)
    if contact is None or contact.queue_id is None:
        return None, None
    try:
        wait = sla.queue_wait(contact.queue_id, ticket_id=ticket_id)
    except (NotFound, ValidationError):
        return None, None
    return wait.position, wait.expected_wait_seconds
