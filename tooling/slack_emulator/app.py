"""The ASGI application: ``/api/<method>`` (Slack) and ``/_emulator/*`` (control).

The Slack side is a bare ASGI callable: it is the hot path, and a fault that drops the
connection needs the raw ``receive`` of the server. Order per request: count it, maybe inject a
fault, authenticate, rate-limit, answer. Handlers run inline on the event loop (a 999-message
page takes a few ms); only the ``slow`` fault awaits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from .config import EmulatorConfig
from .control import control_app
from .faults import Fault, FaultInjector
from .org import ORG_METHODS
from .pagination import SlackError
from .rate_limits import format_retry_after
from .rotation import OAUTH_METHOD, TokenRotation
from .stats import RequestStats
from .tenants import AllLimiters, Tenant, each_tenant, make_tenants
from .workspace import Workspace

if TYPE_CHECKING:
    from .org import Org

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]
API_PREFIX = "/api/"
CONTROL_PREFIX = "/_emulator"
TEAMS_PREFIX = "/_emulator/teams/"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = list(headers if headers is not None else JSON_HEADERS)
    head.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _transport(receive: Receive) -> Any:
    """The connection's transport. Relies on uvicorn's protocol objects: ``receive`` is a
    bound method of the request cycle, which holds the transport."""
    return getattr(getattr(receive, "__self__", None), "transport", None)


async def _until_disconnected(receive: Receive) -> None:
    """Wait until the server notices the closed connection, so it sends nothing of its own."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _reset_connection(receive: Receive) -> bool:
    """Drop the TCP connection without an answer (RST)."""
    transport = _transport(receive)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _until_disconnected(receive)
    return True


