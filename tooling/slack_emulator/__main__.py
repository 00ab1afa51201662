"""``python -m tooling.slack_emulator serve``: run the emulator in the foreground.

Prints one JSON line (``base_url``, ``control_url``) once listening, serves until SIGTERM/SIGINT.
``python -m tooling.slack_emulator export OUT.zip [--from D] [--to D] [--public-only]`` writes the
same
generated workspace (same options) as a Slack export ZIP instead (see ``slack_emulator.export``).
With ``--workspace TOKEN:SEED`` (repeatable) it serves several workspaces of the same shape,
each with its own seed (data, ids), token and rate limits; the line then also lists
``workspaces``: ``[{"team_id", "control_url"}]`` in the order given. ``--org N`` serves an
Enterprise Grid org-wide install instead: N workspaces (seeds SEED, SEED+1, ...) behind the one
org-level token ``--org-token`` (see ``slack_emulator.org``), listed the same way.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from .config import (
    DEFAULT_SCOPES,
    DEFAULT_TOKEN,
    LAST_PAGE_METADATA,
    RATE_LIMIT_PROFILES,
    EmulatorConfig,
    WorkspaceSpec,
)
from .export import add_arguments as add_export_arguments
from .export import main_export
from .faults import FAULT_KINDS, FaultSpec
from .org import Org
from .rotation import RotationSpec
from .server import EmulatorServer
from .workspace import Workspace

ORG_TOKEN = "xoxb-emulator-org-token"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tooling.slack_emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a generated workspace until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 = a free port")
    export = sub.add_parser("export", help="write the generated workspace as a Slack export ZIP")
    add_export_arguments(export)
    for p in (serve, export):
        _workspace_arguments(p)
    serve.add_argument("--rate-limits", choices=RATE_LIMIT_PROFILES, default="off")
    serve.add_argument("--time-scale", type=float, default=1.0)
    serve.add_argument("--short-page-probability", type=float, default=0.0)
    serve.add_argument("--no-replies-repeat-parent", action="store_true")
    serve.add_argument(
        "--last-page-metadata",
        choices=LAST_PAGE_METADATA,
        default=EmulatorConfig.last_page_metadata,
        help='the last page\'s response_metadata: none (absent), {} (empty), {"next_cursor": ""}',
    )
    serve.add_argument("--strict-limit", action="store_true")
    serve.add_argument("--fault-rate", type=float, default=0.0)
    serve.add_argument("--fault-seed", type=int, default=0)
    serve.add_argument("--fault-kinds", default=",".join(FAULT_KINDS))
    serve.add_argument("--slow-seconds", type=float, default=0.5)
    serve.add_argument("--token", action="append", help=f"accepted token (default {DEFAULT_TOKEN})")
    serve.add_argument("--revoked-token", action="append", help="a token answered token_revoked")
    serve.add_argument(
        "--rotating",
        action="append",
        metavar="REFRESH_TOKEN:TOKEN",
        help="token rotation: a refresh token reaching TOKEN's workspace (TOKEN rotates too)",
    )
    serve.add_argument("--client-id", default=RotationSpec.client_id)
    serve.add_argument("--client-secret", default=RotationSpec.client_secret)
    serve.add_argument(
        "--token-lifetime-s", type=float, default=None, help="default: 12 h * --time-scale"
    )
    serve.add_argument(
        "--workspace",
        action="append",
        metavar="TOKEN:SEED",
        help="serve several workspaces: TOKEN reaches a workspace generated with SEED",
    )
    serve.add_argument("--org", type=int, default=0, metavar="N", help="an org of N workspaces")
    serve.add_argument("--org-token", default=ORG_TOKEN, help=f"its token (default {ORG_TOKEN})")
    serve.add_argument(
        "--scopes", default=",".join(DEFAULT_SCOPES), help="granted scopes, comma-separated"
    )
    return parser


def _workspace_arguments(parser: argparse.ArgumentParser) -> None:
    """What the generated workspace holds (same seed and options -> same workspace)."""
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--private-channels", type=int, default=1)
    parser.add_argument("--archived-channels", type=int, default=1)
    parser.add_argument("--non-member-channels", type=int, default=1)
    parser.add_argument("--reply-share", type=float, default=0.2, help="share of replies")
    parser.add_argument(
        "--thread-alpha",
        type=float,
        default=1.1,
        help="Pareto tail of thread sizes (lower: longer)",
    )
    parser.add_argument("--thread-cap", type=float, default=200.0, help="largest thread weight")
    parser.add_argument(
        "--no-user-profiles", action="store_true", help="messages without user_profile (smaller)"
    )
    parser.add_argument("--dms", type=int, default=0, help="the bot's 1:1 DMs (im)")
    parser.add_argument("--group-dms", type=int, default=0, help="group DMs with the bot (mpim)")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--threads", type=int, default=40)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--now", type=float, default=None, help="epoch seconds (default: now)")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve, print the URLs, wait for a signal (or write an export)."""
    args = _parser().parse_args(argv)
    spec = dict(
        users=args.users,
        channels=args.channels,
        private_channels=args.private_channels,
        archived_channels=args.archived_channels,
        non_member_channels=args.non_member_channels,
        dms=args.dms,
        group_dms=args.group_dms,
        reply_share=args.reply_share,
        thread_alpha=args.thread_alpha,
        thread_cap=args.thread_cap,
        user_profiles=not args.no_user_profiles,
        messages=args.messages,
        threads=args.threads,
        days=args.days,
        now=args.now,
    )
    workspace = Workspace(WorkspaceSpec(seed=args.seed, **spec))
    if args.command == "export":
        return main_export(workspace, args)
    served: Workspace | dict[str, Workspace | Org] = workspace
    if args.org > 0:
        seeds = range(args.seed, args.seed + args.org)
        served = {args.org_token: Org([Workspace(WorkspaceSpec(seed=s, **spec)) for s in seeds])}
    elif args.workspace:
        served = {}
        for entry in args.workspace:
            token, _, seed = entry.rpartition(":")
            served[token] = Workspace(WorkspaceSpec(seed=int(seed), **spec))
    faults = None
    if args.fault_rate > 0:
        kinds = tuple(k for k in args.fault_kinds.split(",") if k)
        faults = FaultSpec(
            rate=args.fault_rate, seed=args.fault_seed, kinds=kinds, slow_seconds=args.slow_seconds
        )
    config = EmulatorConfig(
        tokens=tuple(args.token or (DEFAULT_TOKEN,)),
        revoked_tokens=tuple(args.revoked_token or ()),
        scopes=tuple(s for s in args.scopes.split(",") if s),
        rate_limits=args.rate_limits,
        time_scale=args.time_scale,
        short_page_probability=args.short_page_probability,
        replies_repeat_parent=not args.no_replies_repeat_parent,
        last_page_metadata=args.last_page_metadata,
        strict_limit=args.strict_limit,
        faults=faults,
        rotation=rotation_spec(args),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = EmulatorServer(served, config, host=args.host, port=args.port).start()
    try:
        line: dict = {"base_url": server.base_url, "control_url": server.control_url}
        if args.workspace or args.org > 0:
            line["workspaces"] = [
                {"team_id": team_id, "control_url": server.team_control_url(team_id)}
                for team_id in server.app.team_controls
            ]
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def rotation_spec(args: argparse.Namespace) -> RotationSpec | None:
    """``--rotating REFRESH:TOKEN`` pairs as a rotating app (none: no rotation)."""
    if not args.rotating:
        return None
    seeds = tuple(tuple(entry.split(":", 1)) for entry in args.rotating)
    return RotationSpec(
        client_id=args.client_id,
        client_secret=args.client_secret,
        seeds=seeds,  # type: ignore[arg-type]
        token_lifetime_s=args.token_lifetime_s,
    )


if __name__ == "__main__":
    sys.exit(main())
