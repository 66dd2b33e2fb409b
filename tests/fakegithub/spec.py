"""GitHub's REST API description, loaded once per process, as the fake's referee.

Every request the fake receives is checked against ``rest-api.json`` (OpenAPI
3.0.3 from ``@octokit/openapi``) with openapi-core, so a product bug such as a
missing ``head_sha`` fails the test instead of being answered kindly.

The description's only server is ``https://api.github.com``; openapi-core
matches the request's scheme and host against it, so the fake validates every
request *as if* it had been sent there (``SPEC_SERVER``) whatever port it
really arrived on.

The description is also where the fake gets the skeletons of the objects it
answers with (:func:`skeleton`): every required field present, so a client
that parses responses into models (githubkit does) finds what GitHub sends.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "github" / "rest-api.json"
SPEC_SERVER = "https://api.github.com"

_build_lock = threading.Lock()
# openapi-core builds validators lazily and caches them on shared objects; one
# lock keeps two server threads from racing on those caches. Validation is a
# few milliseconds, so serialising it costs little next to the requests'
# simulated latency, which is slept outside this lock.
_validate_lock = threading.Lock()


@dataclass
class Timings:
    """How long the referee costs: reported by tests, printed by nobody."""

    json_load_s: float = 0.0
    openapi_build_s: float = 0.0
    requests_validated: int = 0
    request_validation_s: float = 0.0
    responses_validated: int = 0
    response_validation_s: float = 0.0
    slowest_request_s: float = 0.0

    @property
    def mean_request_ms(self) -> float:
        if not self.requests_validated:
            return 0.0
        return 1000 * self.request_validation_s / self.requests_validated


TIMINGS = Timings()


@cache
def document() -> dict[str, Any]:
    """The raw description as parsed JSON (cached per process)."""
    start = time.perf_counter()
    with SPEC_PATH.open(encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    _repair(doc)
    TIMINGS.json_load_s = time.perf_counter() - start
    return doc


def _repair(node: Any) -> None:
    """Fix, in place, three ways the description contradicts what GitHub sends.

    1. ``nullable: true`` must let ``null`` through. The description writes a
       check run's ``conclusion`` as ``{type: string, nullable: true, enum:
       [success, ...]}`` and a commit's ``author`` as ``{nullable: true, oneOf:
       [simple-user, empty-object]}``, and GitHub sends ``null`` in both; under
       OAS 3.0.3's strict reading (openapi-schema-validator's) ``enum`` must
       list ``null`` itself and ``nullable`` means nothing without ``type``.
    2. The contents endpoint answers ``oneOf`` [directory (an array), file,
       symlink, submodule] with a ``discriminator`` on ``type`` mapping
       ``array`` to the directory. A discriminator can only read a property of
       an object, so every directory listing would be rejected; such
       discriminators are dropped, and plain ``oneOf`` still tells them apart.
    3. ``GET /app/installations`` says an installation's ``account`` is
       ``allOf`` [Simple User, Enterprise]: both at once, which nothing is (the
       ``installation`` component says ``anyOf``, and so does GitHub).
    """
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            disc = cur.get("discriminator")
            if isinstance(disc, dict) and "array" in disc.get("mapping", {}):
                del cur["discriminator"]
            parts = cur.get("allOf")
            if isinstance(parts, list) and {
                p.get("title") for p in parts if isinstance(p, dict)
            } == {
                "Simple User",
                "Enterprise",
            }:
                cur["anyOf"] = cur.pop("allOf")
            if cur.get("nullable") is True:
                enum = cur.get("enum")
                if isinstance(enum, list) and None not in enum:
                    enum.append(None)
                if "type" not in cur:
                    for key in ("oneOf", "anyOf"):
                        if key in cur:
                            cur[key] = [*cur[key], {"enum": [None]}]
                    if "allOf" in cur:
                        cur["anyOf"] = [{"allOf": cur.pop("allOf")}, {"enum": [None]}]
            stack.extend(v for v in cur.values() if isinstance(v, dict | list))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, dict | list))


_openapi: OpenAPI | None = None


def openapi() -> OpenAPI:
    """The openapi-core object, built once per process.

    ``spec_validator_cls=None`` skips validating the 13 MB description itself,
    which would take many seconds and tells us nothing new each run.
    """
    global _openapi
    with _build_lock:
        if _openapi is None:
            doc = document()
            start = time.perf_counter()
            _openapi = OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))
            TIMINGS.openapi_build_s = time.perf_counter() - start
        return _openapi


_per_path: dict[str, OpenAPI] = {}


def _inline_refs(params: list[Any]) -> list[Any]:
    doc = document()
    out = []
    for p in params:
        if isinstance(p, dict) and "$ref" in p:
            node: Any = doc
            for part in p["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            out.append(node)
        else:
            out.append(p)
    return out


def openapi_for(pattern: str) -> OpenAPI:
    """An openapi-core object that knows just one path of the description.

    openapi-core looks for the request's path by walking all 811 paths and
    re-resolves every ``$ref``'d parameter on each request, which is most of
    its per-request cost. A one-path document that shares the description's
    ``components`` (not a copy) and has its parameters inlined validates the
    same way, several times faster. Built lazily, once per path per process.
    """
    with _build_lock:
        api = _per_path.get(pattern)
        if api is None:
            doc = document()
            item = dict(doc["paths"][pattern])
            for key, value in item.items():
                if key == "parameters":
                    item[key] = _inline_refs(value)
                elif isinstance(value, dict) and "parameters" in value:
                    item[key] = {**value, "parameters": _inline_refs(value["parameters"])}
            mini = {k: v for k, v in doc.items() if k != "paths"}
            mini["paths"] = {pattern: item}
            api = OpenAPI.from_dict(mini, config=Config(spec_validator_cls=None))
            _per_path[pattern] = api
        return api


def has_operation(method: str, pattern: str) -> bool:
    """Whether the description documents ``METHOD pattern`` (for route self-checks)."""
    return method.lower() in document()["paths"].get(pattern, {})


@dataclass
class SpecRequest:
    """The request as openapi-core's ``Request`` protocol wants to see it."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes | None
    content_type: str
    path_pattern: str | None = None
    path_params: Mapping[str, str] = field(default_factory=dict)
    host_url: str = SPEC_SERVER

    @property
    def parameters(self) -> RequestParameters:
        return RequestParameters(
            query=ImmutableMultiDict(list(self.query)),
            header=Headers(list(self.headers.items())),
            cookie=ImmutableMultiDict(),
            path=dict(self.path_params),
        )


