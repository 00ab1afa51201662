"""The two configuration objects: what the workspace contains and how the server behaves."""

from __future__ import annotations

from dataclasses import dataclass

from .faults import FaultSpec
from .rotation import RotationSpec

DEFAULT_TOKEN = "xoxb-emulator-token"
DEFAULT_SCOPES = (
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "users:read",
    "users:read.email",
    "channels:join",
)
RATE_LIMIT_PROFILES = ("off", "tiers", "non_marketplace")
# The last (or only) page's ``response_metadata``: none, ``{}`` or ``{"next_cursor": ""}``.
LAST_PAGE_METADATA = ("absent", "empty", "present")


@dataclass(frozen=True)
class WorkspaceSpec:
    """Shape of the generated workspace; the same spec (with a fixed ``now``) gives the same data.

    ``channels`` counts every channel: ``general`` + plain public ones + ``non_member_channels``
    (public, bot not a member) + ``archived_channels`` (public, archived, bot a member) +
    ``private_channels`` (bot a member); ``dms`` and ``group_dms`` come on top (messages are
    spread over them too). ``messages`` counts everything, thread replies included;
    ``threads`` is the number of thread parents (each has at least one reply). ``now=None``
    means ``time.time()`` when the workspace is generated.
    """

    seed: int = 7
    users: int = 12
    channels: int = 5
    private_channels: int = 1
    archived_channels: int = 1
    messages: int = 600
    threads: int = 40
    days: float = 30
    now: float | None = None
    non_member_channels: int = 1
    dms: int = 0  # the bot's 1:1 DMs (im), on top of ``channels``
    group_dms: int = 0  # group DMs with the bot (mpim), on top of ``channels``
    # Shape (defaults: the bundled workspace): the share of messages that are replies, the
    # Pareto tail of thread sizes (layout.Shape), and whether user messages carry the author's
    # ``user_profile`` (~230 bytes of each message's JSON).
    reply_share: float = 0.2
    thread_alpha: float = 1.1
    thread_cap: float = 200.0
    user_profiles: bool = True

    def __post_init__(self) -> None:
        special = 1 + self.private_channels + self.archived_channels + self.non_member_channels
        if min(self.private_channels, self.archived_channels, self.non_member_channels) < 0:
            raise ValueError("channel counts must be >= 0")
        if min(self.dms, self.group_dms) < 0:
            raise ValueError("channel counts must be >= 0")
        if self.channels < special:
            raise ValueError(
                f"channels={self.channels} < 1 (general) + private + archived + non_member "
                f"= {special}"
            )
        if self.users < 1:
            raise ValueError("users must be >= 1")
        if self.threads < 0 or self.messages < 0:
            raise ValueError("messages and threads must be >= 0")
        if self.messages < 2 * self.threads:
            raise ValueError("messages must be >= 2 * threads (a parent and a reply per thread)")
        if self.days <= 0:
            raise ValueError("days must be > 0")
        if not 0 <= self.reply_share < 1 or self.thread_alpha <= 0 or self.thread_cap < 1:
            raise ValueError("reply_share in [0, 1), thread_alpha > 0, thread_cap >= 1")


@dataclass(frozen=True)
class EmulatorConfig:
    """How the HTTP server behaves: auth, rate limits, paging quirks and faults.

    ``time_scale`` is real seconds per Slack second: it shrinks rate-limit windows and
    ``Retry-After``, which stays whole seconds as Slack's (the scaled wait rounded up, at least
    1: see ``rate_limits.format_retry_after``). ``short_page_probability`` makes
    pages short although more remain (seeded by ``short_page_seed``). ``strict_limit`` answers
    an over-maximum ``limit`` with ``invalid_limit`` instead of clamping it.
    ``revoked_tokens`` answer ``token_revoked`` (an uninstalled app). ``org_tokens`` act as
    Enterprise Grid org-level tokens: ``users.list`` and ``conversations.list`` need the
    workspace's ``team_id`` (``missing_argument`` without it). ``scope_header`` sends
    the granted scopes in ``x-oauth-scopes`` as Slack does; off, it behaves like a proxy that
    strips the header. ``rotation`` makes the app a rotating one (``rotation.RotationSpec``:
    expiring access tokens, ``oauth.v2.access`` refreshes). ``last_page_metadata`` is what the
    last (or only) page of a paged answer carries: Slack sends ``{"next_cursor": ""}`` in some
    answers and omits the key or sends ``{}`` in others (a new channel's history), so
    ``absent`` (the strictest: a client that reads ``response_metadata["next_cursor"]`` fails
    on it), ``empty`` or ``present``.
    """

    tokens: tuple[str, ...] = (DEFAULT_TOKEN,)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    revoked_tokens: tuple[str, ...] = ()
    org_tokens: tuple[str, ...] = ()
    scope_header: bool = True
    rate_limits: str = "off"
    time_scale: float = 1.0
    short_page_probability: float = 0.0
    replies_repeat_parent: bool = True
    last_page_metadata: str = "absent"
    strict_limit: bool = False
    faults: FaultSpec | None = None
    short_page_seed: int = 0
    rotation: RotationSpec | None = None

    def __post_init__(self) -> None:
        if self.rate_limits not in RATE_LIMIT_PROFILES:
            raise ValueError(f"rate_limits must be one of {RATE_LIMIT_PROFILES}")
        if self.last_page_metadata not in LAST_PAGE_METADATA:
            raise ValueError(f"last_page_metadata must be one of {LAST_PAGE_METADATA}")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if not 0.0 <= self.short_page_probability <= 1.0:
            raise ValueError("short_page_probability must be within [0, 1]")
