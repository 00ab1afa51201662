"""Command line of `slack_pipeline_with_prefect.py`: serve (default), run, check,
import-export, reconcile.

Bad input (a bad, revoked or under-scoped token included) ends in one line on stderr and exit
code 2, before anything is written; a failed run ends in one line naming the cause and exit 1.
"""

import argparse
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional

from slack_source import RETRYABLE, SlackApiError, SlackConfigError

from . import fast_exit
from .check_notices import TemporaryServerNotices
from .failures import causes, root_slack_error
from .heartbeats import one_off_heartbeats
from .one_off_api import PrefectApiUnavailable, wait_for_one_off_api
from .prepare import PreparedRun, prepare_import, prepare_run
from .run_logs import set_verbose
from .run_settings import (
    load_run_settings,
    source_settings,
    validate_destination_credentials,
    validate_token,
)
from .workspaces import for_workspace

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
    verbose: bool = False


def parse_command_line(argv: Optional[List[str]] = None) -> Command:
    parser = argparse.ArgumentParser(
        prog="slack_pipeline_with_prefect.py",
        description="Load Slack into DuckDB/BigQuery with dlt and Prefect.",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the daily deployment (the default)")
    run = sub.add_parser("run", help="one flow run now")
    check = sub.add_parser("check", help="check the token, scopes, channels and destination")
    add_run_options(run)
    for p in (run, check):
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
    reconcile = sub.add_parser(
        "reconcile", help="check every thread's replies in the warehouse (exit 1: some missing)"
    )
    reconcile.add_argument("--workspace", help="one of slack_pipeline.workspace_names")
    importer = sub.add_parser("import-export", help="backfill from a Slack export ZIP")
    importer.add_argument("path", help="the export ZIP (Workspace settings > Import/Export Data)")
    for p in (serve, run, check, reconcile, importer):
        add_verbose(p)
    return command_of(parser.parse_args(argv))


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action="store_true", help="dlt's and Prefect's details too (DEBUG)"
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What to read: channels and dates (also the demo's options, tooling/demo)."""
    parser.add_argument("--channels", help="comma-separated channel names or ids (default: all)")
    parser.add_argument("--start-date", help="YYYY-MM-DD; default: continue from state")
    parser.add_argument("--end-date", help="YYYY-MM-DD, exclusive; for bounded backfills")


def command_of(args: argparse.Namespace) -> Command:
    channels = (
        [c.strip() for c in args.channels.split(",") if c.strip()]
        if getattr(args, "channels", None)
        else None
    )
    return Command(
        name=getattr(args, "command", None) or "serve",
        channels=channels,
        start_date=getattr(args, "start_date", None),
        end_date=getattr(args, "end_date", None),
        include_private=getattr(args, "include_private", False),
        lookback_days=getattr(args, "lookback_days", None),
        workspace=getattr(args, "workspace", None),
        options={k: getattr(args, k) for k in ("messages", "output", "path") if hasattr(args, k)},
        verbose=bool(getattr(args, "verbose", False)),
    )


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def describe_failure(error: BaseException) -> str:
    """One line for a failed run: the Slack/config cause if there is one, else the innermost."""
    cause = root_slack_error(error)
    if cause is None:
        cause = list(causes(error))[-1]
        google = describe_google_error(cause)
        if google:
            return google
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text


def describe_google_error(cause: BaseException) -> Optional[str]:
    """BigQuery's failure after Google's and dlt's retries (docs/errors.md), in words: Google's
    upload error is a tuple of status codes (`('Request failed with status code', 503, ...)`)."""
    if not type(cause).__module__.startswith("google."):
        return None
    response = getattr(cause, "response", None)
    status = getattr(cause, "code", None) or getattr(response, "status_code", None)
    request = getattr(response, "request", None)
    where = f" on {request.method} {request.path_url.split('?', 1)[0]}" if request else ""
    return (
        f"BigQuery failed after the retries: HTTP {status}{where}; the next run finishes the"
        " unfinished load"
    )


def prepare_or_exit(command: Command) -> PreparedRun:
    """Every check before the flow starts (`prepare.prepare_run`, one `auth.test` handed over to
    the flow), so bad input never starts a flow run or writes a row."""
    with exit_on_bad_input():
        return prepare_run(
            command.workspace,
            command.channels,
            command.start_date,
            command.end_date,
            command.include_private,
            command.lookback_days,
            hand_over=True,
        )


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """Bad input or a rejected token: one line, exit 2; Slack unreachable: one line, exit 1."""
    notices = TemporaryServerNotices()
    notices.install()  # kept when the command ends here
    try:
        yield
    except (SlackConfigError, SlackApiError) as error:
        fail(str(error), EXIT_BAD_INPUT)
    except RETRYABLE as error:
        fail(unreachable(error), EXIT_RUN_FAILED)
    except PrefectApiUnavailable as error:
        fail(str(error), EXIT_RUN_FAILED)
    notices.checked()


def unreachable(error: BaseException) -> str:
    """Slack did not answer after the retries: say where, never with the token."""
    base = source_settings().api_base_url
    reason = getattr(error, "reason", None) or type(error).__name__
    return f"cannot reach Slack at {base} ({reason}); check the network or api_base_url"


def run_flow(flow: Callable[..., Any], **parameters: Any) -> Any:
    """Run the flow in this process; a failed run is one line naming the cause, exit 2 when
    the cause is bad input or a rejected token, else 1."""
    not_started = wait_for_one_off_api()
    if not_started:
        fail(not_started, EXIT_RUN_FAILED)
    try:
        with one_off_heartbeats():
            return flow(**parameters)
    except Exception as error:  # noqa: BLE001 - one clear line, not a traceback
        cause = root_slack_error(error)
        permanent = isinstance(cause, (SlackConfigError, SlackApiError))
        fail(describe_failure(error), EXIT_BAD_INPUT if permanent else EXIT_RUN_FAILED)


def run_once(flow: Callable[..., Any], command: Command) -> Any:
    prepared = prepare_or_exit(command)
    summary = run_flow(
        flow,
        channels=command.channels,
        start_date=command.start_date,
        end_date=command.end_date,
        include_private=command.include_private,
        lookback_days=command.lookback_days,
        **({"workspace": command.workspace} if command.workspace else {}),
    )
    print_report(summary, prepared.settings)
    return summary


def print_report(summary: Any, settings: Any, title: str = "Slack load") -> None:
    from .report import report_lines

    print("\n".join(report_lines(summary, settings, title)))


def run_check(command: Command) -> None:
    """Print the check report; exit 0 when a run could succeed, 2 when it could not."""
    from .check import check_report, org_check

    with exit_on_bad_input():
        settings = load_run_settings()
        org_lines, org_ready = org_check(command.include_private)
        lines, ready = [], True
        if not org_lines or source_settings().access_token:  # an org alone needs no other
            validate_token()
            lines, ready = check_report(settings, command.include_private)
    print("\n".join(org_lines + lines))
    if not (ready and org_ready):
        raise SystemExit(EXIT_BAD_INPUT)


def run_reconcile(command: Command) -> None:
    """`reconcile`: each thread parent's `reply_count` against the replies the dataset holds
    (orchestration/reconcile.py); no Slack call. Exit 0 when every thread adds up, 1 when some
    do not (they are listed, and the daily run fetches the tracked ones again)."""
    from .loading import make_pipeline
    from .reconcile import reconcile_dataset

    with exit_on_bad_input():
        settings = for_workspace(load_run_settings(), command.workspace)
        validate_destination_credentials(settings)
    lines = reconcile_dataset(make_pipeline(settings))
    if not lines:
        print(f"Dataset {settings.dataset_name}: every thread adds up")
        return
    print(f"Dataset {settings.dataset_name}: {len(lines)} incomplete thread(s)")
    print("\n".join(lines))
    raise SystemExit(EXIT_RUN_FAILED)


def run_import(flow: Callable[..., Any], command: Command) -> Any:
    """`import-export PATH`: the export's layout and the destination are checked before the flow
    starts; a malformed day file found while loading is bad input too (exit 2, nothing written).
    No Slack token is needed."""
    path = command.options["path"]
    with exit_on_bad_input():
        settings, _ = prepare_import(path)
    summary = run_flow(flow, path=path)
    print_report(summary, settings, "Slack export import")
    return summary


def main(daily_flow: Callable[..., Any]) -> None:
    """`python slack_pipeline_with_prefect.py [serve|run|check|import-export]`."""
    command = parse_command_line()
    set_verbose(command.verbose)
    if command.name == "import-export":
        from slack_import_export_with_prefect import slack_import_export

        run_import(slack_import_export, command)
        fast_exit.finished()
    elif command.name == "serve":
        daily_flow.serve("slack_pipeline", cron="0 0 * * *", limit=1)
    elif command.name == "run":
        run_once(daily_flow, command)
        fast_exit.finished()  # done and reported: no teardown (orchestration/fast_exit.py)
    elif command.name == "reconcile":
        run_reconcile(command)
    else:
        run_check(command)
