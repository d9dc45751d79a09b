"""Where a contact stands in its queue and how long it will wait: for the chat widget and the
voice hold message (``SlaService.queue_wait``).

Figures come from the live board (no database read): the line of a queue on a channel in the
router's order (priority, then arrival, then ticket id), the agents who serve the queue, their
places on the channel (capacity) and how many are free right now, and today's handle time.

Estimate for the contact at position *k* (1 = next): with *F* free places (available agents
of the queue, capacity minus the live contacts they handle) and *S* staffed places (agents of
the queue who are ``available`` or in ``wrap_up``, times their capacity), the first *F* in line
get an offer at once (0 s); beyond them each of the *S* places frees up once per handle time
(AHT) on average, so ``expected_wait = (k - F) * AHT / S``. Unknown (``None``, with a
``reason``) when nobody is staffed or no handle time is known yet. AHT is today's for the
queue and channel, else the queue's over live channels, else ``BoardConfig.default_aht_seconds``.
It ignores that the same agents also serve other queues: an estimate, not a promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from contact_center.errors import NotFound, ValidationError
from sla import metrics as m
from tickets.domain import LIVE_CHANNELS, Channel

if TYPE_CHECKING:
    from contact_center.sla_live import LiveBoard

__all__ = ["QueueWait", "queue_line", "queue_wait"]

_CHANNELS = frozenset(c.value for c in Channel)
_STAFFED = ("available", "wrap_up")


@dataclass(frozen=True, slots=True)
class QueueWait:
    """A queue's line on one channel, and one contact's place in it."""

    queue_id: int
    channel: str
    waiting: int
    """Contacts waiting in this queue on this channel (not answered yet, offers included)."""
    position: int
    """1-based place of ``ticket_id`` in line; without a ticket: the place of a new contact."""
    ticket_id: int | None
    agents: int
    """Agents of the queue who are available or in wrap-up."""
    places: int
    """Their places on the channel (capacity)."""
    free_places: int
    """Places of available agents not taken by live contacts right now."""
    aht_seconds: float | None
    aht_source: str | None
    """``queue_channel``, ``queue`` (live channels) or ``default``."""
    expected_wait_seconds: float | None
    reason: str | None = None
    """Why ``expected_wait_seconds`` is None."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)


def _aht(
    board: LiveBoard, now: float, queue_id: int, channel: str
) -> tuple[float | None, str | None]:
    rec, tz = board.recorder, board.config.timezone
    aht = m.aht(rec.today(now, tz, queue=queue_id, channel=channel))
    if aht is not None:
        return aht, "queue_channel"
    live = m.Counters()
    for ch in sorted(c.value for c in LIVE_CHANNELS):
        live.add(rec.today(now, tz, queue=queue_id, channel=ch))
    aht = m.aht(live)
    if aht is not None:
        return aht, "queue"
    default = board.config.default_aht_seconds
    return (default, "default") if default is not None else (None, None)


def queue_wait(
    board: LiveBoard,
    now: float,
    queue_id: int,
    *,
    ticket_id: int | None = None,
    channel: str | None = None,
) -> QueueWait:
    """The line of ``queue_id`` on ``channel`` (default: the ticket's) and ``ticket_id``'s place.

    Raises :class:`~contact_center.errors.ValidationError` for a non-integer queue or ticket
    id, an unknown channel, neither a channel nor a ticket, or a channel that is not the
    ticket's; :class:`~contact_center.errors.NotFound` for an unknown queue or a ticket that is
    not waiting in it (answered, closed, or in another queue).
    """
    if isinstance(queue_id, bool) or not isinstance(queue_id, int):
        raise ValidationError("queue_id must be an integer", fields={"queue_id": "integer"})
    if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int)):
        raise ValidationError("ticket_id must be an integer", fields={"ticket_id": "integer"})
    if channel is not None and channel not in _CHANNELS:
        raise ValidationError(f"unknown channel {channel!r}",
                              fields={"channel": f"one of {sorted(_CHANNELS)}"})  # fmt: skip
    if queue_id not in board.catalog.queues:
        raise NotFound(f"no queue {queue_id}")
    contact = None if ticket_id is None else board.waiting.get(ticket_id)
    if ticket_id is not None and (contact is None or contact.queue_id != queue_id):
        raise NotFound(f"ticket {ticket_id} is not waiting in queue {queue_id}")
    if contact is not None:
        if channel is not None and channel != contact.channel:
            raise ValidationError(
                f"ticket {ticket_id} is a {contact.channel} contact",
                fields={"channel": f"the ticket's is {contact.channel}"},
            )
        channel = contact.channel
    if channel is None:
        raise ValidationError("give a channel or a ticket", fields={"channel": "required"})
    line = board.waiting.line(queue_id, channel)
    position = line.index(ticket_id) + 1 if ticket_id is not None else len(line) + 1
    return _Line(board, now, queue_id, channel, line).at(position, ticket_id)


def queue_line(
    board: LiveBoard,
    now: float,
    queue_id: int,
    channel: str,
    only: Callable[[int], bool] | None = None,
) -> list[QueueWait]:
    """Every contact waiting in ``queue_id`` on ``channel``, in line order, with its place and
    expected wait: what :func:`queue_wait` gives each of them, computed once for the line
    (the chat widget pushes this to every waiting visitor when the line moves). ``only``:
    just the tickets it accepts (places still count the whole line); the staffing figures, a
    pass over every agent, are computed only when some contact is left."""
    if queue_id not in board.catalog.queues:
        raise NotFound(f"no queue {queue_id}")
    if channel not in _CHANNELS:
        raise ValidationError(f"unknown channel {channel!r}",
                              fields={"channel": f"one of {sorted(_CHANNELS)}"})  # fmt: skip
    line = board.waiting.line(queue_id, channel)
    places = [(k, t) for k, t in enumerate(line, start=1) if only is None or only(t)]
    if not places:
        return []
    figures = _Line(board, now, queue_id, channel, line)
    return [figures.at(k, ticket) for k, ticket in places]


class _Line:
    """The staffing figures of one queue and channel, read once from the board."""

    def __init__(self, board: LiveBoard, now: float, queue_id: int, channel: str,
                 line: list[int]) -> None:  # fmt: skip
        self.queue_id, self.channel, self.waiting = queue_id, channel, len(line)
        staff = board.staff
        serving = [(i, a) for i, a in staff.agents.items()
                   if queue_id in a.queue_ids and a.presence in _STAFFED]  # fmt: skip
        self.agents = len(serving)
        self.places = sum(a.capacity.get(channel, 0) for _, a in serving)
        self.free = sum(max(0, a.capacity.get(channel, 0) - staff.load(i, channel))
                        for i, a in serving if a.presence == "available")  # fmt: skip
        self.aht, self.source = _aht(board, now, queue_id, channel)

    def at(self, position: int, ticket_id: int | None) -> QueueWait:
        """The figures for the contact at ``position`` (1 = next)."""
        expected: float | None
        reason = None
        if position <= self.free:
            expected = 0.0
        elif self.places == 0:
            expected, reason = None, "no agent of this queue is available"
        elif self.aht is None:
            expected, reason = None, "no handle time known yet today"
        else:
            expected = round((position - self.free) * self.aht / self.places, 1)
        return QueueWait(
            queue_id=self.queue_id, channel=self.channel, waiting=self.waiting,
            position=position, ticket_id=ticket_id, agents=self.agents, places=self.places,
            free_places=self.free, aht_seconds=None if self.aht is None else round(self.aht, 3),
            aht_source=self.source, expected_wait_seconds=expected, reason=reason,
        )  # fmt: skip
