"""FakeGitHub: a real HTTP server on 127.0.0.1 that answers like api.github.com.

Each request goes through the same steps, in the order GitHub's own front
end would reveal them to a client:

1. simulated latency (slept outside every lock, so parallel calls overlap);
2. the API description (openapi-core): a request it rejects is a *violation*,
   recorded and answered 400 (or GitHub's own 422 where GitHub has one);
3. injected faults (5xx, secondary rate limit; queued, or chaos mode's random ones,
   where a "timeout" acts and then drops the connection unanswered), then the
   primary rate limit;
4. authentication (App JWT or installation token);
5. the endpoint itself, under the state lock;
6. conditional GET (``ETag``/``If-None-Match`` -> 304, which costs no rate limit).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers

from tests.fakegithub import auth, endpoints, graphql, oauth, routing, spec
from tests.fakegithub.models import Call, Violation, ViolationKind
from tests.fakegithub.routing import ApiError, Ctx, Reply
from tests.fakegithub.state import Fault, GitHubState

assert endpoints  # imported for its side effect: registering every route

SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try"
    " again. If you reach out to GitHub Support for help, please include the request ID {rid}."
)
PRIMARY_RATE_LIMIT_MESSAGE = (
    "API rate limit exceeded for installation. If you reach out to GitHub Support for help,"
    " please include the request ID."
)
SECONDARY_DOCS = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)


@dataclass
class RawRequest:
    method: str
    target: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes


@dataclass
class RawResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Close the connection without answering (a timeout, as the client sees it).
    drop: bool = False


@dataclass
class _Incoming:
    """A request taken apart once: path, query, JSON body, matched route."""

    req: RawRequest
    path: str
    query_pairs: list[tuple[str, str]]
    query: dict[str, str]
    json: Any
    bad_json: bool
    route: routing.Route | None
    params: dict[str, str]

    @classmethod
    def parse(cls, req: RawRequest) -> _Incoming:
        path, _, query_string = req.target.partition("?")
        pairs = parse_qsl(query_string, keep_blank_values=True)
        body: Any = None
        bad_json = False
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                bad_json = True
        matched = routing.match(req.method, path)
        route, params = matched if matched else (None, {})
        return cls(req, path, pairs, dict(pairs), body, bad_json, route, params)

    def spec_request(self) -> spec.SpecRequest:
        return spec.SpecRequest(
            method=self.req.method,
            path=self.path,
            query=self.query_pairs,
            headers=self.req.headers,
            body=self.req.body or None,
            content_type=self.req.headers.get("content-type", "application/json"),
            path_pattern=self.route.pattern if self.route else None,
            path_params=self.params,
        )


class FakeGitHub(GitHubState):
    """The fake GitHub (its test API is listed in ``tests/fakegithub/__init__.py``).

    Use as a context manager, or ``start()``/``stop()``. The pytest fixture
    ``fake_github`` (``tests.fakegithub.plugin``) hands out a started, reset one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FakeGitHub:
        if self._server is not None:
            return self
        # Load the description now (~0.3 s, once per process) rather than inside
        # the first request, where it would stall every request racing it.
        spec.openapi()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            # A short poll keeps stop() fast; the loop is idle otherwise.
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"FakeGitHub:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the API root, as ``GATE_GITHUB_API_URL`` expects."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -------------------------------------------------------------- pipeline

    def handle(self, req: RawRequest) -> RawResponse:
        """Answer one request (the HTTP handler's only job is to call this)."""
        if self.latency > 0:
            time.sleep(self.latency)
        inc = _Incoming.parse(req)
        if oauth.handles(inc.path):
            # github.com's web flow, not the REST API: no description to check it against.
            with self.lock:
                status, headers, body = oauth.answer(
                    self.oauth,
                    req.method,
                    inc.path,
                    req.target.partition("?")[2],
                    req.headers,
                    req.body,
                )
            resp = RawResponse(status, body, headers)
        else:
            resp = self._answer(inc)
        self._add_standard_headers(resp)
        with self.lock:
            self.calls.append(
                Call(
                    req.method,
                    inc.path,
                    inc.query,
                    inc.json,
                    resp.status,
                    inc.route.operation if inc.route else _graphql_operation(inc),
                    dict(req.headers),
                )
            )
        return resp

    def _answer(self, inc: _Incoming) -> RawResponse:
        req = inc.req
        if inc.bad_json:
            self._violate(inc, "Problems parsing JSON")
            return _error(ApiError(400, "Problems parsing JSON"))
        if req.method == "POST" and inc.path in ("/graphql", "/api/graphql"):
            return self._graphql(inc)
        ctx = Ctx(
            state=self,
            api=self.base_url,
            method=req.method,
            path=inc.path,
            params=inc.params,
            query=inc.query,
            json=inc.json,
            headers=req.headers,
        )

        # 2. The referee.
        problem = spec.validate_request(inc.spec_request())
        if problem is not None:
            self._violate(inc, problem)
            hook = inc.route.on_invalid if inc.route else None
            github_answer = hook(ctx) if hook else None
            if github_answer is not None:
                return self._count(_error(github_answer))
            message = "FakeGitHub: the request does not match GitHub's REST API description: "
            return _error(ApiError(400, message + problem))
        if inc.route is None:
            msg = (
                f"FakeGitHub does not implement {req.method} {inc.path} (valid per the description)"
            )
            self._violate(inc, msg, kind="unimplemented")
            return _error(ApiError(501, msg))

        # 3. Faults and the primary rate limit.
        injected = self._injected_fault()
        chaos = self.chaos_fault(inc.route.operation) if injected is None else None
        if chaos == "timeout" or (injected is not None and injected.drop):
            # The request takes effect; its answer never arrives.
            self._proceed(inc, ctx)
            with self.lock:
                hold = self.chaos_mode.hold if chaos and self.chaos_mode else 0.0
            time.sleep(hold)
            return RawResponse(0, drop=True)
        if injected is not None:
            return injected
        if chaos is not None:
            return self._chaos_answer(chaos)
        return self._proceed(inc, ctx)

    def _proceed(self, inc: _Incoming, ctx: Ctx) -> RawResponse:
        """Steps 3 (primary rate limit) to 6 for a request no fault stopped."""
        req = inc.req
        assert inc.route is not None
        with self.lock:
            exhausted = self.rate_limit_remaining <= 0
        if exhausted:
            return _error(ApiError(403, PRIMARY_RATE_LIMIT_MESSAGE))

        # 4. Who is asking.
        try:
            self._authenticate(inc.route.auth, ctx)
        except auth.AuthError as exc:
            return self._count(_error(ApiError(401, exc.message)))

        # 5. The endpoint.
        with self.lock:
            try:
                resp = _encode(inc.route.handler(ctx))
            except ApiError as exc:
                return self._count(_error(exc))
            except Exception:
                # A crash here is the fake's bug; fail the test loudly, not quietly.
                self._violate(inc, traceback.format_exc(), kind="response")
                return _error(ApiError(500, "FakeGitHub crashed; see fake.violations"))
        if self.validate_responses and 200 <= resp.status < 300:
            self._check_response(inc, resp)

        # 6. Conditional GET.
        if req.method == "GET" and resp.status == 200:
            etag = '"' + hashlib.sha256(resp.body).hexdigest()[:40] + '"'
            resp.headers["ETag"] = etag
            if _etag_matches(req.headers.get("if-none-match"), etag):
                # Conditional hits are free on GitHub: no rate-limit cost.
                return RawResponse(304, b"", {"ETag": etag})
        return self._count(resp)

    def _graphql(self, inc: _Incoming) -> RawResponse:
        """GitHub's GraphQL endpoint (see :mod:`.graphql`), for user and installation tokens.

        Its budget is its own, in points (``x-ratelimit-resource: graphql``); queued
        and chaos faults apply as to REST, and :meth:`fail_graphql` fails it alone.
        """
        scheme, _, credential = inc.req.headers.get("authorization", "").partition(" ")
        credential = credential.strip()
        token = auth.lookup_token(credential)
        with self.lock:
            viewer = self.user_tokens.get(credential)
            installation = (
                token.installation_id
                if token is not None
                and not token.expired
                and credential not in self.revoked_tokens
                and token.installation_id in self.installations
                else None
            )
        if scheme.lower() not in ("bearer", "token") or (viewer is None and installation is None):
            return _error(ApiError(401, "Bad credentials"))
        body = inc.json if isinstance(inc.json, dict) else {}
        query, variables = body.get("query"), body.get("variables")
        problem = graphql.invalid(query, variables)
        if problem is not None:
            self._violate(inc, f"GraphQL request GitHub's schema rejects: {problem}")
            return _encode(Reply(body={"errors": [{"message": problem}]}))
        injected = self._injected_fault()
        chaos = self.chaos_fault("POST /graphql") if injected is None else None
        with self.lock:
            failure = self.graphql_failure
        if injected is not None:
            return injected
        if chaos is not None:
            return RawResponse(0, drop=True) if chaos == "timeout" else self._chaos_answer(chaos)
        if isinstance(failure, Fault):
            return self._fault_answer(failure)
        points = graphql.cost(str(query), variables)
        with self.lock:
            exhausted = self.graphql_rate_limit_remaining < points
            if not exhausted:
                self.graphql_rate_limit_remaining -= points
        if exhausted or isinstance(failure, str):
            message = failure if isinstance(failure, str) else "API rate limit exceeded"
            kind = "SERVICE_UNAVAILABLE" if isinstance(failure, str) else "RATE_LIMITED"
            resp = _encode(Reply(body={"errors": [{"type": kind, "message": message}]}))
        else:
            with self.lock:
                answer = graphql.execute(
                    self,
                    self.base_url,
                    viewer=viewer,
                    query=str(query),
                    variables=variables,
                    installation=installation,
                    repositories=token.repositories if token is not None else None,
                    points=points,
                )
            resp = _encode(Reply(body=answer))
        with self.lock:
            resp.headers.update(
                {
                    "x-ratelimit-limit": str(self.graphql_rate_limit),
                    "x-ratelimit-remaining": str(self.graphql_rate_limit_remaining),
                    "x-ratelimit-reset": str(self.rate_limit_reset),
                    "x-ratelimit-used": str(
                        self.graphql_rate_limit - self.graphql_rate_limit_remaining
                    ),
                    "x-ratelimit-resource": "graphql",
                }
            )
        return resp

    # -------------------------------------------------------------- helpers

    def _violate(self, inc: _Incoming, message: str, *, kind: ViolationKind = "request") -> None:
        with self.lock:
            self.violations.append(
                Violation(inc.req.method, inc.path, dict(inc.query), message, kind)
            )

    def _check_response(self, inc: _Incoming, resp: RawResponse) -> None:
        content_type = resp.headers.get("Content-Type", "application/json")
        if not content_type.startswith("application/json"):
            return
        problem = spec.validate_response(
            inc.spec_request(),
            spec.SpecResponse(
                resp.status, resp.body, content_type, Headers(list(resp.headers.items()))
            ),
        )
        if problem is not None:
            self._violate(inc, problem, kind="response")

    def _chaos_answer(self, kind: str) -> RawResponse:
        if kind == "secondary_rate_limit":
            with self.lock:
                retry_after = self.chaos_mode.retry_after if self.chaos_mode else 1
            return self._fault_answer(Fault(403, retry_after))
        return self._fault_answer(Fault(int(kind)))

    def _injected_fault(self) -> RawResponse | None:
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults.pop(0)
        return self._fault_answer(fault)

    def _fault_answer(self, fault: Fault) -> RawResponse:
        if fault.drop:
            return RawResponse(0, drop=True)
        if fault.retry_after is not None:
            rid = uuid.uuid4().hex[:16].upper()
            resp = _error(ApiError(403, SECONDARY_RATE_LIMIT_MESSAGE.format(rid=rid)))
            payload = json.loads(resp.body)
            payload["documentation_url"] = SECONDARY_DOCS
            resp.body = json.dumps(payload).encode()
            resp.headers["retry-after"] = str(fault.retry_after)
            return resp
        return _error(ApiError(fault.status, "Server Error"))

    def _authenticate(self, kind: str, ctx: Ctx) -> None:
        if kind == "none":
            return
        header = ctx.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if not credential:
            raise auth.AuthError(
                "A JSON web token could not be decoded"
                if kind == "app"
                else "Requires authentication"
            )
        if kind == "app":
            if scheme != "bearer":
                raise auth.AuthError("A JSON web token could not be decoded")
            with self.lock:
                keys = {str(a.id): a.public_key_pem for a in self.apps.values()}
                keys.update({a.client_id: a.public_key_pem for a in self.apps.values()})
            issuer = auth.verify_jwt(credential, keys)
            with self.lock:
                ctx.app = next(a for a in self.apps.values() if issuer in (str(a.id), a.client_id))
            return
        if scheme not in ("token", "bearer"):
            raise auth.AuthError("Bad credentials")
        if credential.startswith("ghu_") or kind == "user":
            with self.lock:
                user = self.oauth.user_token(credential)
                if user is None or credential in self.revoked_tokens:
                    raise auth.AuthError("Bad credentials")
                if kind not in ("user", "installation_or_user"):
                    raise auth.AuthError(
                        "FakeGitHub: user access tokens are implemented for GET /user and "
                        "GET /repos/{owner}/{repo} only"
                    )
                ctx.user = user.login
                ctx.user_app = next(
                    (a for a in self.apps.values() if a.client_id == user.client_id), None
                )
            return
        token = auth.lookup_token(credential)
        with self.lock:
            valid = (
                token is not None
                and not token.expired
                and credential not in self.revoked_tokens
                and token.installation_id in self.installations
            )
        if not valid:
            raise auth.AuthError("Bad credentials")
        ctx.token = token

    def _count(self, resp: RawResponse) -> RawResponse:
        with self.lock:
            self.rate_limit_remaining = max(self.rate_limit_remaining - 1, 0)
        return resp

    def _add_standard_headers(self, resp: RawResponse) -> None:
        with self.lock:
            remaining = self.rate_limit_remaining
            # GraphQL's answers carry its own budget (set by _graphql).
            if resp.headers.get("x-ratelimit-resource") != "graphql":
                resp.headers.update(
                    {
                        "x-ratelimit-limit": str(self.rate_limit),
                        "x-ratelimit-remaining": str(remaining),
                        "x-ratelimit-reset": str(self.rate_limit_reset),
                        "x-ratelimit-used": str(max(self.rate_limit - remaining, 0)),
                        "x-ratelimit-resource": "core",
                    }
                )
        resp.headers.setdefault("x-github-request-id", uuid.uuid4().hex[:20].upper())
        resp.headers.setdefault("x-github-api-version-selected", "2022-11-28")
        resp.headers.setdefault("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")


