"""The CLI contract: migrate, demo, create-user, worker refuses without Redis; settings errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from contact_center.logging import RedactingFilter
from contact_center.settings import Secret, Settings
from tickets.actions._common import QUEUE, SLA, TICKET

ROOT = Path(__file__).resolve().parents[1]


def _cli(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    base.update(CC_DATA_DIR=str(tmp_path / "var"), CC_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
                **env)  # fmt: skip
    return subprocess.run([sys.executable, "-m", "contact_center.cli", *args], input=stdin,
                          env=base, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_migrate_demo_and_create_user_on_sqlite(tmp_path):
    assert _cli(tmp_path, "migrate").returncode == 0
    demo = _cli(tmp_path, "demo", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    assert "admin@demo.test" in demo.stdout and "/console" in demo.stdout
    again = _cli(tmp_path, "demo", "--no-serve")  # seeding twice changes nothing
    assert again.returncode == 0
    made = _cli(tmp_path, "create-user", "--email", "Ops@Example.com", "--role", "admin",
                "--password-stdin", stdin="long enough password\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "long enough password" not in made.stdout + made.stderr
    dup = _cli(tmp_path, "create-user", "--email", "ops@example.com", "--password-stdin",
               stdin="long enough password\n")  # fmt: skip
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = _cli(tmp_path, "create-user", "--email", "x@example.com", "--password-stdin",
                 stdin="short\n")  # fmt: skip
    assert short.returncode == 2
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'contact_center.db'}")
    with engine.connect() as conn:
        users = conn.execute(sa.text("select count(*) from user")).scalar()
        tickets = conn.execute(sa.text("select count(*) from ticket")).scalar()
        chinese = conn.execute(sa.text("select count(*) from ticket where language='zh'")).scalar()
        channels = conn.execute(sa.text("select count(distinct channel) from ticket")).scalar()
        _assert_demo_deadlines(conn)
    engine.dispose()
    assert users == 12 and tickets == 8 and chinese >= 3 and channels == 6


def _assert_demo_deadlines(conn: sa.Connection) -> None:
    """Live tickets (chat, voice) must be answered in 20 s, async ones get a first response in a
    day, whatever queue they landed in; each ticket carries the policy that set its deadline."""
    t, q, p = TICKET.c, QUEUE.c, SLA.c
    rows = conn.execute(
        sa.select(t.id, t.channel, t.created_at, t.answer_due_at, t.first_response_due_at,
                  q.name.label("queue"), p.name.label("policy"))
        .join(QUEUE, q.id == t.queue_id)
        .outerjoin(SLA, p.id == t.sla_policy_id)
    ).all()  # fmt: skip
    assert {r.queue for r in rows} >= {"billing", "technical", "chat"}
    for r in rows:
        where = f"ticket {r.id} ({r.channel} in {r.queue})"
        if r.channel in ("chat", "voice"):
            assert r.answer_due_at == r.created_at + timedelta(seconds=20), where
            assert r.first_response_due_at is None, where
            assert r.policy == "Live: answer in 20 s", where
        else:
            assert r.answer_due_at is None, where
            assert r.first_response_due_at == r.created_at + timedelta(days=1), where
            assert r.policy == "Async: respond in 1 day", where


def test_worker_without_redis_says_so(tmp_path):
    out = _cli(tmp_path, "worker", "--burst")
    assert out.returncode == 2 and "CC_REDIS_URL" in out.stderr


def test_bad_settings_are_refused_clearly(tmp_path):
    out = _cli(tmp_path, "migrate", CC_PORT="eighty")
    assert out.returncode == 2 and "CC_PORT" in out.stderr
    out = _cli(tmp_path, "migrate", CC_DATABSE_URL="typo")
    assert out.returncode == 2 and "CC_DATABSE_URL" in out.stderr


def test_settings_from_env_types_and_secret_repr():
    s = Settings.from_env({"CC_PORT": "9000", "CC_LOG_JSON": "no", "CC_SECRET_KEY": "s3cr3t-value",
                           "CC_DATA_DIR": "/srv/cc"})  # fmt: skip
    assert s.port == 9000 and s.log_json is False
    assert s.database_url == "sqlite:////srv/cc/contact_center.db"
    assert "s3cr3t-value" not in repr(s) and "s3cr3t-value" not in str(s.secret_key)
    assert s.secret_key.reveal() == "s3cr3t-value"
    with pytest.raises(ValueError, match="CC_LOG_JSON"):
        Settings.from_env({"CC_LOG_JSON": "maybe"})
    assert isinstance(Settings().secret_key, Secret)


def test_event_loop_setting_picks_uvloop_or_the_standard_loop():
    import asyncio

    import uvloop

    from contact_center.cli import use_event_loop

    with pytest.raises(ValueError, match="CC_EVENT_LOOP must be one of uvloop, asyncio"):
        Settings.from_env({"CC_EVENT_LOOP": "trio"})
    try:
        use_event_loop(Settings.from_env({"CC_EVENT_LOOP": "asyncio"}))
        assert not isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
        use_event_loop(Settings.from_env({}))  # the default
        assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)


def test_log_redaction_masks_tokens_passwords_and_known_secrets():
    f = RedactingFilter(["super-secret-key"])
    rec = logging.LogRecord("x", logging.INFO, __file__, 1,
                            "auth %s password=hunter22 key=%s cookie cc_session=abc.def",
                            ("Bearer eyJhbGciOi.abc", "super-secret-key"), None)  # fmt: skip
    f.filter(rec)
    text = rec.getMessage()
    for secret in ("eyJhbGciOi", "hunter22", "super-secret-key", "abc.def"):
        assert secret not in text
    assert "Bearer ***" in text


def test_every_secret_setting_is_masked_in_the_logs():
    env = {"CC_SECRET_KEY": "k-1234567890", "CC_METRICS_TOKEN": "m-1234567890",
           "CC_CHAT_IDENTITY_SECRET": "c-1234567890", "CC_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
           "CC_TWILIO_AUTH_TOKEN": "t-1234567890", "CC_IMAP_PASSWORD": "i-1234567890",
           "CC_SMTP_PASSWORD": "s-1234567890",
           "CC_EMAIL_MAILBOXES": '[{"password": "e-1234567890"}]'}  # fmt: skip
    s = Settings.from_env(env)
    f = RedactingFilter(s.secret_values())
    values = [v for k, v in env.items() if k != "CC_TWILIO_ACCOUNT_SID"]
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, " ".join(values), None, None)
    f.filter(rec)
    text = rec.getMessage()
    assert [v for v in values if v in text] == []
    assert "1234567890" not in text
