"""Policies: which metric applies, deadlines, warnings, pauses, matching and status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sla.calendar import BusinessCalendar
from sla.clock import CALENDAR_TIME, Pause, deadline_after, elapsed_excluding, merge_pauses
from sla.policy import (
    Deadlines,
    Metric,
    PolicyRule,
    PolicySet,
    SlaPolicy,
    TicketFacts,
    compute_deadlines,
    deadlines_for,
)
from sla.status import evaluate

H = 3600
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday
BERLIN = BusinessCalendar.office_hours("Europe/Berlin")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_live_channel_gets_a_20_second_answer_deadline_and_warning_at_80_percent() -> None:
    d = compute_deadlines(SlaPolicy(), T0, "chat")
    assert d.answer_due == at(20)
    assert d.answer_warn_at == at(16)
    assert d.first_response_due is None and d.resolution_due is None
    assert d.next_breach_at == at(20)
    assert list(d.items()) == [(Metric.ANSWER, at(16), at(20))]


def test_async_channel_gets_a_one_day_first_response_deadline() -> None:
    d = compute_deadlines(SlaPolicy(), T0, "email")
    assert d.answer_due is None
    assert d.first_response_due == at(86_400)
    assert d.first_response_warn_at == at(0.8 * 86_400)


def test_every_metric_and_custom_warning() -> None:
    policy = SlaPolicy(next_response_seconds=H, resolution_seconds=10 * H, warn_at_percent=50)
    d = compute_deadlines(policy, T0, "sms", awaiting_reply_since=at(100))
    assert d == Deadlines(
        first_response_due=at(86_400),
        first_response_warn_at=at(43_200),
        next_response_due=at(100 + H),
        next_response_warn_at=at(100 + H / 2),
        resolution_due=at(10 * H),
        resolution_warn_at=at(5 * H),
    )
    chat = compute_deadlines(SlaPolicy(resolution_seconds=H, warn_at_percent=None), T0, "voice")
    assert chat.answer_warn_at is None and chat.resolution_due == at(H)
    assert chat.next_response_due is None


def test_business_hours_email_on_friday_evening() -> None:
    policy = SlaPolicy(first_response_seconds=8 * H, business_hours=BERLIN)
    friday_1730 = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
    d = compute_deadlines(policy, friday_1730, "email")
    assert d.first_response_due == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # Monday 17:00 CET
    assert d.first_response_warn_at == datetime(2026, 3, 9, 14, 24, tzinfo=UTC)  # 6.4 h in
    # The live answer promise stays in calendar time even with a business calendar.
    assert compute_deadlines(policy, friday_1730, "chat").answer_due == friday_1730 + timedelta(
        seconds=20
    )


def test_pause_and_resume_shift_the_deadline() -> None:
    policy = SlaPolicy(first_response_seconds=H)
    paused = [Pause(at(1800), at(1800 + H))]  # pending for an hour after 30 minutes
    assert compute_deadlines(policy, T0, "email", paused).first_response_due == at(2 * H)
    still_paused = [Pause(at(1800))]
    d = compute_deadlines(policy, T0, "email", still_paused)
    assert d.first_response_due is None and d.first_response_warn_at is None
    # 80 % (48 min) is still ahead when the pause starts at 30 min: no warning time known.
    early = compute_deadlines(policy, T0, "email", [Pause(at(50 * 60))])
    assert early.first_response_warn_at == at(48 * 60) and early.first_response_due is None
    ignored = replace(policy, pause_while_pending=False)
    assert compute_deadlines(ignored, T0, "email", paused).first_response_due == at(H)


def test_paused_business_time_does_not_count() -> None:
    policy = SlaPolicy(first_response_seconds=2 * H, business_hours=BERLIN)
    friday_16 = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # 16:00 CET
    monday_10 = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # 10:00 CET
    pause = Pause(friday_16 + timedelta(minutes=30), monday_10)
    # 30 min on Friday, pending over the weekend and Monday 09-10, then 1.5 h: Monday 11:30 CET.
    due = compute_deadlines(policy, friday_16, "email", [pause]).first_response_due
    assert due == datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    weekend = Pause(datetime(2026, 3, 7, 10, tzinfo=UTC), datetime(2026, 3, 8, 10, tzinfo=UTC))
    no_pause = compute_deadlines(policy, friday_16, "email").first_response_due
    assert compute_deadlines(policy, friday_16, "email", [weekend]).first_response_due == no_pause


def test_pause_helpers_merge_and_measure() -> None:
    pauses = [Pause(at(50), at(70)), Pause(at(10), at(20)), Pause(at(15), at(30)), Pause(at(0))]
    assert merge_pauses(pauses[:3], at(12)) == [Pause(at(12), at(30)), Pause(at(50), at(70))]
    assert merge_pauses(pauses, T0) == [Pause(T0)]
    assert deadline_after(BERLIN, T0, 0) == T0
    assert elapsed_excluding(CALENDAR_TIME, T0, at(100), pauses[:3]) == 100 - 20 - 20
    with pytest.raises(ValueError):
        Pause(at(10), at(5))


def test_deadlines_for_skips_completed_metrics() -> None:
    policy = SlaPolicy(resolution_seconds=10 * H, next_response_seconds=H)
    facts = TicketFacts(T0, "email", first_response_at=at(60), awaiting_reply_since=at(600))
    d = deadlines_for(policy, facts)
    assert d.first_response_due is None
    assert d.next_response_due == at(600 + H) and d.resolution_due == at(10 * H)
    assert deadlines_for(policy, replace(facts, resolved_at=at(900))) == Deadlines()
    answered = TicketFacts(T0, "chat", answered_at=at(5))
    assert deadlines_for(policy, answered).answer_due is None


def test_most_specific_policy_wins() -> None:
    a, b, c, d, e = (SlaPolicy(name=n) for n in "abcde")
    rules = PolicySet(
        (
            PolicyRule(a, queue="vip"),
            PolicyRule(b, queue="vip", priority=1),
            PolicyRule(c, channel="chat"),
            PolicyRule(d, priority=1),
            PolicyRule(SlaPolicy(name="f"), queue="vip", priority=1, channel="voice"),
        ),
        default=e,
    )
    assert rules.match("vip", 1, "email") is b
    assert rules.match("vip", 1, "voice").name == "f"
    assert rules.match("vip", 2, "chat") is a  # queue beats channel on a tie
    assert rules.match("billing", 1, "chat") is d  # priority beats channel on a tie
    assert rules.match("billing", 3, "chat") is c
    assert rules.match("billing", 3, "email") is e
    assert rules.match(None, None, "email") is e
    with pytest.raises(ValueError):
        PolicySet((PolicyRule(a, queue="x"), PolicyRule(b, queue="x")))


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        SlaPolicy(answer_seconds=0)
    with pytest.raises(ValueError):
        SlaPolicy(warn_at_percent=120)


def test_status_met_breached_remaining() -> None:
    policy = SlaPolicy(first_response_seconds=H, resolution_seconds=4 * H)
    open_ticket = TicketFacts(T0, "email")
    fr = evaluate(policy, open_ticket, at(1000)).get(Metric.FIRST_RESPONSE)
    assert fr is not None
    assert (fr.met, fr.breached, fr.warning, fr.remaining_seconds) == (None, False, False, 2600)
    warn = evaluate(policy, open_ticket, at(0.8 * H)).get(Metric.FIRST_RESPONSE)
    assert warn is not None and warn.warning and not warn.breached
    late = evaluate(policy, open_ticket, at(H))
    fr = late.get(Metric.FIRST_RESPONSE)
    assert late.breached and fr is not None and fr.remaining_seconds == 0
    on_time = evaluate(policy, replace(open_ticket, first_response_at=at(H)), at(5 * H))
    fr = on_time.get(Metric.FIRST_RESPONSE)
    assert fr is not None and fr.met is True and not fr.breached and fr.elapsed_seconds == H
    res = on_time.get(Metric.RESOLUTION)
    assert res is not None and res.breached and res.met is None
    missed = evaluate(policy, replace(open_ticket, first_response_at=at(H + 1)), at(2 * H))
    fr = missed.get(Metric.FIRST_RESPONSE)
    assert fr is not None and fr.met is False and fr.breached
    assert evaluate(policy, open_ticket, at(0)).get(Metric.ANSWER) is None


def test_next_response_status() -> None:
    policy = SlaPolicy(next_response_seconds=H)
    facts = TicketFacts(T0, "whatsapp", first_response_at=at(60), awaiting_reply_since=at(600))
    nr = evaluate(policy, facts, at(600 + H / 2)).get(Metric.NEXT_RESPONSE)
    assert nr is not None and nr.due == at(600 + H) and nr.remaining_seconds == H / 2
    assert (
        evaluate(policy, replace(facts, awaiting_reply_since=None), at(H)).get(Metric.NEXT_RESPONSE)
        is None
    )


def test_status_while_paused() -> None:
    policy = SlaPolicy(first_response_seconds=H)
    facts = TicketFacts(T0, "email", pauses=(Pause(at(600)),))
    fr = evaluate(policy, facts, at(5 * H)).get(Metric.FIRST_RESPONSE)
    assert fr is not None
    assert fr.paused and not fr.breached and fr.due is None and fr.remaining_seconds == H - 600
