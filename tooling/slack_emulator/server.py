"""Run the emulator: ``EmulatorServer`` (uvicorn in a background thread) and ``RemoteEmulator``
(the control endpoints of an emulator running elsewhere, e.g.
``python -m tooling.slack_emulator``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

import orjson
import requests
import uvicorn

from .app import EmulatorApp
from .config import EmulatorConfig
from .tenants import each_tenant
from .workspace import Workspace

if TYPE_CHECKING:
    from .org import Org

STARTUP_TIMEOUT = 15.0


class EmulatorServer:
    """The emulator on ``127.0.0.1`` (free port by default), serving until ``stop()``.

    ``workspace``: one ``Workspace`` for the tokens of ``config.tokens``, or a mapping token ->
    ``Workspace`` to serve several workspaces at once (each its own data and rate limits).
    ``workspace`` is then the first one; ``workspaces`` names them all.
    """

    def __init__(
        self,
        workspace: Workspace | Mapping[str, Workspace | Org],
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.config = config or EmulatorConfig()
        self.app = EmulatorApp(workspace, self.config)
        self.workspace = self.app.workspace
        self.workspaces: dict[str, Workspace] = {
            token: tenant.workspace for token, tenant in self.app.tenants.items()
        }
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Slack Web API base URL (``…/api/``)."""
        return f"{self.url}/api/"

    @property
    def control_url(self) -> str:
        """Control endpoints base URL (``…/_emulator/``)."""
        return f"{self.url}/_emulator/"

    def start(self) -> EmulatorServer:
        """Bind, start serving in a daemon thread, return once requests are being answered."""
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto
        # says TCP. Without it every keep-alive answer (headers, then body) waited ~40 ms for
        # the client's delayed ACK, which Slack's own servers never do.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(1024)  # connections queue from here on, even before uvicorn runs
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            access_log=False,
            log_level=self._log_level,
            log_config=None,
            http="h11",
            loop="asyncio",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"slack-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            self._thread.join(timeout=0.005)  # wakes at once if the server thread dies
            if not self._thread.is_alive():
                raise RuntimeError("slack emulator failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("slack emulator did not start in time")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def team_control_url(self, team_id: str) -> str:
        """Control endpoints of one workspace of several (``…/_emulator/teams/<team_id>/``)."""
        return f"{self.url}/_emulator/teams/{team_id}/"

    def request_counts(self, token: str | None = None) -> dict[str, int]:
        """API requests per method (every status, faults and 429s included); with ``token``,
        the authenticated requests of that token's workspace."""
        if token is not None:
            return self.app.tenants[token].stats.request_counts()
        return self.app.stats.request_counts()

    def stats(self) -> dict[str, dict[str, int]]:
        """``requests``, ``ratelimited`` (429s) and ``faults`` (per kind) per method; with
        ``EmulatorConfig.rotation``, ``rotation`` too (refreshes, rejected, expired)."""
        snapshot = self.app.stats.snapshot()
        if self.app.config.rotation is not None:
            snapshot["rotation"] = self.app.slack.rotation.snapshot()
        return snapshot

    def reset_stats(self, rate_limits: bool = False) -> None:
        """Zero the counters (and, if asked, forget the rate-limit windows)."""
        self.app.stats.reset()
        for tenant in each_tenant(self.app.tenants):
            tenant.stats.reset()
        if rate_limits:
            self.app.limiter.reset()


class RemoteEmulator:
    """Client of the control endpoints: the Workspace mutations, ground truth and stats."""

    def __init__(self, control_url: str, timeout: float = 60.0) -> None:
        self.control_url = control_url if control_url.endswith("/") else control_url + "/"
        self.base_url = self.control_url.replace("/_emulator/", "/api/")
        self.timeout = timeout
        self.session = requests.Session()

    def _get(self, path: str, **params: object) -> dict:
        resp = self.session.get(self.control_url + path, params=params, timeout=self.timeout)
        return self._check(resp)

    def _post(self, path: str, **body: object) -> dict:
        resp = self.session.post(
            self.control_url + path,
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
            timeout=self.timeout,
        )
        return self._check(resp)

    @staticmethod
    def _check(resp: requests.Response) -> dict:
        data = resp.json()
        if resp.status_code == 404:
            raise KeyError(data.get("error"))
        if resp.status_code >= 400:
            raise ValueError(data.get("error"))
        return data

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def health(self) -> bool:
        """Whether the emulator answers."""
        return bool(self._get("health").get("ok"))

    def request_counts(self) -> dict[str, int]:
        """API requests per method."""
        return self.stats()["requests"]

    def stats(self) -> dict[str, dict[str, int]]:
        """Same as ``EmulatorServer.stats()``."""
        return self._get("stats")

    def reset_stats(self, rate_limits: bool = False) -> None:
        """Zero the counters (and optionally the rate-limit windows)."""
        self._post("reset_stats", rate_limits=rate_limits)

    def post_message(
        self, channel_id: str, text: str = "hi", user: str | None = None, ts: str | None = None
    ) -> str:
        """See ``Workspace.post_message``."""
        return self._post("post_message", channel_id=channel_id, text=text, user=user, ts=ts)["ts"]

    def post_reply(
        self,
        channel_id: str,
        thread_ts: str,
        text: str = "r",
        user: str | None = None,
        ts: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """See ``Workspace.post_reply``."""
        return self._post(
            "post_reply",
            channel_id=channel_id,
            thread_ts=thread_ts,
            text=text,
            user=user,
            ts=ts,
            broadcast=broadcast,
        )["ts"]

    def edit_message(self, channel_id: str, ts: str, text: str) -> None:
        """See ``Workspace.edit_message``."""
        self._post("edit_message", channel_id=channel_id, ts=ts, text=text)

    def delete_message(self, channel_id: str, ts: str) -> None:
        """See ``Workspace.delete_message``."""
        self._post("delete_message", channel_id=channel_id, ts=ts)

    def add_reaction(self, channel_id: str, ts: str, name: str, user: str) -> None:
        """See ``Workspace.add_reaction``."""
        self._post("add_reaction", channel_id=channel_id, ts=ts, name=name, user=user)

    def create_channel(self, name: str, is_private: bool = False, member: bool = True) -> str:
        """See ``Workspace.create_channel``."""
        return self._post("create_channel", name=name, is_private=is_private, member=member)[
            "channel_id"
        ]

    def rename_channel(self, channel_id: str, new_name: str) -> None:
        """See ``Workspace.rename_channel``."""
        self._post("rename_channel", channel_id=channel_id, new_name=new_name)

    def archive_channel(self, channel_id: str) -> None:
        """See ``Workspace.archive_channel``."""
        self._post("archive_channel", channel_id=channel_id)

    def unarchive_channel(self, channel_id: str) -> None:
        """See ``Workspace.unarchive_channel``."""
        self._post("unarchive_channel", channel_id=channel_id)

    def channels(self) -> list[dict]:
        """See ``Workspace.channels``."""
        return self._get("channels")["channels"]

    def users(self) -> list[dict]:
        """See ``Workspace.users``."""
        return self._get("users")["members"]

    def message_count(self) -> int:
        """See ``Workspace.message_count``."""
        return self._get("message_count")["count"]

    def thread_parents(self, channel_id: str | None = None) -> list[tuple[str, str]]:
        """See ``Workspace.thread_parents``."""
        params = {"channel_id": channel_id} if channel_id else {}
        return [tuple(p) for p in self._get("thread_parents", **params)["parents"]]

    def ts_at_days_ago(self, channel_id: str, days: float) -> str:
        """See ``Workspace.ts_at_days_ago``."""
        return self._get("ts_at_days_ago", channel_id=channel_id, days=days)["ts"]

    def ground_truth(self, channel_id: str | None = None) -> Iterator[dict]:
        """See ``Workspace.ground_truth`` (streamed as JSON lines)."""
        params = {"channel_id": channel_id} if channel_id else {}
        resp = self.session.get(
            self.control_url + "ground_truth", params=params, stream=True, timeout=self.timeout
        )
        if resp.status_code != 200:
            self._check(resp)
        return _json_lines(resp)


def _json_lines(resp: requests.Response) -> Iterator[dict]:
    with resp:
        for line in resp.iter_lines(chunk_size=1 << 16):
            if line:
                yield orjson.loads(line)
