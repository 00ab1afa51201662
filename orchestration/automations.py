"""Alerts kept in the repository: two Prefect automations that post to a webhook.

    python -m orchestration.automations apply     # create or update both, then exit

- "failed": a `slack_pipeline` flow run entered Failed, Crashed or TimedOut (reactive).
- "missing": no `slack_pipeline` run reached Completed within 26 hours (proactive), so a
  stopped worker, a paused schedule or a dead `serve` process is noticed too.

Both deliver through one Custom Webhook notification block that posts `{"text": ...}`, the
payload of a Slack incoming webhook; any other URL (a local receiver in the tests) works too.
The URL comes from dlt config and is kept in the block's secret values, never in its plain
fields or in a log line:

    .dlt/secrets.toml   [slack_pipeline.alerts] webhook_url = "https://hooks.slack.com/..."
                        (env SLACK_PIPELINE__ALERTS__WEBHOOK_URL)
    .dlt/config.toml    [slack_pipeline.alerts] missing_run_hours = 26
                        (env SLACK_PIPELINE__ALERTS__MISSING_RUN_HOURS)

Applying is idempotent: the block is overwritten and the automations are matched by name.
"""

import argparse
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Dict, List, Optional
from uuid import UUID

import httpx
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue
from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

FLOW_NAME = "slack_pipeline"
BLOCK_NAME = "slack-pipeline-alerts"
FAILED_AUTOMATION = "slack_pipeline: run failed"
MISSING_AUTOMATION = "slack_pipeline: no completed run"
DEFAULT_MISSING_RUN_HOURS = 26.0  # a daily run plus two hours of slack
MIN_PROACTIVE_WITHIN = timedelta(seconds=10)  # Prefect rejects shorter proactive windows

# Flow-run events carry the flow as a related resource with role "flow" and its name.
FLOW_RUN_EVENTS = {"prefect.resource.id": "prefect.flow-run.*"}
OF_THIS_FLOW = {"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME}

# Jinja, rendered by the server: `flow` and `flow_run` are read from the triggering event.
FAILED_SUBJECT = "slack_pipeline run {{ flow_run.name }} {{ flow_run.state.name }}"
FAILED_BODY = (
    "Flow run {{ flow.name }}/{{ flow_run.name }} entered {{ flow_run.state.name }}.\n"
    "Message: {{ flow_run.state.message }}\n"
    "Run: {{ flow_run|ui_url }}"
)


class AlertConfigError(ValueError):
    """A missing or malformed alert setting (the message never contains the URL)."""


@configspec
class AlertConfig(BaseConfiguration):
    """`[slack_pipeline.alerts]` (env SLACK_PIPELINE__ALERTS__*)."""

    webhook_url: Optional[TSecretStrValue] = None
    missing_run_hours: Optional[float] = None


@dataclass
class AlertSettings:
    webhook_url: str
    missing_run_within: timedelta


def load_alert_settings(missing_run_seconds: Optional[float] = None) -> AlertSettings:
    """Read `[slack_pipeline.alerts]`; `missing_run_seconds` overrides the hours (tests)."""
    config = resolve_configuration(AlertConfig(), sections=("slack_pipeline", "alerts"))
    url = config.webhook_url
    if not url:
        raise AlertConfigError(
            "No alert webhook: set [slack_pipeline.alerts] webhook_url in .dlt/secrets.toml"
            " or SLACK_PIPELINE__ALERTS__WEBHOOK_URL"
        )
    url = str(url).strip()
    if not url.startswith(("https://", "http://")):
        raise AlertConfigError("slack_pipeline.alerts.webhook_url must be an http(s) URL")
    if missing_run_seconds is not None:
        within = timedelta(seconds=float(missing_run_seconds))
    else:
        hours = config.missing_run_hours
        within = timedelta(hours=float(hours if hours is not None else DEFAULT_MISSING_RUN_HOURS))
    if within < MIN_PROACTIVE_WITHIN:
        raise AlertConfigError("the missing-run window must be at least 10 seconds")
    return AlertSettings(webhook_url=url, missing_run_within=within)


def describe(within: timedelta) -> str:
    seconds = int(within.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"


def webhook_block(url: str) -> CustomWebhookNotificationBlock:
    """Slack's incoming-webhook payload; the URL sits in `secrets`, templated into `url`."""
    return CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url="{{webhook_url}}",
        json_data={"text": "*{{subject}}*\n{{body}}"},
        secrets={"webhook_url": url},
    )


def failed_automation(block_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=FAILED_AUTOMATION,
        description="Notify when a slack_pipeline flow run fails, crashes or times out.",
        trigger=EventTrigger(
            expect={
                "prefect.flow-run.Failed",
                "prefect.flow-run.Crashed",
                "prefect.flow-run.TimedOut",
            },
            match=FLOW_RUN_EVENTS,
            match_related=OF_THIS_FLOW,
            for_each={"prefect.resource.id"},  # one notification per flow run
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(block_document_id=block_id, subject=FAILED_SUBJECT, body=FAILED_BODY)
        ],
    )


def missing_automation(block_id: UUID, within: timedelta) -> AutomationCore:
    window = describe(within)
    return AutomationCore(
        name=MISSING_AUTOMATION,
        description=f"Notify when no slack_pipeline run completed within {window}.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match=FLOW_RUN_EVENTS,
            match_related=OF_THIS_FLOW,
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"slack_pipeline: no completed run in the last {window}",
                body=(
                    f"No flow run of slack_pipeline reached Completed in the last {window}. "
                    "Check that the worker (or the serve process) is running and that the "
                    "deployment's schedule is active."
                ),
            )
        ],
    )


def apply_automations(settings: AlertSettings) -> Dict[str, UUID]:
    """Save the block, then create or update both automations by name; return their ids."""
    block_id = webhook_block(settings.webhook_url).save(BLOCK_NAME, overwrite=True)
    wanted = [
        failed_automation(block_id),
        missing_automation(block_id, settings.missing_run_within),
    ]
    ids: Dict[str, UUID] = {}
    with get_client(sync_client=True) as client:
        for automation in wanted:
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
                ids[automation.name] = existing[0].id
                for duplicate in existing[1:]:  # e.g. one created by hand in the UI
                    client.delete_automation(duplicate.id)
            else:
                ids[automation.name] = client.create_automation(automation)
    return ids


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.automations",
        description="Create or update the slack_pipeline alert automations on the Prefect "
        "server named by PREFECT_API_URL.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="create or update the block and both automations")
    apply.add_argument(
        "--missing-run-seconds",
        type=float,
        help="window of the missing-run alert in seconds (default: missing_run_hours)",
    )
    args = parser.parse_args(argv)

    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        print(
            "error: PREFECT_API_URL is not set: point it at the Prefect server that runs "
            "slack_pipeline (automations on a temporary server would never fire)",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_alert_settings(args.missing_run_seconds)
    except AlertConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        ids = apply_automations(settings)
    except (httpx.HTTPError, OSError) as error:  # server down or wrong URL: one line, no URL
        print(
            f"error: cannot reach the Prefect server at PREFECT_API_URL "
            f"({type(error).__name__}); start it with `prefect server start`",
            file=sys.stderr,
        )
        return 2
    print(f"Notification block '{BLOCK_NAME}' saved (webhook URL stored as a secret).")
    for name, automation_id in ids.items():
        print(f"Automation '{name}': {automation_id}")
    print(f"Missing-run window: {describe(settings.missing_run_within)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