@dataclass
class SpecResponse:
    """A response in the shape of openapi-core's ``Response`` protocol.

    ``headers`` should be case-insensitive (werkzeug ``Headers``): the
    description names them ``Link``, servers may send ``link``.
    """

    status_code: int
    data: bytes | None
    content_type: str
    headers: Headers


class _ProtocolRequest:
    """Adapter with the exact attributes openapi-core reads (and may write).

    openapi-core stores resolved path parameters on ``parameters``, so it must
    be one object for the whole validation, not a fresh property value.
    """

    def __init__(self, req: SpecRequest) -> None:
        self.method = req.method.lower()
        self.host_url = req.host_url
        self.path = req.path
        if req.path_pattern is not None:
            # With the pattern given, openapi-core skips its own path matching,
            # which could not match a ``{path}`` that contains slashes.
            self.path_pattern = req.path_pattern
        self.body = req.body
        self.content_type = req.content_type
        self.parameters = req.parameters


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _schema_error(err: Any) -> str:
    """``at a/b: <message>`` with the offending value elided, plus the closest
    sub-error for oneOf/anyOf (whose own message says only "not valid")."""
    where = "/".join(str(p) for p in getattr(err, "absolute_path", ())) or "<root>"
    message = str(getattr(err, "message", err))
    instance = repr(getattr(err, "instance", None))
    if len(instance) > 60:
        message = message.replace(instance, "<value>")
    text = f"at {where}: {_short(message)}"
    context = getattr(err, "context", None)
    if context:
        text += f" (closest: {_schema_error(best_match(context))})"
    return text