async def _cut_short(receive: Receive, send: Send, body: bytes) -> None:
    """A connection dropped mid-answer: the whole body's Content-Length, half the body, then
    the connection closes, so HTTP clients raise their incomplete-read error. Without a
    transport to close, the half body with its own length (a malformed JSON answer)."""
    half = body[: max(1, len(body) // 2)]
    transport = _transport(receive)
    if transport is None:
        await _respond(send, 200, half)
        return
    head = JSON_HEADERS + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": half, "more_body": True})
    transport.close()  # after what was written: the client reads the half, then EOF
    await _until_disconnected(receive)


class SlackApiApp:
    """``/api/<method>``: the emulated Slack Web API, one workspace per token (``tenants``)."""

    def __init__(
        self,
        tenants: Mapping[str, Tenant],
        config: EmulatorConfig,
        stats: RequestStats,
        faults: FaultInjector,
    ) -> None:
        self.tenants = dict(tenants)
        self.api = next(iter(self.tenants.values())).api  # the first workspace's methods
        self.methods = ORG_METHODS.union(*(t.api.handlers for t in each_tenant(self.tenants)))
        self.config = config
        self.stats = stats
        self.faults = faults
        self.revoked = frozenset(config.revoked_tokens)
        self.rotation = TokenRotation(config.rotation, self.tenants, config.time_scale)
        self.scope_headers = (
            JSON_HEADERS + [(b"x-oauth-scopes", ",".join(config.scopes).encode())]
            if config.scope_header
            else JSON_HEADERS
        )

    def _args(self, scope: Scope, body: bytes) -> tuple[dict[str, str], str | None]:
        """Merged query + body arguments and the token (Bearer header or a form ``token``)."""
        args = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True))
        args.pop("token", None)  # tokens are not accepted in the query string
        token = None
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, cred = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and cred.strip():
                    token = cred.strip()
            elif name == b"content-type":
                content_type = value
        if body:
            form = _body_args(content_type, body)
            form_token = form.pop("token", None)
            args.update(form)
            # a JSON body's token is not read: Slack wants it in the Authorization header
            if token is None and form_token and not content_type.lower().startswith(JSON_TYPE):
                token = form_token
        return args, token

    def _authenticate(self, token: str | None) -> Tenant:
        """The token's workspace, or Slack's error for a missing, revoked or unknown token."""
        if token is None:
            raise SlackError("not_authed")
        if token in self.revoked:
            raise SlackError("token_revoked")
        tenant = self.tenants.get(token)
        if tenant is None:
            raise SlackError("invalid_auth")
        self.rotation.check(token)  # `token_expired` for an expired rotating token
        return tenant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["path"][len(API_PREFIX) :]
        self.stats.request(method)
        if method == OAUTH_METHOD:  # no token: the app's credentials and a refresh token
            await self._oauth_access(scope, receive, send)
            return
        if method not in self.methods:
            body = orjson.dumps({"ok": False, "error": "unknown_method", "req_method": method})
            await _respond(send, 200, body)
            return
        fault = self.faults.draw(method)
        if fault is not None:
            self.stats.fault(method, fault.kind)
            if await self._fault(fault, method, scope, receive, send):
                return
        raw = await _read_body(receive)
        token: str | None = None
        try:
            args, token = self._args(scope, raw)
            tenant = self._authenticate(token).for_request(method, args)
            tenant.stats.request(method)
            wait = tenant.limiter.acquire(method)
            if wait is not None:
                self.stats.ratelimited(method)
                tenant.stats.ratelimited(method)
                value = format_retry_after(wait)
                headers = JSON_HEADERS + [(b"retry-after", value.encode())]
                body = orjson.dumps({"ok": False, "error": "ratelimited"})
                await _respond(send, 429, body, headers)
                return
            payload = tenant.api.call(method, args)
        except SlackError as err:
            payload = err.payload()
            if token is None or token not in self.tenants or token in self.revoked:
                await _respond(send, 200, orjson.dumps(payload))
                return
        # Slack names the token's granted scopes on every authenticated answer.
        await _respond(send, 200, orjson.dumps(payload), self.scope_headers)

    async def _oauth_access(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`oauth.v2.access`: the app's credentials by HTTP Basic (Slack's recommendation) or
        as form fields."""
        args, _ = self._args(scope, await _read_body(receive))
        args.update(basic_credentials(scope))
        try:
            payload = self.rotation.oauth_access(args)
        except SlackError as err:
            payload = err.payload()
        await _respond(send, 200, orjson.dumps(payload))

    async def _fault(
        self, fault: Fault, method: str, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Apply a fault; ``True`` when the request is fully answered (or dropped)."""
        kind = fault.kind
        if kind == "slow":
            await asyncio.sleep(self.faults.spec.slow_seconds if self.faults.spec else 0.0)
            return False
        if kind in ("500", "502", "503"):
            if fault.flag:
                await _respond(send, int(kind), b"", [(b"content-type", b"text/plain")])
            else:
                body = orjson.dumps({"ok": False, "error": "internal_error"})
                await _respond(send, int(kind), body)
            return True
        if kind == "ratelimited_200":
            await _respond(send, 200, orjson.dumps({"ok": False, "error": "ratelimited"}))
            return True
        if kind == "reset":
            if await _reset_connection(receive):
                return True
            await _respond(send, 500, b"")
            return True
        # truncated: the would-be answer, computed without changing state, cut short
        raw = await _read_body(receive)
        try:
            args, token = self._args(scope, raw)
            tenant = self._authenticate(token).for_request(method, args)
            payload = tenant.api.call(method, args, dry_run=True)
        except SlackError as err:
            payload = err.payload()
        await _cut_short(receive, send, orjson.dumps(payload))
        return True


