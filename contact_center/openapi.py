"""OpenAPI 3.1 document built from the endpoint registry and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from contact_center.keys import ENDPOINTS

__all__ = ["build_openapi"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The document for every endpoint installed on ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for ep in app[ENDPOINTS]:
        if ep.page:
            continue
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": f"{ep.method.lower()}_{ep.handler.__name__}",
            "responses": {
                "200": {"description": "OK"},
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if ep.roles is not None:
            op["security"] = [{"bearer": []}, {"cookie": []}]
            op["x-roles"] = sorted(r.value for r in ep.roles)
        else:
            op["security"] = []
            op["x-auth"] = ep.auth
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
            for n in re.findall(r"{(\w+)}", ep.path)
        ]
        if ep.query is not None:
            qschema = ep.query.model_json_schema()
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in qschema.get("required", []),
                     "schema": prop}
                )  # fmt: skip
        params += [
            {"name": name, "in": "header", "required": False, "description": text,
             "schema": {"type": "string"}}
            for name, text in ep.headers
        ]  # fmt: skip
        if params:
            op["parameters"] = params
        if ep.body is not None:
            name = ep.body.__name__
            schema = ep.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contact center service desk API", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cc_session"},
            },
        },
    }
