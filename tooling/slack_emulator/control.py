"""Control endpoints (``/_emulator/*``): mutations, ground truth and stats over HTTP.

They let a benchmark drive an emulator in another process. No token, not counted in stats.
Errors: unknown channel/message -> 404, invalid input -> 400, both ``{"ok": false, "error"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .stats import RequestStats
from .workspace import Workspace

STREAM_CHUNK = 1000


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict:
    raw = await request.body()
    return orjson.loads(raw) if raw else {}


class Resettable(Protocol):
    """A rate limiter, or all of a server's (``tenants.AllLimiters``)."""

    def reset(self) -> None: ...


def control_app(workspace: Workspace, stats: RequestStats, limiter: Resettable) -> Starlette:
    """The Starlette app serving ``/_emulator/*``."""
    ws = workspace

    def guarded(fn: Callable[[Request], Awaitable[Response]]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except KeyError as exc:
                return _json({"ok": False, "error": str(exc.args[0] if exc.args else exc)}, 404)
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                return _json({"ok": False, "error": str(exc)}, 400)

        return endpoint

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    async def get_stats(request: Request) -> Response:
        return _json(stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        stats.reset()
        if (await _body(request)).get("rate_limits"):
            limiter.reset()
        return _json({"ok": True})

    async def post_message(request: Request) -> Response:
        b = await _body(request)
        ts = ws.post_message(b["channel_id"], b.get("text", "hi"), b.get("user"), b.get("ts"))
        return _json({"ok": True, "ts": ts})

    async def post_reply(request: Request) -> Response:
        b = await _body(request)
        ts = ws.post_reply(
            b["channel_id"],
            b["thread_ts"],
            b.get("text", "r"),
            b.get("user"),
            b.get("ts"),
            bool(b.get("broadcast", False)),
        )
        return _json({"ok": True, "ts": ts})

    async def edit_message(request: Request) -> Response:
        b = await _body(request)
        ws.edit_message(b["channel_id"], b["ts"], b["text"])
        return _json({"ok": True})

    async def delete_message(request: Request) -> Response:
        b = await _body(request)
        ws.delete_message(b["channel_id"], b["ts"])
        return _json({"ok": True})

    async def add_reaction(request: Request) -> Response:
        b = await _body(request)
        ws.add_reaction(b["channel_id"], b["ts"], b["name"], b["user"])
        return _json({"ok": True})

    async def create_channel(request: Request) -> Response:
        b = await _body(request)
        cid = ws.create_channel(b["name"], bool(b.get("is_private")), bool(b.get("member", True)))
        return _json({"ok": True, "channel_id": cid})

    async def rename_channel(request: Request) -> Response:
        b = await _body(request)
        ws.rename_channel(b["channel_id"], b["new_name"])
        return _json({"ok": True})

    async def archive_channel(request: Request) -> Response:
        ws.archive_channel((await _body(request))["channel_id"])
        return _json({"ok": True})

    async def unarchive_channel(request: Request) -> Response:
        ws.unarchive_channel((await _body(request))["channel_id"])
        return _json({"ok": True})

    async def channels(request: Request) -> Response:
        return _json({"ok": True, "channels": ws.channels()})

    async def users(request: Request) -> Response:
        return _json({"ok": True, "members": ws.users()})

    async def message_count(request: Request) -> Response:
        return _json({"ok": True, "count": ws.message_count()})

    async def thread_parents(request: Request) -> Response:
        parents = ws.thread_parents(request.query_params.get("channel_id") or None)
        return _json({"ok": True, "parents": [list(p) for p in parents]})

    async def ts_at_days_ago(request: Request) -> Response:
        q = request.query_params
        return _json({"ok": True, "ts": ws.ts_at_days_ago(q["channel_id"], float(q["days"]))})

    async def ground_truth(request: Request) -> Response:
        it = ws._ground_truth(request.query_params.get("channel_id") or None, wire=True)

        async def lines() -> AsyncIterator[bytes]:
            while True:
                chunk = [orjson.dumps(m) for _, m in zip(range(STREAM_CHUNK), it, strict=False)]
                if not chunk:
                    return
                yield b"\n".join(chunk) + b"\n"
                await asyncio.sleep(0)  # let API requests in between chunks

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    routes = [
        ("/health", health, ["GET"]),
        ("/stats", get_stats, ["GET"]),
        ("/reset_stats", reset_stats, ["POST"]),
        ("/post_message", post_message, ["POST"]),
        ("/post_reply", post_reply, ["POST"]),
        ("/edit_message", edit_message, ["POST"]),
        ("/delete_message", delete_message, ["POST"]),
        ("/add_reaction", add_reaction, ["POST"]),
        ("/create_channel", create_channel, ["POST"]),
        ("/rename_channel", rename_channel, ["POST"]),
        ("/archive_channel", archive_channel, ["POST"]),
        ("/unarchive_channel", unarchive_channel, ["POST"]),
        ("/channels", channels, ["GET"]),
        ("/users", users, ["GET"]),
        ("/message_count", message_count, ["GET"]),
        ("/thread_parents", thread_parents, ["GET"]),
        ("/ts_at_days_ago", ts_at_days_ago, ["GET"]),
        ("/ground_truth", ground_truth, ["GET"]),
    ]
    return Starlette(
        routes=[Route("/_emulator" + path, guarded(fn), methods=m) for path, fn, m in routes]
    )
