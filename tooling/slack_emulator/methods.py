"""Slack Web API methods over a ``Workspace``: argument checks, scopes, paging, payloads.

Handlers take the merged string arguments of an authenticated request and return the JSON
payload, or raise ``SlackError``. Transport concerns (auth, rate limits, faults) live in ``app``.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import EmulatorConfig
from .directory import CONVERSATION_SCOPES, ChannelInfo
from .pagination import (
    LimitRule,
    SlackError,
    decode_cursor,
    decode_ts_cursor,
    encode_cursor,
    parse_limit,
)
from .rng import fmt_ts, hash_of, parse_ts, text_key
from .workspace import Workspace

TS_MAX = 10**16  # "no upper bound": later than any message, ever
_TRUE = ("1", "true", "True", "TRUE")

# limit default / maximum per method (users.list: 0 or absent = the whole set, as documented)
LIMITS: dict[str, LimitRule] = {
    "users.list": LimitRule(default=0, maximum=1000),
    "conversations.list": LimitRule(default=100, maximum=999),
    "conversations.history": LimitRule(default=100, maximum=999),
    "conversations.replies": LimitRule(default=1000, maximum=1000),
    "conversations.members": LimitRule(default=100, maximum=1000),
}
NON_MARKETPLACE_LIMIT = LimitRule(default=15, maximum=15)
LAST_PAGE: dict[str, dict | None] = {"absent": None, "empty": {}, "present": {"next_cursor": ""}}
CHANNEL_TYPES = frozenset(CONVERSATION_SCOPES)
HISTORY_SCOPES = frozenset(history for _, history in CONVERSATION_SCOPES.values())


def _conversation_type(channel: dict) -> str:
    """The ``types`` value of a channel object as conversations.list shows it."""
    if channel.get("is_im"):
        return "im"
    if channel.get("is_mpim"):
        return "mpim"
    return "private_channel" if channel["is_private"] else "public_channel"


class SlackApi:
    """The implemented methods; ``call`` dispatches by Slack method name."""

    def __init__(
        self, workspace: Workspace, config: EmulatorConfig, org_level: bool = False
    ) -> None:
        self.ws = workspace
        self.config = config
        self.org_level = org_level  # an Enterprise Grid org-level token
        self.scopes = frozenset(config.scopes)
        self.provided = ",".join(config.scopes)
        self.last_page_metadata = LAST_PAGE[config.last_page_metadata]
        self.handlers: dict[str, Callable[[dict[str, str], bool], dict]] = {
            "auth.test": self.auth_test,
            "users.list": self.users_list,
            "conversations.list": self.conversations_list,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.join": self.conversations_join,
            "conversations.members": self.conversations_members,
            "conversations.info": self.conversations_info,
            "users.info": self.users_info,
            "usergroups.list": self.usergroups_list,
        }

    def call(self, method: str, args: dict[str, str], dry_run: bool = False) -> dict:
        """Answer one request; ``dry_run`` computes the answer without changing state."""
        return self.handlers[method](args, dry_run)

    # -- helpers ---------------------------------------------------------------------------------
    def _need(self, scope: str) -> None:
        if scope not in self.scopes:
            raise SlackError("missing_scope", needed=scope, provided=self.provided)

    def _team(self, args: dict[str, str]) -> None:
        """An org-level token must name the workspace of a team-scoped method."""
        if not self.org_level:
            return
        team_id = args.get("team_id", "")
        if not team_id:
            raise SlackError("missing_argument")
        if team_id != self.ws.team.id:
            raise SlackError("team_access_not_granted")

    def _limit(self, method: str, args: dict[str, str]) -> int:
        rule = LIMITS[method]
        if self.config.rate_limits == "non_marketplace" and method in (
            "conversations.history",
            "conversations.replies",
        ):
            rule = NON_MARKETPLACE_LIMIT
        return parse_limit(args.get("limit"), rule, self.config.strict_limit)

    def _page_size(self, method: str, limit: int, args: dict[str, str]) -> int:
        """``limit``, or (seeded, with ``short_page_probability``) a smaller size."""
        p = self.config.short_page_probability
        if p <= 0 or limit <= 1:
            return limit
        h = hash_of(
            self.config.short_page_seed,
            text_key(method),
            text_key(args.get("channel", "")),
            text_key(args.get("ts", "")),
            text_key(args.get("cursor", "")),
            limit,
        )
        if (h >> 11) / float(1 << 53) >= p:
            return limit
        return 1 + (h % (limit - 1))

    def _visible(self, args: dict[str, str]) -> ChannelInfo:
        """The ``channel`` argument's channel, as the token sees it: a private channel the bot
        is not in does not exist for it."""
        info = self.ws.find_channel(args["channel"])
        if info is None or (info.is_private and not info.is_member):
            raise SlackError("channel_not_found")
        return info

    def _readable(self, args: dict[str, str]) -> str:
        """The channel of a history/replies call: visible, history scope, bot a member."""
        info = self._visible(args)
        self._need(info.scopes[1])
        if not info.is_member:
            raise SlackError("not_in_channel")
        return info.id

    def _page(self, payload: dict, next_cursor: str) -> dict:
        """A paged answer: the cursor of the next page, or the last page's metadata."""
        if next_cursor:
            payload["response_metadata"] = {"next_cursor": next_cursor}
        elif self.last_page_metadata is not None:
            payload["response_metadata"] = dict(self.last_page_metadata)
        return payload

    def _window(self, args: dict[str, str]) -> tuple[int, int]:
        """Inclusive microsecond bounds from ``oldest``/``latest``/``inclusive``."""
        oldest_raw, latest_raw = args.get("oldest", ""), args.get("latest", "")
        lo, hi = 0, TS_MAX
        if oldest_raw:
            parsed = parse_ts(oldest_raw)
            if parsed is None:
                raise SlackError("invalid_ts_oldest")
            lo = parsed
        if latest_raw:
            parsed = parse_ts(latest_raw)
            if parsed is None:
                raise SlackError("invalid_ts_latest")
            hi = parsed
        if args.get("inclusive", "") not in _TRUE:
            if oldest_raw:
                lo += 1
            if latest_raw:
                hi -= 1
        return lo, hi

    # -- methods ---------------------------------------------------------------------------------
    def auth_test(self, args: dict[str, str], dry_run: bool) -> dict:
        """Who am I: team and bot identities."""
        team = self.ws.team
        return {
            "ok": True,
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": "emulator-bot",
            "team_id": team.id,
            "user_id": team.bot_user_id,
            "bot_id": team.bot_id,
            "is_enterprise_install": self.org_level,
            **({"enterprise_id": "E" + team.id[1:]} if self.org_level else {}),
        }

    def users_list(self, args: dict[str, str], dry_run: bool) -> dict:
        """All users (deleted included); emails only with users:read.email."""
        self._need("users:read")
        self._team(args)
        limit = self._page_size("users.list", self._limit("users.list", args), args)
        users = self.ws.user_objects()
        start = _start_after_cursor(users, args.get("cursor"), "user")
        end = len(users) if limit == 0 else min(len(users), start + limit)
        members = users[start:end]  # shared read-only dicts: they are only serialised
        if "users:read.email" not in self.scopes:
            members = [_without_email(u) for u in members]
        nxt = encode_cursor("user", users[end]["id"]) if end < len(users) else ""
        return self._page({"ok": True, "members": members, "cache_ts": int(self.ws.now)}, nxt)

    def conversations_list(self, args: dict[str, str], dry_run: bool) -> dict:
        """Channels of the requested ``types`` (default public), optionally without archived."""
        types = {t.strip() for t in (args.get("types") or "public_channel").split(",") if t}
        if not types or not types <= CHANNEL_TYPES:
            raise SlackError("invalid_types")
        for kind in sorted(types):
            self._need(CONVERSATION_SCOPES[kind][0])
        self._team(args)
        limit = self._page_size("conversations.list", self._limit("conversations.list", args), args)
        exclude_archived = args.get("exclude_archived", "") in _TRUE
        with self.ws.lock:
            chans = [
                c
                for c in self.ws.channels()
                if _conversation_type(c) in types
                and (c.get("is_member", True) or not c.get("is_private"))
                and not (exclude_archived and c["is_archived"])
            ]
        start = _start_after_cursor(chans, args.get("cursor"), "team")
        end = min(len(chans), start + limit)
        nxt = encode_cursor("team", chans[end]["id"]) if end < len(chans) else ""
        return self._page({"ok": True, "channels": chans[start:end]}, nxt)

    def conversations_history(self, args: dict[str, str], dry_run: bool) -> dict:
        """Top-level messages and broadcasts, newest first, within oldest/latest."""
        _required(args, "channel")
        if not self.scopes & HISTORY_SCOPES:
            self._need("channels:history")
        cid = self._readable(args)
        limit = self._limit("conversations.history", args)
        lo, hi = self._window(args)
        after = decode_ts_cursor(args.get("cursor"))
        if after is not None:
            hi = min(hi, after)
        size = self._page_size("conversations.history", limit, args)
        messages, nxt = self.ws.history_page(cid, lo, hi, size)
        payload = {
            "ok": True,
            "messages": messages,
            "has_more": nxt is not None,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        return self._page(payload, "" if nxt is None else _ts_cursor(nxt))

    def conversations_replies(self, args: dict[str, str], dry_run: bool) -> dict:
        """A thread: parent first, then replies ascending, paged by replies."""
        _required(args, "channel", "ts")
        if not self.scopes & HISTORY_SCOPES:
            self._need("channels:history")
        cid = self._readable(args)
        ts = parse_ts(args["ts"])
        if ts is None:
            raise SlackError("thread_not_found")
        limit = self._limit("conversations.replies", args)
        lo, hi = self._window(args)
        after = decode_ts_cursor(args.get("cursor"))
        if after is not None:
            lo = max(lo, after)
        first_page = after is None
        size = self._page_size("conversations.replies", limit, args)
        try:
            messages, nxt = self.ws.replies_page(
                cid, ts, lo, hi, size, first_page or self.config.replies_repeat_parent
            )
        except LookupError:
            raise SlackError("thread_not_found") from None
        payload = {"ok": True, "messages": messages, "has_more": nxt is not None}
        return self._page(payload, "" if nxt is None else _ts_cursor(nxt))

    def conversations_join(self, args: dict[str, str], dry_run: bool) -> dict:
        """Join a public channel; already a member -> ok with ``already_in_channel``."""
        _required(args, "channel")
        self._need("channels:join")
        info = self._visible(args)
        cid = info.id
        if info.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if info.is_archived:
            raise SlackError("is_archived")
        channel, already = self.ws.join(cid, apply=not dry_run)
        payload: dict = {"ok": True, "channel": channel}
        if already:
            payload["warning"] = "already_in_channel"
            payload["response_metadata"] = {"warnings": ["already_in_channel"]}
        return payload

    def conversations_members(self, args: dict[str, str], dry_run: bool) -> dict:
        """Member user ids of a channel."""
        _required(args, "channel")
        info = self._visible(args)
        cid = info.id
        self._need(info.scopes[0])
        limit = self._page_size(
            "conversations.members", self._limit("conversations.members", args), args
        )
        members = self.ws.member_ids(cid)
        start = 0
        after = decode_cursor(args.get("cursor"), "user")
        if after is not None:
            if after not in members:
                raise SlackError("invalid_cursor")
            start = members.index(after)
        end = min(len(members), start + limit)
        nxt = encode_cursor("user", members[end]) if end < len(members) else ""
        return self._page({"ok": True, "members": members[start:end]}, nxt)

    def conversations_info(self, args: dict[str, str], dry_run: bool) -> dict:
        """One channel object; ``num_members`` only with ``include_num_members``."""
        _required(args, "channel")
        info = self._visible(args)
        self._need(info.scopes[0])
        channel = self.ws.channel(info.id)
        if args.get("include_num_members", "") not in _TRUE:
            del channel["num_members"]
        return {"ok": True, "channel": channel}

    def users_info(self, args: dict[str, str], dry_run: bool) -> dict:
        """One user object (deleted users too); its email only with users:read.email."""
        _required(args, "user")
        self._need("users:read")
        uid = args["user"]
        user = next((u for u in self.ws.user_objects() if u["id"] == uid), None)
        if user is None:
            raise SlackError("user_not_found")
        if "users:read.email" not in self.scopes:
            user = _without_email(user)
        return {"ok": True, "user": user}

    def usergroups_list(self, args: dict[str, str], dry_run: bool) -> dict:
        """User groups (not paginated); ``users`` only with ``include_users``, disabled groups
        only with ``include_disabled``, ``user_count`` only with ``include_count``."""
        self._need("usergroups:read")
        groups = self.ws.user_groups(include_disabled=args.get("include_disabled") in _TRUE)
        for group in groups:
            if args.get("include_users") not in _TRUE:
                group.pop("users")
            if args.get("include_count") not in _TRUE:
                group.pop("user_count")
        return {"ok": True, "usergroups": groups}


def _required(args: dict[str, str], *names: str) -> None:
    """Slack's answer to a missing or empty required argument: ``invalid_arguments``, naming
    each one in ``response_metadata.messages``."""
    missing = [name for name in names if not args.get(name)]
    if missing:
        messages = [f"[ERROR] missing required field: {name}" for name in missing]
        raise SlackError("invalid_arguments", response_metadata={"messages": messages})


def _start_after_cursor(items: list[dict], cursor: str | None, kind: str) -> int:
    """Index of the page that a `kind` cursor (naming the first id of the page) points at."""
    after = decode_cursor(cursor, kind)
    if after is None:
        return 0
    ids = [item["id"] for item in items]
    if after not in ids:
        raise SlackError("invalid_cursor")
    return ids.index(after)


def _without_email(user: dict) -> dict:
    profile = {k: v for k, v in user["profile"].items() if k != "email"}
    return {**user, "profile": profile}


def _ts_cursor(ts_us: int) -> str:
    """``next_ts`` cursor: Slack's own shape (``next_ts:1512085861000543``)."""
    return encode_cursor("next_ts", fmt_ts(ts_us).replace(".", ""))
