"""Command line of `slack_pipeline_with_prefect.py`: serve (default), run, check, demo,
import-export.

Bad input (a bad, revoked or under-scoped token included) ends in one line on stderr and exit
code 2, before anything is written; a failed run ends in one line naming the cause and exit 1.
"""

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from slack_source import RETRYABLE, SlackApiError, SlackConfigError, SlackError
from slack_source.settings import check_lookback

from .retry_policy import causes, root_slack_error
from .settings import load_run_settings, validate_dates, validate_destination_credentials

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


@dataclass
class Command:
    name: str
    channels: Optional[List[str]] = None
    start_date: Optional[str] = None
    end_date: Optional[str] = None
    include_private: bool = False
    lookback_days: Optional[float] = None
    workspace: Optional[str] = None
    options: dict = field(default_factory=dict)


def parse_command_line(argv: Optional[List[str]] = None) -> Command:
    parser = argparse.ArgumentParser(
        prog="slack_pipeline_with_prefect.py",
        description="Load Slack into DuckDB/BigQuery with dlt and Prefect.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the daily deployment (the default)")
    run = sub.add_parser("run", help="one flow run now")
    check = sub.add_parser("check", help="check the token, scopes, channels and destination")
    demo = sub.add_parser("demo", help="offline demo: bundled Slack emulator -> local DuckDB")
    for p in (run, demo):
        p.add_argument("--channels", help="comma-separated channel names or ids (default: all)")
        p.add_argument("--start-date", help="YYYY-MM-DD; default: continue from state")
        p.add_argument("--end-date", help="YYYY-MM-DD, exclusive; for bounded backfills")
    for p in (run, demo, check):
        p.add_argument("--include-private", action="store_true", help="read private channels too")
    run.add_argument(
        "--workspace",
        help="one of slack_pipeline.workspace_names (default: the single sources.slack workspace)",
    )
    run.add_argument(
        "--lookback-days",
        type=float,
        help="re-read at least this many days (default: sources.slack.lookback_days)",
    )
    demo.add_argument("--messages", type=int, default=3000, help="size of the demo workspace")
    demo.add_argument("--output", default="demo_output", help="folder for the DuckDB file")
    importer = sub.add_parser("import-export", help="backfill from a Slack export ZIP")
    importer.add_argument("path", help="the export ZIP (Workspace settings > Import/Export Data)")
    args = parser.parse_args(argv)
    channels = (
        [c.strip() for c in args.channels.split(",") if c.strip()]
        if getattr(args, "channels", None)
        else None
    )
    return Command(
        name=args.command or "serve",
        channels=channels,
        start_date=getattr(args, "start_date", None),
        end_date=getattr(args, "end_date", None),
        include_private=getattr(args, "include_private", False),
        lookback_days=getattr(args, "lookback_days", None),
        workspace=getattr(args, "workspace", None),
        options={k: getattr(args, k) for k in ("messages", "output", "path") if hasattr(args, k)},
    )


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def describe_failure(error: BaseException) -> str:
    """One line for a failed run: the Slack/config cause if there is one, else the innermost."""
    cause = root_slack_error(error)
    if cause is None:
        cause = list(causes(error))[-1]
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text


def validate_inputs(command: Command) -> None:
    """Every check before the flow starts: settings, dates, credentials, then the token's
    access (one `auth.test`), so bad input never starts a flow run or writes a row."""
    from .preflight import slack_access
    from .settings import validate_token
    from .workspaces import for_workspace, token_setting, workspace_access

    try:
        settings = for_workspace(load_run_settings(), command.workspace)
        validate_dates(command.start_date, command.end_date)
        check_lookback(command.lookback_days)
        if command.workspace is None:
            validate_token()
        validate_destination_credentials(settings)
        slack_access(command.include_private, token_setting(settings), **workspace_access(settings))
    except (SlackConfigError, SlackApiError) as error:
        fail(str(error), EXIT_BAD_INPUT)
    except RETRYABLE as error:
        fail(unreachable(error), EXIT_RUN_FAILED)


def unreachable(error: BaseException) -> str:
    """Slack did not answer after the retries: say where, never with the token."""
    import dlt

    base = dlt.config.get("sources.slack.api_base_url") or "https://slack.com/api/"
    reason = getattr(error, "reason", None) or type(error).__name__
    return f"cannot reach Slack at {base} ({reason}); check the network or api_base_url"


def run_once(flow: Callable[..., Any], command: Command) -> Any:
    validate_inputs(command)
    try:
        return flow(
            channels=command.channels,
            start_date=command.start_date,
            end_date=command.end_date,
            include_private=command.include_private,
            lookback_days=command.lookback_days,
            **({"workspace": command.workspace} if command.workspace else {}),
        )
    except (SlackError, Exception) as error:  # noqa: BLE001 - one clear line, not a traceback
        cause = root_slack_error(error)
        permanent = isinstance(cause, (SlackConfigError, SlackApiError))
        fail(describe_failure(error), EXIT_BAD_INPUT if permanent else EXIT_RUN_FAILED)


def run_check(command: Command) -> None:
    """Print the check report; exit 0 when a run could succeed, 2 when it could not."""
    from .check import check_report
    from .settings import validate_token

    try:
        settings = load_run_settings()
        validate_token()
        lines, ready = check_report(settings, command.include_private)
    except (SlackConfigError, SlackApiError) as error:
        fail(str(error), EXIT_BAD_INPUT)
    except RETRYABLE as error:
        fail(unreachable(error), EXIT_RUN_FAILED)
    print("\n".join(lines))
    if not ready:
        raise SystemExit(EXIT_BAD_INPUT)


def run_import(flow: Callable[..., Any], command: Command) -> Any:
    """`import-export PATH`: the export's layout and the destination are checked before the flow
    starts; a malformed day file found while loading is bad input too (exit 2, nothing written).
    No Slack token is needed."""
    from .export_import import check_export

    path = command.options["path"]
    try:
        validate_destination_credentials(load_run_settings())
        check_export(path)
    except SlackConfigError as error:
        fail(str(error), EXIT_BAD_INPUT)
    try:
        return flow(path=path)
    except Exception as error:  # noqa: BLE001 - one clear line, not a traceback
        cause = root_slack_error(error)
        code = EXIT_BAD_INPUT if isinstance(cause, SlackConfigError) else EXIT_RUN_FAILED
        fail(describe_failure(error), code)