def _graphql_operation(inc: _Incoming) -> str | None:
    """GraphQL calls are logged as one operation, so call counts tell them from REST."""
    if inc.req.method == "POST" and inc.path in ("/graphql", "/api/graphql"):
        return "POST /graphql"
    return None


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # If-None-Match compares weakly: W/"x" matches "x".
    return any(t.strip().removeprefix("W/") == etag for t in header.split(","))


def _encode(reply: Reply) -> RawResponse:
    headers = dict(reply.headers)
    if reply.raw is not None:
        headers["Content-Type"] = reply.content_type
        return RawResponse(reply.status, reply.raw, headers)
    body = b"" if reply.status == 204 else json.dumps(reply.body).encode()
    headers["Content-Type"] = reply.content_type
    return RawResponse(reply.status, body, headers)


def _error(err: ApiError) -> RawResponse:
    headers = {"Content-Type": "application/json; charset=utf-8", **err.headers}
    return RawResponse(err.status, json.dumps(err.body()).encode(), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Parallel clients open many connections at once; don't refuse them.
    request_queue_size = 128
    fake: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a killed process) is not the fake's error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive, as they would with GitHub.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus
    # the client's delayed ACK add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body(headers)
        if body is None:
            # The client went away mid-request (a killed process): GitHub never
            # received a request, so there is nothing to answer or to judge.
            self.close_connection = True
            return
        resp = self.server.fake.handle(RawRequest(self.command, self.path, headers, body))
        if resp.drop:
            self.close_connection = True
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes | None:
        """The body, or None when the connection closed before all of it arrived."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the per-request stderr line; ``fake.calls`` is the log.
        return
