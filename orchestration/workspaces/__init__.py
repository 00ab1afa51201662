"""Several Slack workspaces in configuration: each its own token, dataset or DuckDB file, and
dlt pipeline, so their state never mixes.

```toml
[slack_pipeline]
workspace_names = ["acme", "globex"]      # SLACK_PIPELINE__WORKSPACE_NAMES='["acme","globex"]'

[slack_pipeline.workspaces.acme]          # .dlt/secrets.toml for the token
access_token = "xoxb-..."                 # SLACK_PIPELINE__WORKSPACES__ACME__ACCESS_TOKEN
dataset = "slack_acme"                    # default: <dataset_name>_acme
```

No workspace (`workspace=None`) is today's single-workspace run: `sources.slack.*` as before.

The token stays inside the run that needs it: flow runs get the workspace's name as their
parameter, and each task resolves the token itself (`workspace_connection`); nothing that Prefect
records (parameters, task inputs, artifacts) or logs carries it.
"""

import copy
import re
from typing import Any, Dict, List, Optional, Tuple

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from slack_source import SlackConfigError, check_token, resolve_conversation_types

from ..loading import duckdb_file
from ..run_settings import RunSettings, source_settings

# A name becomes part of a dlt pipeline name, a dataset, an env variable and a Prefect limit.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@configspec
class WorkspaceConfig(BaseConfiguration):
    """`[slack_pipeline.workspaces.<name>]`: one workspace of several.

    Field names differ from `[slack_pipeline]`'s on purpose: dlt falls back from a section to
    its parents, so a `dataset_name` here would silently take `slack_pipeline.dataset_name`
    (the same dataset for every workspace) when unset."""

    access_token: Optional[TSecretStrValue] = None  # checked by the run that uses it
    # Token rotation (orchestration/token_store.py): on when a refresh token is set; the
    # client id and secret default to sources.slack.* (one app, several installations)
    refresh_token: Optional[TSecretStrValue] = None
    client_id: Optional[TSecretStrValue] = None
    client_secret: Optional[TSecretStrValue] = None
    api_base_url: Optional[str] = None  # default: sources.slack.api_base_url
    team_id: Optional[str] = None  # Enterprise Grid: the workspace of an org-level token
    dataset: Optional[str] = None  # default: <slack_pipeline.dataset_name>_<name>
    duckdb_file: Optional[str] = None  # default: <slack_pipeline.pipeline_name>_<name>.duckdb
    channels: Optional[List[str]] = None  # default: every visible channel
    include_private: Optional[bool] = None
    conversation_types: Optional[List[str]] = None  # default: sources.slack.conversation_types
    lookback_days: Optional[float] = None  # default: sources.slack.lookback_days


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise SlackConfigError(
            f"Bad workspace name {name!r}: use lowercase letters, digits and '_', starting with"
            " a letter (it names the dlt pipeline, the dataset and the env variables)"
        )
    return name


def load_workspace(name: str) -> WorkspaceConfig:
    """Resolve `[slack_pipeline.workspaces.<name>]` (env SLACK_PIPELINE__WORKSPACES__<NAME>__*);
    a workspace of an org-wide install takes the org's token and its team id (`org.py`)."""
    from .org import org_workspace

    workspace = resolve_configuration(
        WorkspaceConfig(), sections=("slack_pipeline", "workspaces", check_name(name))
    )
    return org_workspace(name, workspace)


def for_workspace(settings: RunSettings, name: Optional[str]) -> RunSettings:
    """The run settings of workspace `name`: its own pipeline (dlt state and working folder),
    dataset and, on DuckDB, file. `None`: `settings` unchanged (the single workspace)."""
    if name is None:
        settings.workspace = None  # only the flow parameter picks a workspace, never config
        return settings
    workspace = load_workspace(name)
    mine = copy.copy(settings)
    mine.workspace = name
    mine.pipeline_name = f"{settings.pipeline_name}_{name}"
    mine.dataset_name = workspace.dataset or f"{settings.dataset_name}_{name}"
    mine.duckdb_file = workspace.duckdb_file or f"{mine.pipeline_name}.duckdb"
    return mine


def token_env(workspace: str) -> str:
    """The environment variable of a workspace's token (`slack_pipeline.workspaces.<name>`,
    or `slack_pipeline.org` for a workspace of an org-wide install)."""
    from .org import TOKEN_ENV, is_org_workspace

    if is_org_workspace(workspace):
        return TOKEN_ENV
    return f"SLACK_PIPELINE__WORKSPACES__{workspace.upper()}__ACCESS_TOKEN"


