"""Several workspaces on one emulator: each token names its workspace (a tenant).

Slack's rate limits are per app and per workspace, so each tenant has its own limiter; its
request counters sit beside the server-wide ones. One workspace with ``EmulatorConfig.tokens``
(the emulator's original shape) is one tenant that every configured token reaches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import EmulatorConfig
from .methods import SlackApi
from .pagination import SlackError
from .rate_limits import RateLimiter
from .stats import RequestStats
from .workspace import Workspace

if TYPE_CHECKING:
    from .org import Org, OrgTenant


@dataclass
class Tenant:
    """One emulated workspace as one token sees it."""

    workspace: Workspace
    api: SlackApi
    limiter: RateLimiter
    stats: RequestStats = field(default_factory=RequestStats)

    def for_request(self, method: str, args: dict[str, str]) -> Tenant:
        """Who answers: this workspace (an org-level token picks one: ``org.OrgTenant``)."""
        if method == "auth.teams.list":  # org-wide installs only (unspecified otherwise)
            raise SlackError("not_allowed_token_type")
        return self


def make_tenants(
    workspaces: Workspace | Mapping[str, Workspace | Org], config: EmulatorConfig
) -> dict[str, Tenant | OrgTenant]:
    """Token -> tenant. A single ``Workspace`` answers every token of ``config.tokens``; a
    mapping answers each of its tokens with that token's workspace (``config.tokens`` unused),
    or with an ``org.Org`` (an org-wide install: several workspaces behind one token).
    Tokens in ``config.org_tokens`` act as Enterprise Grid org-level tokens of one workspace."""
    from .org import Org, OrgTenant

    if isinstance(workspaces, Workspace):
        by_token: Mapping[str, Workspace | Org] = {token: workspaces for token in config.tokens}
    else:
        by_token = workspaces
    tenants: dict[str, Tenant | OrgTenant] = {}
    by_workspace: dict[tuple[int, bool], Tenant] = {}
    for token, workspace in by_token.items():
        if isinstance(workspace, Org):
            tenants[token] = OrgTenant(workspace, config)
            continue
        org_level = token in config.org_tokens
        key = (id(workspace), org_level)
        if key not in by_workspace:
            by_workspace[key] = Tenant(
                workspace=workspace,
                api=SlackApi(workspace, config, org_level=org_level),
                limiter=RateLimiter(config.rate_limits, config.time_scale),
            )
        tenants[token] = by_workspace[key]
    return tenants


def each_tenant(tenants: Mapping[str, Any]) -> Iterator[Any]:
    """Every tenant once: each token's, and each workspace of an org-wide install."""
    seen: set[int] = set()
    for tenant in tenants.values():
        for one in (tenant, *getattr(tenant, "teams", {}).values()):
            if id(one) not in seen:
                seen.add(id(one))
                yield one


class AllLimiters:
    """``reset()`` of every tenant's limiter, for the server-wide control endpoint."""

    def __init__(self, tenants: Mapping[str, Any]) -> None:
        self._limiters = {id(t.limiter): t.limiter for t in each_tenant(tenants)}.values()

    def reset(self) -> None:
        for limiter in self._limiters:
            limiter.reset()
