"""compose.yaml describes the scaled deployment; validated with a compose CLI where installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("docker-compose")


@pytest.mark.skipif(CLI is None, reason="no compose CLI installed (.ci/run installs one)")
def test_compose_file_is_valid_and_names_the_services():
    env = {**os.environ, "CC_SECRET_KEY": "x" * 40}
    out = subprocess.run([CLI or "", "-f", str(ROOT / "compose.yaml"), "config", "--services"],
                         capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == {"migrate", "web", "leader", "worker", "nginx", "postgres",
                                       "redis"}  # fmt: skip


@pytest.mark.skipif(CLI is None, reason="no compose CLI installed (.ci/run installs one)")
def test_web_processes_leave_routing_to_the_leaders():
    env = {**os.environ, "CC_SECRET_KEY": "x" * 40}
    out = subprocess.run([CLI or "", "-f", str(ROOT / "compose.yaml"), "config"],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    web = out.stdout.split("\n  web:\n", 1)[1].split("\n  worker:\n", 1)[0]
    leader = out.stdout.split("\n  leader:\n", 1)[1].split("\n  migrate:\n", 1)[0]
    assert 'CC_ROUTING_ENABLED: "false"' in web and "replicas: 2" in web
    assert "- lead\n" in leader and "CC_ROUTING_ENABLED" not in leader
    assert "CC_REDIS_URL: redis://redis:6379/0" in web and "CC_REDIS_URL" in leader


@pytest.mark.skipif(CLI is None, reason="no compose CLI installed (.ci/run installs one)")
def test_compose_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "CC_SECRET_KEY"}
    out = subprocess.run([CLI or "", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
                         capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert out.returncode != 0
    assert "CC_SECRET_KEY" in out.stderr
