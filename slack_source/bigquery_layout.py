"""BigQuery table layout for the Slack source: partitioning and clustering hints.

`messages` is partitioned by day on `posted_at` (queries filtered by date scan only the days
they need) and clustered by `channel_id`; `users` and `channels` are clustered by `id`, the
merge key. The hints only matter when the table is created: BigQuery cannot re-partition an
existing table, so a dataset loaded before this layout keeps its old layout until the tables
are dropped and reloaded (`--refresh drop_sources` or `pipeline.run(..., refresh=...)`).
Other destinations ignore the `x-bigquery-*` hints.
"""

from dlt.destinations.adapters import bigquery_adapter
from dlt.extract.source import DltSource

MESSAGES_PARTITION_COLUMN = "posted_at"
MESSAGES_CLUSTER_COLUMNS = ["channel_id"]
ID_CLUSTERED_TABLES = ("users", "channels")


def apply_bigquery_layout(source: DltSource) -> DltSource:
    """Add BigQuery partition/cluster hints to the source's resources, in place; returns it."""
    resources = source.resources
    if "messages" in resources:
        bigquery_adapter(
            resources["messages"],
            partition=MESSAGES_PARTITION_COLUMN,
            cluster=list(MESSAGES_CLUSTER_COLUMNS),
        )
    for name in ID_CLUSTERED_TABLES:
        if name in resources:
            bigquery_adapter(resources[name], cluster=["id"])
    return source
