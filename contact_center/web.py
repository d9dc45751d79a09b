"""Endpoint registry: every route declares its roles, body and query models in one place.

The registry feeds three things: the aiohttp router, the OpenAPI document and the role-matrix
test. A handler without a declaration cannot be added, so no route is unprotected by accident.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import pydantic
from aiohttp import web

from contact_center.errors import Forbidden, Unauthorized, ValidationError
from contact_center.keys import AUTH_ERROR, USER
from tickets.domain import Role

__all__ = [
    "ADMIN",
    "ALL_STAFF",
    "SUPERVISORS",
    "Endpoint",
    "Registry",
    "json_response",
    "parse_body",
    "parse_query",
    "patch_model",
]

ALL_STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

M = TypeVar("M", bound=pydantic.BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StrictModel(pydantic.BaseModel):
    """Request bodies: unknown fields are errors, strings are stripped of nothing."""

    model_config = pydantic.ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route and its contract."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role] | None  # None: public (or authenticated by its own scheme)
    summary: str
    tag: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    auth: str = "bearer"  # bearer | none | twilio-signature | ...
    page: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # request headers it reads: (name, description)


class Registry:
    """Collects endpoints; ``install`` adds them to an app with role checks around each."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[Role] | None,
        summary: str,
        tag: str,
        body: type[pydantic.BaseModel] | None = None,
        query: type[pydantic.BaseModel] | None = None,
        auth: str | None = None,
        page: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a handler (``headers``: the optional request headers it reads, described)."""

        def deco(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method, path, handler, roles, summary, tag, body, query,
                    auth or ("bearer" if roles is not None else "none"), page,
                    tuple((headers or {}).items()),
                )
            )  # fmt: skip
            return handler

        return deco

    def extend(self, other: Registry) -> None:
        """Take another registry's endpoints."""
        self.endpoints.extend(other.endpoints)

    def install(self, app: web.Application) -> None:
        """Add every endpoint to ``app``, wrapped in its role check."""
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, _guard(ep))

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.endpoints)


def _guard(ep: Endpoint) -> Handler:
    roles = ep.roles

    async def guarded(request: web.Request) -> web.StreamResponse:
        if roles is not None:
            user = request.get(USER)
            if user is None:
                raise request.get(AUTH_ERROR) or Unauthorized("login required")
            if user.role not in roles:
                raise Forbidden("your role may not use this")
        return await ep.handler(request)

    guarded.__name__ = ep.handler.__name__
    return guarded


def _fields(err: pydantic.ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        out[loc] = e["msg"]
    return out


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Validate a JSON body against ``model`` (unknown fields rejected)."""
    if request.content_type != "application/json":
        raise ValidationError("expected application/json", fields={"body": "wrong content type"})
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested too
        raise ValidationError("body is not valid JSON", fields={"body": "invalid JSON"}) from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise ValidationError("invalid request body", fields=_fields(err)) from None


def parse_query(request: web.Request, model: type[M]) -> M:
    """Validate query parameters against ``model`` (unknown ones rejected)."""
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise ValidationError("invalid query", fields=_fields(err)) from None


def _unset_by_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent means "leave as is", not null


def patch_model(model: type[pydantic.BaseModel], doc: str) -> type[StrictModel]:
    """The PATCH body of ``model``: the same fields, types and limits, every one optional.

    A field added to the create model is patchable at once. ``null`` is accepted only where
    the create model accepts it; handlers read ``model_dump(exclude_unset=True)``.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        extra = pydantic.Field(default=None, description=info.description,
                               json_schema_extra=_unset_by_default)  # fmt: skip
        fields[name] = (kind, extra)
    name = model.__name__.removesuffix("Create") + "Change"
    return pydantic.create_model(name, __base__=StrictModel, __doc__=doc, **fields)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with our content type."""
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))
