"""Who is in what: `channel_members`, `user_groups` and `user_group_members`.

Unlike reactions and files these cost calls (`conversations.members` once per channel, paged;
`usergroups.list` once), so they are off by default (`sources.slack.channel_members`,
`sources.slack.user_groups`; daily cost in docs/daily-run.md).

Membership lists are replaced whole: `channel_members` is merged per `channel_id` and
`user_group_members` per `usergroup_id` with delete-insert, so a member who left is removed. A
channel or group read with no member at all becomes one `is_deleted` (`hard_delete`) marker row,
which deletes its old rows and is never inserted (as in `child_rows`).
"""

from typing import Any, Dict, Iterator, List

import dlt

from .client import SlackClient
from .errors import SlackChannelError

MEMBER_TABLES = ("channel_members", "user_groups", "user_group_members")
REPLACE_PER_KEY: Dict[str, Any] = {"disposition": "merge", "strategy": "delete-insert"}
MEMBER_COLUMNS: Dict[str, Any] = {
    "channel_id": {"data_type": "text", "nullable": False},
    "user_id": {"data_type": "text"},
    "is_deleted": {"data_type": "bool", "hard_delete": True},
}
GROUP_MEMBER_COLUMNS: Dict[str, Any] = {
    "usergroup_id": {"data_type": "text", "nullable": False},
    "user_id": {"data_type": "text"},
    "is_deleted": {"data_type": "bool", "hard_delete": True},
}
# `prefs` holds lists (default channels and groups): one JSON column, not two child tables.
GROUP_COLUMNS: Dict[str, Any] = {"prefs": {"data_type": "json"}}


def member_rows(key: str, value: str, user_ids: List[str]) -> List[Dict[str, Any]]:
    """One row per member, or the marker that empties the list."""
    if not user_ids:
        return [{key: value, "is_deleted": True}]
    return [{key: value, "user_id": user_id, "is_deleted": False} for user_id in user_ids]


def channel_members_resource(client: SlackClient, channels: Any, on_skip: Any) -> Any:
    """`channel_members` of each channel `channels()` returns; a channel Slack refuses
    (`channel_not_found`, ...) is reported by `on_skip(channel, error)` and keeps its rows."""

    @dlt.resource(
        name="channel_members",
        merge_key="channel_id",
        write_disposition=REPLACE_PER_KEY,
        columns=MEMBER_COLUMNS,
    )
    def channel_members() -> Iterator[List[Dict[str, Any]]]:
        for channel in channels():
            try:
                params = {"channel": channel["id"]}
                ids = [
                    uid for page in client.pages("conversations.members", params) for uid in page
                ]
            except SlackChannelError as error:
                on_skip(channel, error)
                continue
            yield member_rows("channel_id", channel["id"], ids)

    return channel_members


def user_group_resources(client: SlackClient) -> List[Any]:
    """`user_groups` (one row per group, disabled ones included: `date_delete` > 0) and
    `user_group_members`, both from one `usergroups.list` call."""

    @dlt.resource(name="usergroups_list", selected=False)
    def usergroups_list() -> Iterator[List[Dict[str, Any]]]:
        params = {"include_users": "true", "include_disabled": "true"}
        if client.team_id:
            params["team_id"] = client.team_id
        payload = client.call("usergroups.list", params)
        yield payload.get("usergroups") or []

    @dlt.transformer(
        name="user_groups",
        data_from=usergroups_list,
        primary_key="id",
        write_disposition="merge",
        columns=GROUP_COLUMNS,
    )
    def user_groups(groups: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return [{k: v for k, v in group.items() if k != "users"} for group in groups]

    @dlt.transformer(
        name="user_group_members",
        data_from=usergroups_list,
        merge_key="usergroup_id",
        write_disposition=REPLACE_PER_KEY,
        columns=GROUP_MEMBER_COLUMNS,
    )
    def user_group_members(groups: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = []
        for group in groups:
            rows.extend(member_rows("usergroup_id", group["id"], group.get("users") or []))
        return rows

    return [usergroups_list, user_groups, user_group_members]


def directory_resources(source: Any) -> List[str]:
    """The membership tables the source has (each off unless its setting is on)."""
    return [name for name in MEMBER_TABLES if name in source.resources]
