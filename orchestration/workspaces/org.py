"""Enterprise Grid org-wide installs: one token for the whole org, its workspaces discovered.

```toml
[slack_pipeline.org]                # .dlt/secrets.toml (SLACK_PIPELINE__ORG__ACCESS_TOKEN)
access_token = "xoxb-..."
# team_ids = ["T0ABC123"]           # optional allow-list (config.toml)
# dataset_prefix = "slack_org"      # optional: datasets slack_org_t0abc123 (default: dataset_name)
# api_base_url = "..."              # optional: default sources.slack.api_base_url
```

An app installed for a whole org has one token; `auth.test` says `is_enterprise_install: true`
and `auth.teams.list` names the workspaces it is installed in. The parent flow loads each as a
workspace named after its team id (`T0ABC123` -> `t0abc123`): its own dlt pipeline, dataset,
DuckDB file and concurrency slot, the same names whatever order Slack lists them in. A child run
gets that name only; it resolves the org token itself (`org_workspace`, from
`load_workspace`), and sends the team id on the team-scoped methods.
"""

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from slack_source import SlackAuthError, SlackConfigError, make_client
from slack_source.settings import PREFLIGHT_ATTEMPTS

from ..run_settings import RunSettings

if TYPE_CHECKING:
    from . import WorkspaceConfig

TOKEN_KEY = "slack_pipeline.org.access_token"
TOKEN_ENV = "SLACK_PIPELINE__ORG__ACCESS_TOKEN"
# A discovered workspace's name: `t` + its team id lowercased (Slack's ids: T + capitals/digits).
_ORG_NAME = re.compile(r"^t[0-9a-z]{1,39}$")


@configspec
class OrgConfig(BaseConfiguration):
    """`[slack_pipeline.org]`: the org-wide install's token and what to load of it."""

    access_token: Optional[TSecretStrValue] = None
    api_base_url: Optional[str] = None  # default: sources.slack.api_base_url
    team_ids: Optional[List[str]] = None  # default: every workspace auth.teams.list names
    dataset_prefix: Optional[str] = None  # default: slack_pipeline.dataset_name


@dataclass(frozen=True)
class OrgTeam:
    """One workspace of the org, as `auth.teams.list` names it (safe to log)."""

    team_id: str
    name: str

    @property
    def workspace(self) -> str:
        return workspace_name(self.team_id)


@dataclass(frozen=True)
class OrgInstall:
    """What discovery found: the org and the workspaces a fan-out loads, by team id."""

    enterprise_id: str
    org_name: str
    teams: List[OrgTeam]
    scopes: Optional[frozenset] = None  # None: Slack's x-oauth-scopes header did not arrive


def load_org() -> OrgConfig:
    return resolve_configuration(OrgConfig(), sections=("slack_pipeline", "org"))


def workspace_name(team_id: str) -> str:
    """`T0ABC123` -> `t0abc123`: stable, and a valid workspace name (see `_NAME`)."""
    name = team_id.strip().lower()
    if not team_id.startswith("T") or not _ORG_NAME.match(name):
        raise SlackConfigError(f"Unexpected Slack team id {team_id!r} from auth.teams.list")
    return name


def team_of(name: str) -> str:
    """The team id of a discovered workspace's name (`t0abc123` -> `T0ABC123`)."""
    return name.upper()


def org_workspace(name: str, workspace: "WorkspaceConfig") -> "WorkspaceConfig":
    """`workspace` (a `WorkspaceConfig`) completed from `[slack_pipeline.org]` when `name` is
    a discovered workspace: no token of its own, an org token configured. Other keys of
    `[slack_pipeline.workspaces.<name>]` (channels, duckdb_file, ...) still apply."""
    if workspace.access_token or not _ORG_NAME.match(name):
        return workspace
    org = load_org()
    if not org.access_token:
        return workspace
    mine = copy.copy(workspace)
    mine.access_token = org.access_token
    mine.team_id = team_of(name)
    mine.api_base_url = workspace.api_base_url or org.api_base_url
    if org.dataset_prefix and not workspace.dataset:
        mine.dataset = f"{org.dataset_prefix}_{name}"
    return mine


def is_org_workspace(name: str) -> bool:
    """Whether `name`'s token is the org's (for error hints naming the right setting)."""
    from . import load_workspace

    workspace = load_workspace(name)
    org = load_org()
    return bool(org.access_token) and workspace.access_token == org.access_token


