"""The ``contact-center simulate`` command: parse a scenario, run it, print and chart it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from contact_center.simulate.model import LIVE, ChannelMix, Scenario, arrivals

__all__ = ["add_arguments", "run_command"]


def _pairs(values: list[str], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw in values:
        channel, sep, number = raw.partition("=")
        try:
            if not sep:
                raise ValueError
            out[channel.strip()] = float(number)
        except ValueError:
            raise SystemExit(f"--{what} takes CHANNEL=NUMBER, got {raw!r}") from None
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's options."""
    p.add_argument(
        "--url",
        action="append",
        default=[],
        help="a web process (repeat for several); default CC_PUBLIC_BASE_URL",
    )
    p.add_argument("--admin-email", default="admin@demo.test")
    p.add_argument(
        "--admin-password",
        default=None,
        help="the admin's password (default: the demo's; or --admin-password-stdin)",
    )
    p.add_argument("--admin-password-stdin", action="store_true")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--agents", type=int, default=8)
    p.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="CHANNEL=PER_HOUR",
        help="arrivals per hour (repeat per channel); default chat=360",
    )
    p.add_argument(
        "--aht",
        action="append",
        default=[],
        metavar="CHANNEL=SECONDS",
        help="mean handle time (exponential); default 60 s",
    )
    p.add_argument(
        "--patience",
        action="append",
        default=[],
        metavar="CHANNEL=SECONDS",
        help="mean patience of live customers (exponential); default 60 s",
    )
    p.add_argument("--accept-delay", type=float, default=0.5, help="mean seconds to accept")
    p.add_argument("--queue", default="sim", help="the queue the simulated contacts go to")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chart", default="simulation.png", help="PNG path ('' for none)")
    p.add_argument("--drain", type=float, default=60.0, help="seconds to let the last finish")
    p.add_argument("--imap-host", default="", help="send email as mail: APPEND to this mailbox")
    p.add_argument("--imap-port", type=int, default=993)
    p.add_argument("--imap-user", default="")
    p.add_argument(
        "--imap-password-env",
        default="SIM_IMAP_PASSWORD",
        help="environment variable holding the mailbox password",
    )
    p.add_argument("--imap-plain", action="store_true", help="no TLS (a loopback server)")
    p.add_argument("--support-address", default="", help="To: of the customers' mail")
    p.add_argument(
        "--chat-over-api",
        action="store_true",
        help="chat contacts through POST /api/v1/inbound, not the widget's socket",
    )
    p.add_argument("--chat-queue", default="chat", help="where the widget's chats land")
    p.add_argument(
        "--origin",
        default="",
        help="Origin of the chat customers' page (default: CC_PUBLIC_BASE_URL)",
    )
    p.add_argument(
        "--twilio-token-env",
        default="",
        metavar="NAME",
        help="send SMS, WhatsApp and voice as Twilio webhooks signed with the auth token in "
        "this environment variable (default: through POST /api/v1/inbound)",
    )
    p.add_argument(
        "--public-url",
        default="",
        help="the URL Twilio signatures are computed for: the desk's CC_PUBLIC_BASE_URL",
    )
    p.add_argument(
        "--twilio-queue",
        action="append",
        default=[],
        help="a queue the desk puts SMS or call tickets in (CC_TWILIO_SMS_QUEUE, "
        "CC_TWILIO_VOICE_QUEUE; repeat; default: the default queue)",
    )


def scenario_from(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe (clear errors for bad ones)."""
    rates = _pairs(args.rate, "rate") or {"chat": 360.0}
    ahts, patience = _pairs(args.aht, "aht"), _pairs(args.patience, "patience")
    known = {"api", "email", "chat", "sms", "whatsapp", "voice"}
    unknown = sorted((rates.keys() | ahts.keys() | patience.keys()) - known)
    if unknown:
        raise SystemExit(f"unknown channel(s): {', '.join(unknown)}")
    try:
        mix = tuple(
            ChannelMix(c, r, ahts.get(c, 60.0), patience.get(c, 60.0) if c in LIVE else None)
            for c, r in sorted(rates.items())
        )
        return Scenario(mix, args.minutes * 60, args.agents, args.accept_delay, seed=args.seed)
    except ValueError as err:
        raise SystemExit(f"bad scenario: {err}") from None


def run_command(args: argparse.Namespace, default_url: str) -> int:
    """Run the simulation and report; 0 when every contact was sent without an error."""
    from contact_center.simulate.report import chart, summary, table
    from contact_center.simulate.runner import ImapBox, Target, run, run_on_uvloop

    scenario = scenario_from(args)
    password = args.admin_password
    if args.admin_password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    imap = None
    if args.imap_host:
        imap = ImapBox(args.imap_host, args.imap_port, args.imap_user,
                       os.environ.get(args.imap_password_env, ""),
                       args.support_address or args.imap_user, tls=not args.imap_plain)  # fmt: skip
    token = ""
    if args.twilio_token_env:
        token = os.environ.get(args.twilio_token_env, "")
        if not token:
            raise SystemExit(f"--twilio-token-env: ${args.twilio_token_env} is not set")
    target = Target(tuple(u.rstrip("/") for u in (args.url or [default_url])),
                    args.admin_email, password or "demo-password", args.queue, imap,
                    chat_socket=not args.chat_over_api, chat_queue=args.chat_queue,
                    origin=args.origin or default_url, twilio_token=token,
                    public_url=(args.public_url or default_url).rstrip("/"),
                    twilio_queues=tuple(args.twilio_queue))  # fmt: skip
    plan = arrivals(scenario)
    print(f"simulating {scenario.seconds:.0f} s: {len(plan)} contacts "
          f"({', '.join(f'{m.channel} {m.per_hour:g}/h' for m in scenario.mix)}), "
          f"{scenario.agents} agents, against {', '.join(target.urls)}", flush=True)  # fmt: skip
    sim = run_on_uvloop(run(target, scenario, plan, drain_seconds=args.drain))
    outcomes = list(sim.outcomes.values())
    result = summary(scenario, outcomes)
    print(table(scenario, result))
    if args.chart:
        print(f"chart: {chart(scenario, outcomes, result, Path(args.chart))}")
    errors = sum(r["figures"].errors for r in result.values())
    line: dict[str, Any] = {
        "name": "simulate",
        "seconds": scenario.seconds,
        "agents": scenario.agents,
        "contacts": len(plan),
        "errors": errors,
    }
    for channel, r in result.items():
        f, p = r["figures"], r["prediction"]
        line[channel] = {
            "offered": f.offered, "answered": f.answered, "abandoned": f.abandoned,
            "service_level": f.service_level, "within_of_offered": f.within_of_offered,
            "mean_wait_seconds": f.mean_wait_seconds, "abandoned_of_offered":
            f.abandoned_of_offered, "mean_offer_seconds": f.mean_offer_seconds,
            "predicted": None if p is None else {
                "model": p.model, "within_of_offered": p.within_of_offered,
                "mean_wait_seconds": p.mean_wait_seconds,
                "abandoned_of_offered": p.abandoned_of_offered},
        }  # fmt: skip
    print(json.dumps(line))
    return 0 if errors == 0 else 1
