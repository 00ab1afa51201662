"""Several workspaces on one emulator: each token names its workspace (a tenant).

Slack's rate limits are per app and per workspace, so each tenant has its own limiter; its
request counters sit beside the server-wide ones. One workspace with ``EmulatorConfig.tokens``
(the emulator's original shape) is one tenant that every configured token reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import EmulatorConfig
from .methods import SlackApi
from .rate_limits import RateLimiter
from .stats import RequestStats
from .workspace import Workspace


@dataclass
class Tenant:
    """One emulated workspace as one token sees it."""

    workspace: Workspace
    api: SlackApi
    limiter: RateLimiter
    stats: RequestStats = field(default_factory=RequestStats)


def make_tenants(
    workspaces: Workspace | Mapping[str, Workspace], config: EmulatorConfig
) -> dict[str, Tenant]:
    """Token -> tenant. A single ``Workspace`` answers every token of ``config.tokens``; a
    mapping answers each of its tokens with that token's workspace (``config.tokens`` unused).
    Tokens in ``config.org_tokens`` act as Enterprise Grid org-level tokens."""
    if isinstance(workspaces, Workspace):
        by_token: Mapping[str, Workspace] = {token: workspaces for token in config.tokens}
    else:
        by_token = workspaces
    tenants: dict[str, Tenant] = {}
    by_workspace: dict[tuple[int, bool], Tenant] = {}
    for token, workspace in by_token.items():
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


class AllLimiters:
    """``reset()`` of every tenant's limiter, for the server-wide control endpoint."""

    def __init__(self, tenants: Mapping[str, Tenant]) -> None:
        self._limiters = {id(t.limiter): t.limiter for t in tenants.values()}.values()

    def reset(self) -> None:
        for limiter in self._limiters:
            limiter.reset()
