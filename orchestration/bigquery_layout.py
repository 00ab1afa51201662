"""BigQuery table layout for the Slack source: partitioning and clustering hints.

`messages` is partitioned by day on `posted_at` (queries filtered by date scan only the days
they need) and clustered by `channel_id`; so are `reactions` and `files`, which carry their
message's `posted_at` and are merged per (`channel_id`, `ts`): the merge's delete reads the
clustered column. `users`, `channels` and `user_groups` are clustered by `id`, the merge key;
`channel_members` and `user_group_members`, replaced per channel or group, by that key (small
tables, never partitioned: membership has no date). The hints only
matter when the table is created: BigQuery cannot re-partition an existing table, so a dataset
loaded before this layout keeps its old layout until the tables are dropped and reloaded
(`--refresh drop_sources` or `pipeline.run(..., refresh=...)`).
Other destinations ignore the `x-bigquery-*` hints.

BigQuery also cannot load JSON columns from parquet, which is what dlt writes for the Arrow
pages of `messages`: on BigQuery those pages are handed to dlt as rows (JSON lines) instead,
with their JSON columns as objects again. Slack's rate limits bound a BigQuery load anyway.
"""

from typing import Any, Dict, List

import orjson
import pyarrow as pa
from dlt.destinations.adapters import bigquery_adapter
from dlt.extract.source import DltSource

from slack_source.child_rows import CHILD_TABLES
from slack_source.settings import MESSAGE_JSON_COLUMNS

MESSAGES_PARTITION_COLUMN = "posted_at"
MESSAGES_CLUSTER_COLUMNS = ["channel_id"]
ID_CLUSTERED_TABLES = ("users", "channels", "user_groups")
# membership tables -> the key each is replaced by (slack_source.members)
MEMBER_CLUSTER_COLUMNS = {"channel_members": "channel_id", "user_group_members": "usergroup_id"}


def apply_bigquery_layout(source: DltSource) -> DltSource:
    """Add BigQuery partition/cluster hints to the source's resources, in place; returns it."""
    resources = source.resources
    if "messages" in resources:
        resources["messages"].add_map(arrow_page_as_rows)
        bigquery_adapter(
            resources["messages"],
            partition=MESSAGES_PARTITION_COLUMN,
            cluster=list(MESSAGES_CLUSTER_COLUMNS),
        )
    for name in CHILD_TABLES:  # Arrow pages too: rows, like messages', for the same loader
        if name in resources:
            resources[name].add_map(arrow_page_as_rows)
            bigquery_adapter(
                resources[name],
                partition=MESSAGES_PARTITION_COLUMN,
                cluster=list(MESSAGES_CLUSTER_COLUMNS),
            )
    for name in ID_CLUSTERED_TABLES:
        if name in resources:
            bigquery_adapter(resources[name], cluster=["id"])
    for name, key in MEMBER_CLUSTER_COLUMNS.items():
        if name in resources:
            bigquery_adapter(resources[name], cluster=[key])
    return source


def arrow_page_as_rows(page: Any) -> Any:
    """An Arrow page as row dicts, JSON text columns parsed back into objects."""
    if not isinstance(page, pa.Table):
        return page
    json_columns = [name for name in MESSAGE_JSON_COLUMNS if name in page.column_names]
    rows: List[Dict[str, Any]] = page.to_pylist()
    for row in rows:
        for name in json_columns:
            if row[name] is not None:
                row[name] = orjson.loads(row[name])
    return rows
