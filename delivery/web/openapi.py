"""The JSON API's contract → an OpenAPI 3.0 document (hand-written, served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

NULL_STR = {"type": "string", "nullable": True}
NULL_INT = {"type": "integer", "nullable": True}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


SCHEMAS: dict[str, Any] = {
    "Error": _obj(["error"], error={"type": "string", "description": "what is wrong, in one line"},
                  field={"type": "string", "description": "the field it is about, when one is"}),
    "SignatureIn": {
        "type": "object", "additionalProperties": False, "required": ["name", "email", "city", "country"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "format": "email", "minLength": 3, "maxLength": 254,
                      "description": "kept only as a hash, to recognise the same signer again"},
            "city": {"type": "string", "maxLength": 100},
            "country": {"type": "string", "maxLength": 100, "description": "name or ISO 3166 code"},
            "signed_at": {"type": "string", "format": "date-time",
                          "description": "when they signed (default: now); not in the future"},
            "consent": {"type": "boolean", "default": True,
                        "description": "false: counted, never named in dossiers"},
        }},
    "SignatureOut": _obj(["stored", "duplicate"], stored={"type": "boolean"}, duplicate={"type": "boolean"},
                         signers={"type": "integer", "description": "active signers after this request"}),
    "Milestone": _obj(["threshold", "reached", "reached_at", "delivery"], threshold={"type": "integer"},
                      reached={"type": "boolean"}, reached_at=NULL_STR, delivery=NULL_STR),
    "Status": _obj(["campaign", "title", "signers", "goal", "percent", "next_milestone",
                    "milestones_reached", "top_countries"],
                   campaign={"type": "string"}, title={"type": "string"}, signers={"type": "integer"},
                   goal={"type": "integer"}, percent={"type": "number"}, next_milestone=NULL_INT,
                   milestones_reached={"type": "array", "items": {"type": "integer"}},
                   top_countries={"type": "array", "items": _obj(
                       ["country", "signers"], country={"type": "string"}, signers={"type": "integer"})}),
    "Milestones": _obj(["campaign", "signers", "next_milestone", "milestones"],
                       campaign={"type": "string"}, signers={"type": "integer"}, next_milestone=NULL_INT,
                       milestones={"type": "array", "items": {"$ref": "#/components/schemas/Milestone"}}),
    "File": _obj(["name", "size", "sha256", "pages"], name={"type": "string"}, size={"type": "integer"},
                 sha256={"type": "string"}, pages=NULL_INT),
    "Message": _obj(["recipient", "kind", "part", "status", "attempts", "last_answer", "next_attempt_at",
                     "sent_at", "queue_id", "bounce", "bounced_at", "bounce_status", "bounce_diagnostic",
                     "link"],
                    recipient={"type": "string"}, kind={"type": "string", "enum": ["dossier", "alert"]},
                    part={"type": "string", "description": "n/of"}, status={"type": "string"},
                    attempts={"type": "integer"}, last_answer=NULL_STR, next_attempt_at=NULL_STR,
                    sent_at=NULL_STR,
                    queue_id={**NULL_STR, "description": "the accepting server's id for the message, "
                              "from its 250 answer"},
                    bounce={**NULL_STR, "enum": ["failed", "delayed", None],
                            "description": "the last bounce read for it: failed (status bounced) "
                            "or delayed (a server still tries)"},
                    bounced_at=NULL_STR,
                    bounce_status={**NULL_STR, "description": "RFC 3463 status, e.g. 5.1.1"},
                    bounce_diagnostic={**NULL_STR, "description": "the reporting server's words"},
                    link={"nullable": True, "allOf": [{"$ref": "#/components/schemas/Link"}],
                          "description": "the download page the e-mail carries (link delivery)"}),
    "Link": _obj(["expires_at", "state", "downloads", "first_download_at", "last_download_at",
                  "acknowledged_at"],
                 expires_at={"type": "string"},
                 state={"type": "string", "enum": ["open", "expired", "revoked"]},
                 downloads={"type": "integer"}, first_download_at=NULL_STR, last_download_at=NULL_STR,
                 acknowledged_at=NULL_STR),
    "Delivery": _obj(["id", "trigger", "milestone", "status", "created_at", "created_by", "hold_until",
                      "signer_count", "recipients", "error", "files", "messages"],
                     id={"type": "string"}, trigger={"type": "string"}, milestone=NULL_INT,
                     status={"type": "string"}, created_at={"type": "string"}, created_by={"type": "string"},
                     hold_until=NULL_STR, signer_count={"type": "integer"},
                     recipients={"type": "array", "items": {"type": "string"}}, error=NULL_STR,
                     files={"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                     messages={"type": "array", "items": {"$ref": "#/components/schemas/Message"}}),
    "Deliveries": _obj(["campaign", "deliveries"], campaign={"type": "string"},
                       deliveries={"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}),
}

SLUG = {"name": "slug", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}}
COMMON_ERRORS = {"401": _error("no token, or an unknown or revoked one"),
                 "403": _error("the token is for another campaign"),
                 "404": _error("no such campaign")}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _get(summary: str, schema: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": [SLUG, *(params or [])],
                    "responses": {"200": _json(summary, schema), **COMMON_ERRORS,
                                  **({"400": _error("a query parameter is wrong")} if params else {})}}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "petition-delivery API", "version": "1.0.0",
                 "description": "Add signatures and read a campaign's progress and deliveries. Every "
                                "call needs `Authorization: Bearer <token>` "
                                "(`petition-delivery tokens add`)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/campaigns/{slug}/signatures": {"post": {
                "summary": "Add one signature; idempotent per e-mail address",
                "parameters": [SLUG],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/SignatureIn"}}}},
                "responses": {
                    "201": _json("stored", "SignatureOut"),
                    "200": _json("this e-mail signed already: nothing changed", "SignatureOut"),
                    "400": _error("the body is not JSON"),
                    "413": _error("the body is larger than 64 KB"),
                    "415": _error("the body is not application/json"),
                    "422": _error("a field is missing or invalid"),
                    **COMMON_ERRORS}}},
            "/api/v1/campaigns/{slug}/status": _get("The campaign's signers, goal and milestones", "Status"),
            "/api/v1/campaigns/{slug}/milestones": _get("Every milestone, reached or not", "Milestones"),
            "/api/v1/campaigns/{slug}/deliveries": _get(
                "The latest deliveries, newest first", "Deliveries",
                [{"name": "limit", "in": "query", "required": False,
                  "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}]),
        },
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
