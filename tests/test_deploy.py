"""deploy/nginx.conf is a valid nginx configuration (checked by nginx itself) that keeps a
Socket.IO client on one web process and passes websocket upgrades through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from contact_center.cluster import ROOT, render_nginx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (.ci/run does)")
def test_rendered_config_passes_nginx_t(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx(["127.0.0.1:18081", "127.0.0.1:18082"], 18080, tmp_path))
    out = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = conf.read_text()
    assert "ip_hash;" in text and "server 127.0.0.1:18082;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text


def test_the_template_names_what_the_renderer_replaces():
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    for marker in ("# @UPSTREAMS@", "listen 80;", "@PREFIX@"):
        assert marker in template
