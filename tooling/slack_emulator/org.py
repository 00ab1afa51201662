"""An Enterprise Grid org-wide install: one org-level token, several workspaces behind it.

Slack answers an org-level token's ``auth.test`` for the org (``is_enterprise_install: true``,
``enterprise_id``) and lists the workspaces the app is installed in with ``auth.teams.list``
(cursor-paged, Tier 2, no scope). Methods that list a workspace's objects (``users.list``,
``conversations.list``, ``usergroups.list``) need ``team_id`` to pick one; calls that name a
channel or a user reach the workspace that holds it (ids are unique across an org).

Each workspace keeps its own rate limiter and request counters (``/_emulator/teams/<id>/``),
as one workspace reached by its own token does; the org's methods have a limiter of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import EmulatorConfig
from .methods import SlackApi
from .pagination import LimitRule, SlackError, decode_cursor, encode_cursor, parse_limit
from .rate_limits import RateLimiter
from .stats import RequestStats
from .tenants import Tenant
from .workspace import Workspace

ORG_METHODS = frozenset({"auth.test", "auth.teams.list"})
# Need `team_id` with an org-level token: they list one workspace's objects.
TEAM_SCOPED = frozenset({"users.list", "conversations.list", "usergroups.list"})
TEAMS_LIMIT = LimitRule(default=100, maximum=1000)
DEFAULT_ENTERPRISE_ID = "E0EMULATORG"


@dataclass(frozen=True)
class Org:
    """What an org serves: its workspaces, in the order ``auth.teams.list`` lists them.
    ``installed``: the team ids the app is approved in (default: every workspace); the others
    are ``team_access_not_granted`` and not listed."""

    workspaces: Sequence[Workspace]
    enterprise_id: str = DEFAULT_ENTERPRISE_ID
    name: str = "Emulator Org"
    installed: Sequence[str] | None = None

    def __post_init__(self) -> None:
        ids = [ws.team.id for ws in self.workspaces]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError("an org needs workspaces of different seeds (team ids collide)")

    def installed_workspaces(self) -> list[Workspace]:
        wanted = None if self.installed is None else set(self.installed)
        return [ws for ws in self.workspaces if wanted is None or ws.team.id in wanted]


@dataclass
class OrgTenant:
    """The org-level token's view: the org's own methods, and one ``Tenant`` per workspace.

    ``stats`` counts every request of the token (org methods and every workspace's); each
    workspace's ``Tenant`` counts its own."""

    org: Org
    config: EmulatorConfig
    teams: dict[str, Tenant] = field(init=False)
    limiter: RateLimiter = field(init=False)
    stats: RequestStats = field(default_factory=RequestStats)

    def __post_init__(self) -> None:
        self.teams = {
            ws.team.id: Tenant(
                workspace=ws,
                api=SlackApi(ws, self.config, org_level=True),
                limiter=RateLimiter(self.config.rate_limits, self.config.time_scale),
            )
            for ws in self.org.installed_workspaces()
        }
        self.limiter = RateLimiter(self.config.rate_limits, self.config.time_scale)
        self.workspace = self.org.workspaces[0]  # what a server-wide control endpoint shows
        self.api = self  # ``call`` answers the org's methods; ``handlers`` names every method
        self.handlers = {
            **SlackApi(self.workspace, self.config).handlers,
            **{m: None for m in ORG_METHODS},
        }

    def for_request(self, method: str, args: dict[str, str]) -> Tenant | OrgTenant:
        """Who answers ``method``: the org itself, the workspace ``team_id`` names, or the one
        holding the ``channel``/``user`` asked for. A team-scoped method without ``team_id``
        is ``missing_argument``, an unknown ``team_id`` ``team_access_not_granted``."""
        if method in ORG_METHODS:
            return self  # counted by the app, as a workspace's request is
        self.stats.request(method)
        team_id = args.get("team_id", "")
        if team_id:
            tenant = self.teams.get(team_id)
            if tenant is None:
                raise SlackError("team_access_not_granted")
            return tenant
        if method in TEAM_SCOPED:
            raise SlackError("missing_argument")
        return self._holder(args)

    def _holder(self, args: dict[str, str]) -> Tenant:
        """The workspace holding the channel or user a call names (else the first one, which
        answers ``channel_not_found``/``user_not_found`` as Slack would)."""
        channel, user = args.get("channel", ""), args.get("user", "")
        for tenant in self.teams.values():
            ws = tenant.workspace
            if channel and ws.find_channel(channel) is not None:
                return tenant
            if user and any(u["id"] == user for u in ws.user_objects()):
                return tenant
        if not self.teams:
            raise SlackError("team_access_not_granted")
        return next(iter(self.teams.values()))

    def call(self, method: str, args: dict[str, str], dry_run: bool = False) -> dict:
        """``auth.test`` (the org) or ``auth.teams.list`` (its workspaces, paged)."""
        if method == "auth.test":
            return self.auth_test()
        return self.teams_list(args)

    def auth_test(self) -> dict:
        first = self.workspace.team
        return {
            "ok": True,
            "url": f"https://{self.org.name.lower().replace(' ', '-')}.enterprise.slack.com/",
            "team": self.org.name,
            "user": "emulator-bot",
            "team_id": self.org.enterprise_id,
            "user_id": first.bot_user_id,
            "bot_id": first.bot_id,
            "enterprise_id": self.org.enterprise_id,
            "is_enterprise_install": True,
        }

    def teams_list(self, args: dict[str, str]) -> dict:
        limit = parse_limit(args.get("limit"), TEAMS_LIMIT, self.config.strict_limit)
        listed = self.org.installed_workspaces()
        ids = [ws.team.id for ws in listed]
        after = decode_cursor(args.get("cursor"), "team")
        if after is not None and after not in ids:
            raise SlackError("invalid_cursor")
        start = ids.index(after) if after is not None else 0
        end = min(len(ids), start + limit)
        icon = args.get("include_icon", "") in ("1", "true", "True", "TRUE")
        teams = [_team(ws, icon) for ws in listed[start:end]]
        payload: dict = {"ok": True, "teams": teams}
        # Slack sends an empty next_cursor on the last page of auth.teams.list
        payload["response_metadata"] = {
            "next_cursor": encode_cursor("team", ids[end]) if end < len(ids) else ""
        }
        return payload


def _team(ws: Workspace, icon: bool) -> dict:
    team = {"id": ws.team.id, "name": ws.team.name}
    if icon:
        team["icon"] = {"image_default": True, "image_34": "", "image_44": "", "image_68": ""}
    return team


def org_of(seeds: Sequence[int], spec: dict | None = None, **org: Any) -> Org:
    """An org of generated workspaces, one per seed, all of ``spec``'s shape."""
    from .config import WorkspaceSpec

    return Org([Workspace(WorkspaceSpec(**{**(spec or {}), "seed": s})) for s in seeds], **org)