class EmulatorApp:
    """Dispatches ``/api/`` to the Slack app and ``/_emulator/`` to the control app.

    ``workspace`` is one ``Workspace`` (every token of ``config.tokens`` reaches it) or a mapping
    token -> ``Workspace``: several workspaces at once, each with its own data and rate limits.
    ``/_emulator/`` controls the first workspace (stats: the whole server);
    ``/_emulator/teams/<team_id>/`` controls each workspace (stats: that workspace's requests).
    """

    def __init__(
        self,
        workspace: Workspace | Mapping[str, Workspace | Org],
        config: EmulatorConfig | None = None,
    ) -> None:
        self.config = config = config or EmulatorConfig()
        self.tenants = make_tenants(workspace, config)
        first = next(iter(self.tenants.values()))
        self.workspace = first.workspace
        self.stats = RequestStats()
        self.limiter = AllLimiters(self.tenants)
        self.faults = FaultInjector(config.faults)
        self.slack = SlackApiApp(self.tenants, config, self.stats, self.faults)
        self.control = control_app(first.workspace, self.stats, self.limiter)
        self.team_controls = {
            tenant.workspace.team.id: control_app(tenant.workspace, tenant.stats, tenant.limiter)
            for tenant in each_tenant(self.tenants)
            if isinstance(tenant, Tenant)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path.startswith(API_PREFIX):
            await self.slack(scope, receive, send)
        elif scope["type"] == "http" and not path.startswith(CONTROL_PREFIX):
            await _respond(send, 404, orjson.dumps({"ok": False, "error": "not_found"}))
        elif path.startswith(TEAMS_PREFIX):
            team_id, _, rest = path[len(TEAMS_PREFIX) :].partition("/")
            control = self.team_controls.get(team_id)
            if control is None:
                await _respond(send, 404, orjson.dumps({"ok": False, "error": "team_not_found"}))
                return
            await control({**scope, "path": f"{CONTROL_PREFIX}/{rest}"}, receive, send)
        else:
            await self.control(scope, receive, send)


JSON_TYPE = b"application/json"
FORM_TYPES = (b"application/x-www-form-urlencoded", b"text/plain")
MULTIPART_TYPE = b"multipart/form-data"
CHARSETS = ("utf-8", "iso-8859-1")


def basic_credentials(scope: Scope) -> dict[str, str]:
    """``client_id`` and ``client_secret`` from an ``Authorization: Basic`` header, if any."""
    for name, value in scope["headers"]:
        scheme, _, encoded = value.decode("latin-1").partition(" ")
        if name == b"authorization" and scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return {}
            return {"client_id": client_id, "client_secret": secret}
    return {}


def _body_args(content_type: bytes, body: bytes) -> dict[str, str]:
    """A POST body's arguments by its ``Content-Type``, Slack's four or its errors:
    ``missing_post_type``, ``invalid_post_type``, ``invalid_charset``, ``invalid_json``,
    ``json_not_object``, ``invalid_form_data``. ``text/plain`` is read as a form (Slack lists
    it as valid without saying how it reads it)."""
    mime, _, params = content_type.decode("latin-1").partition(";")
    mime_type = mime.strip().lower().encode()
    if not mime_type:
        raise SlackError("missing_post_type")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in CHARSETS:
                raise SlackError("invalid_charset")
    if mime_type in FORM_TYPES:
        return dict(parse_qsl(body.decode(charset, "replace"), True))
    if mime_type == JSON_TYPE:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SlackError("invalid_json") from None
        if not isinstance(data, dict):
            raise SlackError("json_not_object")
        return {k: _arg_str(v) for k, v in data.items() if v is not None}
    if mime_type == MULTIPART_TYPE:
        return _multipart_args(content_type, body)
    raise SlackError("invalid_post_type")


def _multipart_args(content_type: bytes, body: bytes) -> dict[str, str]:
    """The fields of a ``multipart/form-data`` body (file parts are not arguments)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type + b"\r\n\r\n" + body
    )
    if not message.is_multipart() or message.defects:
        raise SlackError("invalid_form_data")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        fields[name] = payload.decode(charset, "replace") if isinstance(payload, bytes) else ""
    return fields


def _arg_str(value: object) -> str:
    """JSON argument as the string a form would carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