def token_setting(settings: RunSettings) -> Optional[str]:
    """Where this run's token comes from, for error hints; None: the source's own setting."""
    return token_env(settings.workspace) if settings.workspace else None


def workspace_connection(settings: RunSettings) -> Dict[str, Any]:
    """Keyword arguments for `make_client` / `slack_source`: the workspace's token, API and
    team; empty for the single workspace (dlt injects `sources.slack.*`). Raises one line when
    the token is missing or malformed, never echoing it. With token rotation: the current
    access token and the rotation (`token_store.rotating_connection`)."""
    from ..token_store import rotating_connection  # it imports this package

    if settings.workspace is None:
        return rotating_connection(settings, source_settings().api_base_url)
    workspace = load_workspace(settings.workspace)
    rotating = rotating_connection(
        settings, workspace.api_base_url or source_settings().api_base_url
    )
    if rotating:
        return {**_workspace_api(workspace), **rotating}
    env = token_env(settings.workspace)
    token = checked_token(workspace.access_token, f"workspace {settings.workspace}", env)
    return {"access_token": token, **_workspace_api(workspace)}


def _workspace_api(workspace: WorkspaceConfig) -> Dict[str, Any]:
    """A workspace's API and Enterprise Grid team, when set."""
    access: Dict[str, Any] = {}
    if workspace.api_base_url:
        access["api_base_url"] = workspace.api_base_url
    if workspace.team_id:
        access["team_id"] = workspace.team_id
    return access


def checked_token(token: Optional[str], whose: str, env: str) -> str:
    """`token`, checked (`check_token`); else one line naming where to set it, never echoing
    it (`env`'s config key and the variable itself)."""
    key = ".".join(env.lower().split("__"))
    try:
        return check_token(token)
    except SlackConfigError as error:
        reason = "No Slack token" if not token else "Malformed Slack token"
        raise SlackConfigError(
            f"{reason} for {whose}: set {key} in .dlt/secrets.toml (or {env})"
        ) from error


def run_options(
    settings: RunSettings,
    channels: Optional[List[str]],
    include_private: bool,
    lookback_days: Optional[float],
) -> Tuple[Optional[List[str]], Tuple[str, ...], Optional[float]]:
    """What a run reads: the flow's parameters, else the workspace's configured defaults;
    the kinds of conversation resolved (`include_private` adds private channels)."""
    configured = source_settings().conversation_types
    if settings.workspace is None:
        return channels, resolve_conversation_types(configured, include_private), lookback_days
    workspace = load_workspace(settings.workspace)
    return (
        channels or workspace.channels,
        resolve_conversation_types(
            workspace.conversation_types or configured,
            include_private or bool(workspace.include_private),
        ),
        lookback_days if lookback_days is not None else workspace.lookback_days,
    )


def configured_workspaces(settings: RunSettings, wanted: Optional[List[str]]) -> List[str]:
    """The workspaces a fan-out loads: `wanted`, else `slack_pipeline.workspace_names`; each
    configured, and no two sharing a pipeline, dataset or DuckDB file (their state would mix)."""
    names = list(wanted or settings.workspace_names or [])
    if not names:
        raise SlackConfigError(
            'No workspaces: set slack_pipeline.workspace_names (e.g. ["acme", "globex"]) and'
            " [slack_pipeline.workspaces.<name>] for each"
        )
    unknown = sorted(set(names) - set(settings.workspace_names or names))
    if unknown:
        raise SlackConfigError(
            f"Unknown workspace(s): {', '.join(unknown)}; configured:"
            f" {', '.join(settings.workspace_names or [])}"
        )
    seen: Dict[str, str] = {}
    for name in dict.fromkeys(names):
        mine = for_workspace(settings, name)
        # DuckDB has one writer per file: two workspaces in one file could not load at once.
        where = mine.dataset_name if settings.destination == "bigquery" else duckdb_file(mine)
        for what in (f"pipeline {mine.pipeline_name}", f"destination {where}"):
            if what in seen:
                raise SlackConfigError(f"Workspaces {seen[what]} and {name} share the {what}")
            seen[what] = name
    return list(dict.fromkeys(names))
