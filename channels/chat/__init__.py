"""The web chat channel: the ``/customer`` namespace, ``/chat/widget.js`` and ``/chat/demo``.

``setup(app, settings)`` creates the namespace (registered with the Socket.IO server through
``channels.SOCKET_NAMESPACES``) and its pusher task as one ``cleanup_ctx``; ``routes`` serves
the widget (one script: the vendored Socket.IO client and the widget, wrapped so the host
page's globals are untouched), its style sheet and the demo page.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from channels.chat.namespace import CustomerNamespace
from channels.chat.parse import browser_language, identity_hash
from contact_center.api.common import services
from contact_center.keys import SERVICES
from contact_center.settings import Settings
from contact_center.web import Registry

__all__ = ["CHAT", "CHAT_ASSETS", "routes", "setup"]

HERE = Path(__file__).resolve().parent
VENDOR = HERE.parent.parent / "agent_console" / "static" / "vendor" / "socket.io.min.js"
CHAT: web.AppKey[CustomerNamespace] = web.AppKey("chat_namespace")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_DEMO_CUSTOMER = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")

DEMO_TEXT = {
    "en": {
        "title": "Example Shop: help",
        "heading": "Example Shop",
        "lead": "A page of any web site with the chat widget on it: one script tag.",
        "hint": "Open the chat with the button at the bottom right.",
        "verified": "Signed in as site customer",
    },
    "zh-CN": {
        "title": "示例商店：帮助",
        "heading": "示例商店",
        "lead": "任意网站上的一个页面，只需一个 script 标签即可嵌入聊天窗口。",
        "hint": "点击右下角的按钮开始聊天。",
        "verified": "已登录的网站客户",
    },
}


@dataclass(frozen=True, slots=True)
class Asset:
    """A file served from memory with an ETag."""

    body: bytes
    content_type: str
    etag: str


CHAT_ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("chat_assets")


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def build_assets() -> dict[str, Asset]:
    """``widget.js`` (Socket.IO client + widget in one closure) and ``widget.css``."""
    client = VENDOR.read_text(encoding="utf-8")
    widget = (HERE / "static" / "widget.js").read_text(encoding="utf-8")
    script = (
        "/* Contact center chat widget. Bundles socket.io-client 4.8.4 (MIT). */\n"
        "(function () {\nvar module = { exports: {} }, exports = module.exports, define;\n"
        + client
        + "\n;var io = module.exports;\n"
        + widget
        + "\n}());\n"
    )
    css = (HERE / "static" / "widget.css").read_bytes()
    return {
        "widget.js": _asset(script.encode(), "application/javascript"),
        "widget.css": _asset(css, "text/css"),
    }


routes = Registry()


def _serve(name: str) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.StreamResponse:
        asset = request.app[CHAT_ASSETS][name]
        headers = {
            "ETag": asset.etag,
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
        )

    return handler


routes.route(
    "GET",
    "/chat/widget.js",
    roles=None,
    page=True,
    tag="chat",
    summary="The chat widget: one script tag on any site",
)(_serve("widget.js"))
routes.route(
    "GET",
    "/chat/widget.css",
    roles=None,
    page=True,
    tag="chat",
    summary="The chat widget's style sheet",
)(_serve("widget.css"))


@routes.route(
    "GET",
    "/chat/demo",
    roles=None,
    page=True,
    tag="chat",
    summary="A demo page with the chat widget",
)
async def demo(request: web.Request) -> web.StreamResponse:
    """An example site embedding the widget; ``?customer=ID`` signs the visitor in as that site
    customer (verified identity) when ``CC_CHAT_IDENTITY_SECRET`` is set."""
    lang = browser_language(request.headers.get("Accept-Language"))
    secret = services(request).settings.chat_identity_secret.reveal()
    customer = request.query.get("customer", "")
    identity = None
    if secret and _DEMO_CUSTOMER.match(customer):
        identity = {"customer_id": customer, "hash": identity_hash(secret, customer)}
    html = _TEMPLATES.get_template("demo.html").render(
        t=DEMO_TEXT[lang], lang=lang, identity=identity
    )
    return web.Response(text=html, content_type="text/html")


def setup(app: web.Application, settings: Settings) -> None:
    """Create the ``/customer`` namespace and start its pusher with the app."""
    from channels import SOCKET_NAMESPACES

    namespace = CustomerNamespace(app[SERVICES])
    app[CHAT] = namespace
    app[CHAT_ASSETS] = build_assets()
    app[SOCKET_NAMESPACES].append(lambda svc: namespace)
    app.cleanup_ctx.append(namespace.lifecycle)
