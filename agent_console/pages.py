"""Server-rendered pages: login (sets the session cookie), logout, console shell."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from agent_console.console_data import CANNED, CONSOLE_TEXT, directory
from contact_center.api.common import current_user, services
from contact_center.api.session import authenticate
from contact_center.errors import Forbidden, RateLimited, Unauthorized
from contact_center.keys import USER
from contact_center.web import ALL_STAFF, Registry, json_response
from tickets import queries
from tickets.domain import Role

__all__ = ["pages_registry"]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

TEXT = {
    "en": {
        "title": "Contact center",
        "login": "Log in",
        "email": "Email",
        "password": "Password",
        "wrong": "Wrong email or password.",
        "throttled": "Too many attempts. Try again later.",
        "console": "Agent console",
        "logout": "Log out",
        "tickets": "Tickets you can see",
        "none": "No tickets.",
        "subject": "Subject",
        "status": "Status",
        "channel": "Channel",
    },
    "zh": {
        "title": "客服中心",
        "login": "登录",
        "email": "电子邮件",
        "password": "密码",
        "wrong": "电子邮件或密码错误。",
        "throttled": "尝试次数过多，请稍后再试。",
        "console": "坐席控制台",
        "logout": "退出",
        "tickets": "您可见的工单",
        "none": "没有工单。",
        "subject": "主题",
        "status": "状态",
        "channel": "渠道",
    },
}


def language(request: web.Request) -> str:
    """``zh`` or ``en``: the user's setting, else the browser's Accept-Language."""
    user = request.get(USER)
    if user is not None and user.language in TEXT:
        return str(user.language)
    header = request.headers.get("Accept-Language", "").lower()
    return "zh" if header.startswith("zh") else "en"


def render(request: web.Request, name: str, status: int = 200, **ctx: object) -> web.Response:
    """Render a template with the request's language."""
    lang = language(request)
    html: str = _TEMPLATES.get_template(name).render(t=TEXT[lang], lang=lang, **ctx)
    return web.Response(text=html, content_type="text/html", status=status)


def pages_registry() -> Registry:
    """The page routes."""
    reg = Registry()

    @reg.route("GET", "/login", roles=None, summary="Login page", tag="pages", page=True)
    async def login_page(request: web.Request) -> web.StreamResponse:
        return render(request, "login.html", error=None)

    @reg.route("POST", "/login", roles=None, summary="Login form", tag="pages", page=True)
    async def login_form(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        email, password = str(form.get("email", ""))[:320], str(form.get("password", ""))[:1024]
        try:
            token, _ = await authenticate(request, email, password)
        except Unauthorized:
            return render(request, "login.html", status=401, error="wrong")
        except RateLimited:
            return render(request, "login.html", status=429, error="throttled")
        svc = services(request)
        resp = web.HTTPSeeOther("/console")
        resp.set_cookie(
            "cc_session",
            token,
            max_age=svc.signer.ttl,
            httponly=True,
            samesite="Strict",
            secure=svc.settings.public_base_url.startswith("https://"),
            path="/",
        )
        raise resp

    @reg.route("POST", "/logout", roles=ALL_STAFF, summary="Log out", tag="pages", page=True)
    async def logout(request: web.Request) -> web.StreamResponse:
        resp = web.json_response({"ok": True})
        resp.del_cookie("cc_session", path="/")
        return resp

    @reg.route("GET", "/console", roles=None, summary="Agent console", tag="pages", page=True)
    async def console(request: web.Request) -> web.StreamResponse:
        if request.get(USER) is None:
            raise web.HTTPSeeOther("/login")
        user = current_user(request)
        lang = language(request)
        data = {
            "user": {"id": user.id, "name": user.name, "role": user.role.value,
                     "team_id": user.team_id},
            "lang": lang,
            "text": CONSOLE_TEXT[lang],
            "canned": CANNED[lang],
        }  # fmt: skip
        items, _ = await services(request).db.read(
            queries.list_tickets, user.viewer, queries.TicketFilter(), limit=50
        )
        return render(request, "console.html", user=user, data=data, tickets=items)

    @reg.route("GET", "/api/v1/console/directory", roles=ALL_STAFF, tag="console",
               summary="Agents and queues this user may transfer tickets to")  # fmt: skip
    async def console_directory(request: web.Request) -> web.StreamResponse:
        viewer = current_user(request).viewer
        return json_response(await services(request).db.read(directory, viewer))

    @reg.route("GET", "/wallboard", roles=None, summary="Wallboard", tag="pages", page=True)
    async def wallboard(request: web.Request) -> web.StreamResponse:
        from agent_console.wallboard import TEXT as WALLBOARD_TEXT

        if request.get(USER) is None:
            raise web.HTTPSeeOther("/login")
        user = current_user(request)
        if user.role is Role.AGENT:
            raise Forbidden("supervisors and admins only")
        sla = services(request).sla
        tz = sla.config.board.timezone if sla is not None else "UTC"
        now = sla.now() if sla is not None else services(request).db.clock()
        day = now.astimezone(ZoneInfo(tz)).date().isoformat()
        chart = "/api/v1/reports/service-level.svg?" + urlencode({"day": day, "timezone": tz})
        return render(request, "wallboard.html", user=user, w=WALLBOARD_TEXT[language(request)],
                      chart=chart)  # fmt: skip

    return reg
