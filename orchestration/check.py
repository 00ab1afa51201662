"""`slack_pipeline_with_prefect.py check`: can a run succeed, and what would it read and write?

Airbyte's `check`, for this pipeline: the token's workspace and identity, the scopes granted and
missing, the channels visible and which of them a run reads, joins or skips, the rate-limit
profile and the destination. It loads nothing and writes nothing.
"""

import os
from typing import Any, Dict, List, Sequence

from slack_source import (
    SlackAccess,
    SlackClient,
    check_access,
    list_channels,
    make_client,
    needed_scopes,
    resolve_conversation_types,
)
from slack_source.access import OPTIONAL_SCOPES
from slack_source.channels import channel_action, name_of
from slack_source.settings import PREFLIGHT_ATTEMPTS, SLACK_METHODS

from .loading import duckdb_file
from .run_settings import (
    RunSettings,
    bigquery_credentials,
    bigquery_settings,
    source_settings,
)
from .workspaces import workspace_connection


def channel_plan(channels: List[Dict[str, Any]], join: bool) -> Dict[str, List[str]]:
    """Channel names by what a run does with them: read, join then read, or skip."""
    plan: Dict[str, List[str]] = {"read": [], "join": [], "skip": []}
    for channel in channels:
        plan[channel_action(channel, join)].append("#" + name_of(channel))
    return plan


def describe_kinds(types: Sequence[str], access: SlackAccess) -> str:
    """Which kinds of conversation a run reads, and which ones the token's scopes allow."""
    line = f"Conversations: reads {', '.join(types)}"
    readable = access.readable_kinds
    if readable is not None:
        line += f"; the token can read {', '.join(readable) or 'none'}"
    return line


def describe_destination(settings: RunSettings) -> str:
    if settings.destination == "bigquery":
        project = bigquery_credentials().project_id or (
            "from GOOGLE_APPLICATION_CREDENTIALS"
            if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            else "from Application Default Credentials"
        )
        location = bigquery_settings().location or "US"
        return f"bigquery: project {project}, dataset {settings.dataset_name}, {location}"
    return f"duckdb: {duckdb_file(settings)}, dataset {settings.dataset_name}"


CAPPED_PAGE = SLACK_METHODS["conversations.history"].non_marketplace_page_size or 15


def probe_caps(client: SlackClient, visible: List[Dict[str, Any]], join: bool, profile: str) -> str:
    """Under `tiers`, one `conversations.history` page of the first channel a run reads: the
    page shows whether Slack caps this app at non-Marketplace limits (slack_source/caps.py).
    Only a channel with more than 15 messages can tell; the 429 signal needs a run."""
    if profile != "tiers" or client.caps is None:
        return ""
    readable = [c for c in visible if channel_action(c, join) == "read"]
    if not readable:
        return " (caps not probed: no channel to read)"
    channel = readable[0]
    page = next(client.pages("conversations.history", {"channel": channel["id"]}), [])
    if client.caps.signal:
        return (
            f"; detected non_marketplace ({client.caps.signal}): runs switch to 1 history/"
            'replies call a minute; set rate_limit_profile = "non_marketplace"'
        )
    if len(page) > CAPPED_PAGE:
        return f" (not capped: a history page of #{name_of(channel)} held {len(page)} messages)"
    return f" (caps unknown: #{name_of(channel)} has too few messages to fill a capped page)"


def check_report(settings: RunSettings, include_private: bool) -> "tuple[List[str], bool]":
    """The report's lines and whether a run could succeed (auth errors raise)."""
    join = source_settings().join_public_channels
    types = resolve_conversation_types(source_settings().conversation_types, include_private)
    # the rotating token's current one when token rotation is on (else {}: sources.slack.*)
    client = make_client(max_attempts=PREFLIGHT_ATTEMPTS, **workspace_connection(settings))
    access: SlackAccess = check_access(client, types, join)
    needed = needed_scopes(types, join)
    lines = [
        f"Workspace:     {access.team} ({access.team_id}) {access.url}",
        f"Identity:      {access.user} ({access.user_id})"
        + (f", bot {access.bot_id}" if access.bot_id else ""),
    ]
    if access.scopes is None:
        lines.append("Scopes:        unknown (Slack's x-oauth-scopes header did not arrive)")
    else:
        lines.append(f"Scopes:        {', '.join(sorted(access.scopes)) or 'none'}")
        lines.append(
            "Missing:       " + (", ".join(f"{s} ({needed[s]})" for s in access.missing) or "none")
        )
        if access.missing_optional:
            optional = ", ".join(f"{s} ({OPTIONAL_SCOPES[s]})" for s in access.missing_optional)
            lines.append(f"Optional:      {optional}")
    lines.append(describe_kinds(types, access))
    visible: List[Dict[str, Any]] = []
    if not access.missing:
        visible = list_channels(client, types)
        plan = channel_plan(visible, join)
        lines.append(f"Channels:      {len(visible)} visible")
        lines.append(f"  reads:       {', '.join(plan['read']) or 'none'}")
        if plan["join"]:
            lines.append(f"  joins:       {', '.join(plan['join'])}")
        lines.append(
            f"  skips:       {', '.join(plan['skip']) or 'none'}"
            + ("" if join or not plan["skip"] else " (not a member; set join_public_channels)")
        )
    profile = source_settings().rate_limit_profile or "tiers"
    lines.append(f"Rate limits:   {profile}" + probe_caps(client, visible, join, profile))
    lines.append(f"Destination:   {describe_destination(settings)}")
    lines.append("Ready to run." if not access.missing else "Not ready: add the missing scopes.")
    return lines, not access.missing


def org_check(include_private: bool) -> "tuple[List[str], bool]":
    """`[slack_pipeline.org]`'s lines (none without it): its workspaces and missing scopes."""
    from .workspaces.org import check_lines

    source = source_settings()
    types = resolve_conversation_types(source.conversation_types, include_private)
    return check_lines(needed_scopes(types, source.join_public_channels))