def _describe(exc: BaseException) -> str:
    """A readable account of openapi-core's nested exceptions.

    openapi-core's messages embed the whole offending value; what helps is
    each schema error with its location, so those are listed in full and the
    wrapping messages shortened.
    """
    parts: list[str] = [_short(str(exc), 160)]
    seen: set[int] = {id(exc)}
    todo: list[BaseException] = []
    if exc.__cause__ is not None:
        todo.append(exc.__cause__)
    todo.extend(e for e in getattr(exc, "errors", ()) if isinstance(e, BaseException))
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        schema_errors = getattr(cur, "schema_errors", None)
        if schema_errors:
            parts.extend(_schema_error(err) for err in schema_errors)
        else:
            parts.append(_short(str(cur), 160))
        if cur.__cause__ is not None:
            todo.append(cur.__cause__)
        todo.extend(e for e in getattr(cur, "errors", ()) if isinstance(e, BaseException))
    return "; ".join(dict.fromkeys(p for p in parts if p))


def validate_request(req: SpecRequest) -> str | None:
    """``None`` when the description accepts the request, else why not."""
    api = openapi() if req.path_pattern is None else openapi_for(req.path_pattern)
    with _validate_lock:
        start = time.perf_counter()
        try:
            api.validate_request(_ProtocolRequest(req))
            problem = None
        except Exception as exc:  # openapi-core raises a zoo of types; all mean "invalid"
            problem = _describe(exc)
        spent = time.perf_counter() - start
        TIMINGS.requests_validated += 1
        TIMINGS.request_validation_s += spent
        TIMINGS.slowest_request_s = max(TIMINGS.slowest_request_s, spent)
    return problem


def validate_response(req: SpecRequest, resp: SpecResponse) -> str | None:
    """``None`` when the response matches the description (keeps the fake honest)."""
    api = openapi() if req.path_pattern is None else openapi_for(req.path_pattern)
    with _validate_lock:
        start = time.perf_counter()
        try:
            api.validate_response(_ProtocolRequest(req), resp)
            problem = None
        except Exception as exc:  # as above
            problem = _describe(exc)
        TIMINGS.responses_validated += 1
        TIMINGS.response_validation_s += time.perf_counter() - start
    return problem


# --------------------------------------------------------------------------
# Skeletons: the smallest object the schema accepts, with every required field.

_DATE = "2024-01-01T00:00:00Z"


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        ref: str = schema["$ref"]
        node: Any = document()
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _filler(schema: Mapping[str, Any], depth: int, allow_null: bool = True) -> Any:
    schema = _resolve(schema)
    if depth > 12:
        return None
    # A nullable schema is filled with null, except at the top (asking for an
    # "integration" means wanting one) and inside anyOf/oneOf/allOf, whose
    # wrapper may itself not be nullable.
    if schema.get("nullable") and allow_null and "type" in schema:
        return None
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for sub in schema["allOf"]:
            value = _filler(sub, depth + 1, allow_null=False)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _filler(schema[key][0], depth + 1, allow_null=False)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = schema.get("required", ())
        props = schema.get("properties", {})
        return {name: _filler(props.get(name, {}), depth + 1) for name in required}
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(schema.get("minimum", 0)), 0)
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return _DATE
        if fmt == "uri":
            return SPEC_SERVER
        if fmt == "email":
            return "someone@example.com"
        return ""
    # Untyped schema: anything goes; null is the least surprising.
    return None


@cache
def _skeleton(name: str) -> Any:
    return _filler({"$ref": f"#/components/schemas/{name}"}, 0, allow_null=False)


def skeleton(name: str) -> Any:
    """A fresh minimal instance of ``#/components/schemas/<name>``."""
    return copy.deepcopy(_skeleton(name))
