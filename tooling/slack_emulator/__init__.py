"""A local Slack Web API emulator: a deterministic generated workspace on a real HTTP port.

Used by the offline demo, the tests and the benchmarks.
See ``python -m tooling.slack_emulator serve``.

Behaviour where Slack is unspecified (see /work/shared/slack_api_facts.md):
- ``limit``: absent/0 -> default (users.list: everything; conversations.list, history,
  members: 100; replies: 1000; non_marketplace history/replies: 15); over the maximum
  (999 / 999 / 1000 / 1000 / 1000, users.list 1000) it is clamped, or ``invalid_limit`` with
  ``strict_limit``.
- conversations.history is always newest first from ``latest`` (also when only ``oldest`` is
  given); ``latest`` absent means no upper bound.
- conversations.replies pages count replies only: each page holds up to ``limit`` replies plus
  the parent (first page always, later pages iff ``replies_repeat_parent``, the default).
- The last (or only) page of a paged answer has no ``response_metadata`` by default
  (``last_page_metadata``: ``absent``, ``empty`` = ``{}``, ``present`` = ``{"next_cursor": ""}``).
- Rate limits: a strict sliding one-minute window per method (scaled by ``time_scale``), see
  ``rate_limits``; ``Retry-After`` is whole seconds of the scaled wait, rounded up, at least 1.
  Faults are drawn before authentication and never use the allowance.
- Tokens are accepted from ``Authorization: Bearer`` or a ``token`` field of a form or multipart
  body, never from the query string or a JSON body. Bodies: form-urlencoded, ``text/plain`` (read
  as a form), multipart/form-data, and JSON for every method; other types ``invalid_post_type``.
- A missing or empty required argument is ``invalid_arguments`` with
  ``response_metadata.messages`` (``["[ERROR] missing required field: channel"]``).
- The ``truncated`` fault declares the whole body's Content-Length, sends half and closes the
  connection: clients see an incomplete read, as after a dropped connection.
- Token rotation (``EmulatorConfig.rotation``, ``rotation.RotationSpec``): ``oauth.v2.access``
  answers a new pair for an unspent refresh token; an expired rotating token is
  ``token_expired``; lifetimes by time or by a number of calls.
- conversations.join adds no ``channel_join`` message; ground truth lists thread tombstones.
- Org-wide installs (``org.Org``): ``auth.test`` of the org token answers ``team_id`` = the
  enterprise id; ``auth.teams.list`` always sends ``next_cursor`` (empty on the last page) and
  answers a workspace token ``not_allowed_token_type``; a team-scoped method without
  ``team_id`` is ``missing_argument``; calls naming a channel or user need no ``team_id``.
"""

from .config import EmulatorConfig, WorkspaceSpec
from .faults import FaultSpec
from .rotation import RotationSpec
from .server import EmulatorServer, RemoteEmulator
from .workspace import Workspace

__all__ = [
    "EmulatorConfig",
    "EmulatorServer",
    "FaultSpec",
    "RemoteEmulator",
    "RotationSpec",
    "Workspace",
    "WorkspaceSpec",
]
