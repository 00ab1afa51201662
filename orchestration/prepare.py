"""The one way to prepare a run: settings, dates, lookback, destination credentials, pre-flight.

The flows and the command line all call these functions, so a run is checked the same way
however it starts, and everything that can fail on bad input fails here, before a task writes.

A run makes one `auth.test`: the command line prepares the run before it starts the flow (bad
input must not start a flow run), and hands its checked access to the flow's own preparation in
the same process (`hand_over=True`), which then does not call Slack again. A served or a
worker's flow run prepares itself, with its one call.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from slack_source import SlackAccess, SlackAuthError, check_access, make_client, require_access
from slack_source.import_export import ExportLayout, direct_kinds, open_export
from slack_source.settings import PREFLIGHT_ATTEMPTS, check_lookback

from .run_settings import (
    DateLike,
    RunSettings,
    load_run_settings,
    source_settings,
    validate_dates,
    validate_destination_credentials,
    validate_token,
)
from .workspaces import (
    configured_workspaces,
    for_workspace,
    run_options,
    token_setting,
    workspace_connection,
)
from .workspaces.org import with_org_workspaces


@dataclass(frozen=True)
class PreparedRun:
    """What a daily run reads and where it loads, checked; safe to log (holds no token)."""

    settings: RunSettings
    channels: Optional[List[str]]
    conversation_types: Tuple[str, ...]  # the kinds of conversation it reads
    lookback_days: Optional[float]
    start: Optional[datetime]
    end: Optional[datetime]
    access: SlackAccess


# Access checked by the command line for the flow run it starts next in this process.
_handed_over: Dict[Tuple[Any, ...], SlackAccess] = {}


def check_dates(
    start_date: DateLike, end_date: DateLike, lookback_days: Optional[float] = None
) -> Tuple[Optional[datetime], Optional[datetime]]:
    """The inputs that need no settings: dates in order and a lookback that skips nothing."""
    start, end = validate_dates(start_date, end_date)
    check_lookback(lookback_days)
    return start, end


def prepare_run(
    workspace: Optional[str] = None,
    channels: Optional[List[str]] = None,
    start_date: DateLike = None,
    end_date: DateLike = None,
    include_private: bool = False,
    lookback_days: Optional[float] = None,
    hand_over: bool = False,
) -> PreparedRun:
    """Check everything a daily run of `workspace` (None: the single workspace) depends on.

    Raises `SlackConfigError` for bad settings or input, `SlackAuthError`/`SlackScopeError` for
    a bad, revoked or under-scoped token, and a transient error when Slack is unreachable."""
    settings = for_workspace(load_run_settings(), workspace)
    if workspace is None:
        validate_token()  # a workspace's token is checked by workspace_connection
    channels, types, lookback_days = run_options(settings, channels, include_private, lookback_days)
    start, end = check_dates(start_date, end_date, lookback_days)
    validate_destination_credentials(settings)
    key = (settings.pipeline_name, types)
    access = _handed_over.pop(key, None) or preflight(settings, types)
    if hand_over:
        _handed_over[key] = access
    return PreparedRun(settings, channels, types, lookback_days, start, end, access)


def preflight(settings: RunSettings, types: Tuple[str, ...]) -> SlackAccess:
    """`auth.test` plus the scope comparison: the token works and holds every scope the run
    needs. Raises `SlackAuthError` (its hint naming where the token is set) or
    `SlackScopeError`. Few attempts: one cheap call, and Slack being down shows in seconds."""
    client = make_client(max_attempts=PREFLIGHT_ATTEMPTS, **workspace_connection(settings))
    source = source_settings()
    try:
        return require_access(
            check_access(client, types, source.join_public_channels, source.user_groups)
        )
    except SlackAuthError as error:
        where = token_setting(settings)
        if where is None:
            raise
        raise error.naming(where) from None


def prepare_import(path: "str | Path") -> Tuple[RunSettings, ExportLayout]:
    """Check an export import: the destination, and the ZIP's layout (nothing is read from a
    message yet; a malformed day file is found while loading, before the destination is
    written). No Slack token is needed."""
    settings = load_run_settings()
    validate_destination_credentials(settings)
    return settings, open_export(path, direct_kinds(source_settings().conversation_types))


def prepare_fan_out(
    workspaces: Optional[List[str]],
    start_date: DateLike,
    end_date: DateLike,
    lookback_days: Optional[float],
) -> List[str]:
    """Check a fan-out over several workspaces: the names (with `[slack_pipeline.org]`, the
    workspaces of the org-wide install too: `workspaces/org.py`), and the inputs every child
    shares (each child prepares its own workspace's run)."""
    check_dates(start_date, end_date, lookback_days)
    settings, _ = with_org_workspaces(load_run_settings())
    return configured_workspaces(settings, workspaces)
