"""A fault-injecting HTTP proxy between a BigQuery client and the BigQuery emulator (tests only).

Point `BIGQUERY_EMULATOR_HOST` at `FaultProxy.url`: every request is forwarded to the emulator,
except the first `times` requests a `Fault` matches (HTTP method and a regular expression on the
path), which are answered as Google would or dropped:

- `5xx`: HTTP 500/503 with BigQuery's JSON error body (`backendError`);
- `rateLimitExceeded`: HTTP 403 or 429 with `reason: rateLimitExceeded` (BigQuery sends 403);
- `drop`: the connection is closed before the request is forwarded;
- `drop_after`: the request is forwarded (the emulator acts on it) and the connection closed
  before the answer: the case where a retried job insert could load a file twice.

Paths: job inserts `POST .../jobs`, polls `GET .../jobs/<id>`, queries `POST .../queries` and
`GET .../queries/<id>`, uploads `POST /upload/bigquery/v2/.../jobs`.
"""

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

import requests

JOB_INSERT = r"^/bigquery/v2/projects/[^/]+/jobs$"
JOB_POLL = r"^/bigquery/v2/projects/[^/]+/jobs/[^/]+$"
QUERY = r"^/bigquery/v2/projects/[^/]+/queries(/[^/]+)?$"
UPLOAD = r"^/upload/bigquery/v2/projects/[^/]+/jobs$"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Fault:
    method: str  # GET, POST, PUT
    path: str  # regular expression on the path (query string excluded)
    kind: str  # "500", "503", "403", "429", "drop", "drop_after"
    times: int = 1
    contains: Optional[bytes] = None  # only requests whose body holds these bytes
    injected: int = 0


def error_body(status: int) -> bytes:
    """BigQuery's error shape (google.api_core reads `error.errors[0].reason`)."""
    reason = "rateLimitExceeded" if status in (403, 429) else "backendError"
    message = "Exceeded rate limits: too many api requests" if status in (403, 429) else "Error"
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": "PERMISSION_DENIED" if status == 403 else "UNAVAILABLE",
            }
        }
    ).encode()


@dataclass
class FaultProxy:
    upstream: str
    faults: List[Fault] = field(default_factory=list)
    log: List[Tuple[str, str, str]] = field(default_factory=list)  # method, path, what happened

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def injected(self) -> Dict[str, int]:
        with self._lock:
            counts: Dict[str, int] = {}
            for _, _, outcome in self.log:
                if not outcome.startswith("answered"):
                    counts[outcome] = counts.get(outcome, 0) + 1
            return counts

    def _match(self, method: str, path: str, body: bytes) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults:
                if fault.injected >= fault.times or fault.method != method:
                    continue
                if not re.match(fault.path, path):
                    continue
                if fault.contains is not None and fault.contains not in body:
                    continue
                fault.injected += 1
                return fault
        return None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        fault = self._match(handler.command, path, body)
        if fault is not None:
            with self._lock:
                self.log.append((handler.command, path, fault.kind))
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            return
        if fault is not None and fault.kind != "drop_after":
            status = int(fault.kind)
            self._reply(handler, status, {"Content-Type": "application/json"}, error_body(status))
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host",)}
        answer = self._session.request(
            handler.command, self.upstream + handler.path, data=body, headers=headers, timeout=120
        )
        if fault is not None:  # drop_after: the emulator acted, the client never hears of it
            handler.close_connection = True
            return
        with self._lock:
            self.log.append((handler.command, path, f"answered {answer.status_code}"))
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        self._reply(handler, answer.status_code, kept, answer.content)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: Dict[str, str], body: bytes
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