def discover(org: OrgConfig) -> OrgInstall:
    """`auth.test` (an org-wide install, else one line) and `auth.teams.list` (every page):
    the workspaces to load, sorted by team id, narrowed to `team_ids`. Bad input raises
    `SlackConfigError`/`SlackAuthError`, never echoing the token."""
    from . import checked_token

    token = checked_token(org.access_token, "the org", TOKEN_ENV)
    where = {"api_base_url": org.api_base_url} if org.api_base_url else {}
    client = make_client(token, max_attempts=PREFLIGHT_ATTEMPTS, **where)
    try:
        auth: Dict[str, Any] = client.call("auth.test")
        if not auth.get("is_enterprise_install"):
            raise SlackConfigError(
                f"{TOKEN_KEY} is not an org-wide install (auth.test: workspace"
                f" {auth.get('team')} ({auth.get('team_id')}), is_enterprise_install false):"
                " configure it as [slack_pipeline.workspaces.<name>] instead"
            )
        listed = [team for page in client.pages("auth.teams.list") for team in page]
    except SlackAuthError as error:
        raise error.naming(TOKEN_ENV) from None
    enterprise = str(auth.get("enterprise_id") or auth.get("team_id") or "")
    found = {str(t["id"]): OrgTeam(str(t["id"]), str(t.get("name") or "")) for t in listed}
    if not found:
        raise SlackConfigError(
            f"auth.teams.list named no workspace for the org {enterprise}: the app is not"
            " installed in any of its workspaces yet (an org admin adds it per workspace)"
        )
    allowed = [t.strip() for t in org.team_ids or [] if t.strip()]
    unknown = sorted(set(allowed) - set(found))
    if unknown:
        raise SlackConfigError(
            f"slack_pipeline.org.team_ids not installed in the org {enterprise}:"
            f" {', '.join(unknown)}; installed: {', '.join(sorted(found))}"
        )
    teams = [found[t] for t in sorted(found) if not allowed or t in allowed]
    return OrgInstall(enterprise, str(auth.get("team") or ""), teams, client.granted_scopes)


def describe(install: OrgInstall) -> str:
    """One log line: the org and each workspace with its name."""
    return f"Slack org {install.org_name} ({install.enterprise_id}): " + ", ".join(
        f"{t.workspace} ({t.team_id} {t.name})" for t in install.teams
    )


def with_org_workspaces(settings: RunSettings) -> "tuple[RunSettings, Optional[OrgInstall]]":
    """`settings` whose `workspace_names` also hold the org's discovered workspaces (after the
    configured ones), and what was found; unchanged without `[slack_pipeline.org]`."""
    org = load_org()
    if not org.access_token:
        return settings, None
    install = discover(org)
    _log_in_run(describe(install))
    mine = copy.copy(settings)
    names = list(settings.workspace_names or []) + [t.workspace for t in install.teams]
    mine.workspace_names = list(dict.fromkeys(names))
    return mine, install


def _log_in_run(line: str) -> None:
    """Into the flow run's log when there is one (the parent's); outside, the caller tells."""
    try:
        get_run_logger().info(line)
    except MissingContextError:
        pass


def check_lines(needed: Dict[str, str]) -> "tuple[List[str], bool]":
    """`check`'s lines for `[slack_pipeline.org]` (none without it): the org, the workspaces
    a fan-out loads (name, team id, Slack's name) and the scopes in `needed` it lacks; and
    whether its runs could succeed."""
    org = load_org()
    if not org.access_token:
        return [], True
    install = discover(org)
    lines = [
        f"Org:           {install.org_name} ({install.enterprise_id}), org-wide install,"
        f" {len(install.teams)} workspace(s) via auth.teams.list"
    ]
    lines += [f"  {t.workspace:<12} {t.team_id} {t.name}" for t in install.teams]
    missing = [s for s in needed if install.scopes is not None and s not in install.scopes]
    if install.scopes is None:
        lines.append("  scopes:      unknown (Slack's x-oauth-scopes header did not arrive)")
    else:
        named = ", ".join(f"{scope} ({needed[scope]})" for scope in missing)
        lines.append(f"  missing:     {named or 'none'}")
    lines.append("Org ready to run." if not missing else "Org not ready: add the missing scopes.")
    return lines, not missing
