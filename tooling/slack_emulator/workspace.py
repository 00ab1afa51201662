"""The generated workspace, its mutations and its ground truth.

Generated content is lazy (see ``layout`` and ``generator``); mutations are small overlays:
posted messages, edits, reactions, deletions and tombstones. One re-entrant lock guards the
overlays so the HTTP thread and a test thread can mutate and read concurrently.
"""

from __future__ import annotations

import copy
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from .config import WorkspaceSpec
from .directory import (
    SLACKBOT_ID,
    ChannelInfo,
    Team,
    make_channels,
    make_team,
    make_users,
    user_profiles,
)
from .generator import ContentGenerator, blocks_for_text
from .layout import ChannelPlan, Shape, Timeline, is_broadcast, plan_channel, plan_counts
from .rng import US_PER_S, fmt_ts, hash_of, parse_ts, slack_id

GROUND_TRUTH_BATCH = 500
TOMBSTONE_TEXT = "This message was deleted."


@dataclass(slots=True)
class _Posted:
    """A message added through the mutation API."""

    user: str
    text: str
    thread_ts: int | None
    broadcast: bool


@dataclass
class _Channel:
    """Per-channel state: generated plan plus overlays (all timestamps are int microseconds)."""

    info: ChannelInfo
    key: int
    timeline: Timeline
    threads: dict[int, list[int]]
    reply_parent: dict[int, int]
    gen_parents: frozenset[int]
    extra: list[int]  # history items that are not timeline tops: broadcasts, posted tops
    max_ts: int
    posted: dict[int, _Posted] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)  # deleted generated top-level messages
    tombstones: set[int] = field(default_factory=set)
    edits: dict[int, tuple[str, dict]] = field(default_factory=dict)
    reactions: dict[int, list[dict]] = field(default_factory=dict)
    reply_users: dict[int, list[str]] = field(default_factory=dict)  # cache per thread parent


def _to_us(ts: str | float | int) -> int:
    value = parse_ts(ts) if isinstance(ts, str) else round(float(ts) * US_PER_S)
    if value is None:
        raise ValueError(f"invalid ts {ts!r}")
    return value


class Workspace:
    """A Slack workspace generated from a ``WorkspaceSpec``: cheap even for 1M messages."""

    def __init__(self, spec: WorkspaceSpec | None = None) -> None:
        self.spec = spec = spec or WorkspaceSpec()
        self.now: float = time.time() if spec.now is None else float(spec.now)
        self.now_us = int(self.now * US_PER_S)
        self.lock = threading.RLock()
        self.team: Team = make_team(spec.seed)
        now_s = int(self.now)
        self._users = make_users(spec, self.team, now_s)
        humans = self._users[: spec.users]
        self._default_user = next((u["id"] for u in humans if not u["deleted"]), humans[0]["id"])
        self.gen = ContentGenerator(
            spec.seed,
            self.team,
            [u["id"] for u in humans],
            self.now_us,
            user_profiles(humans) if spec.user_profiles else None,
        )
        infos = make_channels(spec, self.team, humans, now_s)
        shape = Shape(spec.reply_share, spec.thread_alpha, spec.thread_cap)
        counts = plan_counts(spec.seed, len(infos), spec.messages, spec.threads, shape)
        start_us = self.now_us - int(spec.days * 86400 * US_PER_S)
        self._channels: list[_Channel] = []
        self._by_id: dict[str, _Channel] = {}
        for info, cnt in zip(infos, counts, strict=True):
            key = hash_of(spec.seed, 300, info.index)
            plan = plan_channel(spec.seed, info.index, key, cnt, start_us, self.now_us, shape)
            self._add_channel(info, key, plan)
        self._count = spec.messages

    def _add_channel(self, info: ChannelInfo, key: int, plan: ChannelPlan) -> _Channel:
        ch = _Channel(
            info=info,
            key=key,
            timeline=plan.timeline,
            threads=plan.threads,
            reply_parent=plan.reply_parent,
            gen_parents=frozenset(plan.threads),
            extra=plan.broadcasts,
            max_ts=plan.max_ts,
        )
        self._channels.append(ch)
        self._by_id[info.id] = ch
        return ch

    # -- lookups ---------------------------------------------------------------------------------
    def _chan(self, channel_id: str) -> _Channel:
        ch = self._by_id.get(channel_id)
        if ch is None:
            raise KeyError(f"channel_not_found: {channel_id}")
        return ch

    def find_channel(self, channel_id: str) -> ChannelInfo | None:
        """Channel metadata (read under ``lock``), ``None`` if unknown."""
        ch = self._by_id.get(channel_id)
        return ch.info if ch is not None else None

    def _top_present(self, ch: _Channel, t: int) -> bool:
        if t in ch.posted:
            return t not in ch.reply_parent
        return ch.timeline.index_of(t) is not None and t not in ch.deleted

    def _taken(self, ch: _Channel, t: int) -> bool:
        return t in ch.posted or t in ch.reply_parent or ch.timeline.index_of(t) is not None

    def _user_of(self, ch: _Channel, t: int) -> str:
        posted = ch.posted.get(t)
        if posted is not None:
            return posted.user
        if t in ch.reply_parent or t in ch.gen_parents:
            return self.gen.author(ch.key, t)
        msg = self.gen.top(ch.key, t, "", False, True)
        return msg.get("user") or msg.get("bot_id", "")

    # -- rendering -------------------------------------------------------------------------------
    def _render(self, ch: _Channel, t: int, wire: bool) -> dict:
        """The message at ``t`` as the API shows it (``wire`` embeds pre-serialised blocks)."""
        ts = fmt_ts(t)
        parent = ch.reply_parent.get(t)
        if (
            parent is None
            and not ch.posted
            and not ch.edits
            and not ch.reactions
            and not ch.tombstones
        ):
            # hot path: a generated top-level message, no overlays in this channel
            msg = self.gen.top(ch.key, t, ts, t in ch.gen_parents, wire)
        elif t in ch.tombstones:
            msg = {
                "type": "message",
                "subtype": "tombstone",
                "text": TOMBSTONE_TEXT,
                "user": SLACKBOT_ID,
                "hidden": True,
                "ts": ts,
            }
        else:
            msg = self._render_overlaid(ch, t, ts, parent, wire)
        if parent is None:
            replies = ch.threads.get(t)
            if replies:
                users = self._reply_users(ch, t, replies)
                msg["thread_ts"] = ts
                msg["reply_count"] = len(replies)
                msg["reply_users_count"] = len(users)
                msg["latest_reply"] = fmt_ts(replies[-1])
                msg["reply_users"] = list(users)
                msg["is_locked"] = False
                msg["subscribed"] = False
        return msg

    def _render_overlaid(
        self, ch: _Channel, t: int, ts: str, parent: int | None, wire: bool
    ) -> dict:
        """A message that may be posted, a reply, edited or reacted to."""
        posted = ch.posted.get(t)
        if posted is not None:
            msg = self.gen.posted(posted.user, posted.text, t, ts)
            broadcast = posted.broadcast
        elif parent is not None:
            msg = self.gen.reply(ch.key, t, ts, wire)
            broadcast = is_broadcast(ch.key, t)
        else:
            msg = self.gen.top(ch.key, t, ts, t in ch.gen_parents, wire)
            broadcast = False
        edit = ch.edits.get(t)
        if edit is not None:
            msg["text"] = edit[0]
            if "blocks" in msg or "client_msg_id" in msg:
                msg["blocks"] = blocks_for_text(edit[0], hash_of(ch.key, t, 5))
            msg["edited"] = dict(edit[1])
        reactions = ch.reactions.get(t)
        if reactions is not None:
            msg["reactions"] = [dict(r, users=list(r["users"])) for r in reactions]
        if parent is not None:
            msg["thread_ts"] = fmt_ts(parent)
            msg["parent_user_id"] = self._user_of(ch, parent)
            if broadcast:
                msg = {"type": "message", "subtype": "thread_broadcast", **msg}
                msg["root"] = self._render(ch, parent, wire)
        return msg

    def _reply_users(self, ch: _Channel, parent: int, replies: list[int]) -> list[str]:
        users = ch.reply_users.get(parent)
        if users is None:
            seen: dict[str, None] = {}
            for r in replies:
                seen.setdefault(self._user_of(ch, r), None)
            users = ch.reply_users[parent] = list(seen)
        return users

    # -- history iteration -----------------------------------------------------------------------
    def _history_desc(self, ch: _Channel, hi: int, lo: int) -> Iterator[int]:
        """History timestamps in ``[lo, hi]``, newest first (tops merged with extras)."""
        tl, extra, deleted = ch.timeline, ch.extra, ch.deleted
        i = tl.last_at_or_before(hi)
        a = tl.ts(i) if i >= 0 else -1
        j = bisect_right(extra, hi) - 1
        b = extra[j] if j >= 0 else -1
        while True:
            if a > b:
                if a < lo:
                    return
                if a not in deleted:
                    yield a
                i -= 1
                a = tl.ts(i) if i >= 0 else -1
            else:
                if b < lo or b < 0:
                    return
                yield b
                j -= 1
                b = extra[j] if j >= 0 else -1

    def _history_asc(self, ch: _Channel, lo: int) -> Iterator[int]:
        """History timestamps ``>= lo``, oldest first."""
        tl, extra, deleted = ch.timeline, ch.extra, ch.deleted
        i = tl.last_at_or_before(lo - 1) + 1
        a = tl.ts(i) if i < tl.n else None
        j = bisect_left(extra, lo)
        b = extra[j] if j < len(extra) else None
        while a is not None or b is not None:
            if b is None or (a is not None and a < b):
                if a not in deleted:
                    yield a
                i += 1
                a = tl.ts(i) if i < tl.n else None
            else:
                yield b
                j += 1
                b = extra[j] if j < len(extra) else None

    # -- queries used by the HTTP layer ----------------------------------------------------------
    def history_page(
        self, channel_id: str, lo: int, hi: int, limit: int, wire: bool = True
    ) -> tuple[list[dict], int | None]:
        """Up to ``limit`` history messages with ``lo <= ts <= hi`` newest first, and the ts of
        the next one (``None`` when the range is exhausted)."""
        with self.lock:
            ch = self._chan(channel_id)
            it = self._history_desc(ch, hi, lo)
            stamps = list(islice(it, limit))
            nxt = next(it, None)
            return [self._render(ch, t, wire) for t in stamps], nxt

    def replies_page(
        self,
        channel_id: str,
        ts: int,
        lo: int,
        hi: int,
        limit: int,
        include_parent: bool,
        wire: bool = True,
    ) -> tuple[list[dict], int | None]:
        """The thread containing ``ts``: parent (if asked) then up to ``limit`` replies with
        ``lo <= ts <= hi`` ascending, and the ts of the next reply. ``LookupError`` if no
        such message."""
        with self.lock:
            ch = self._chan(channel_id)
            parent = ch.reply_parent.get(ts)
            if parent is None:
                if not self._top_present(ch, ts):
                    raise LookupError("thread_not_found")
                parent = ts
            replies = ch.threads.get(parent, [])
            start = bisect_left(replies, lo)
            end = bisect_right(replies, hi)
            stop = min(end, start + limit)
            msgs = [self._render(ch, parent, wire)] if include_parent else []
            msgs.extend(self._render(ch, r, wire) for r in replies[start:stop])
            return msgs, replies[stop] if stop < end else None

    def member_ids(self, channel_id: str) -> list[str]:
        """conversations.members of a channel."""
        with self.lock:
            return self._chan(channel_id).info.member_ids(self.team)

    def join(self, channel_id: str, apply: bool = True) -> tuple[dict, bool]:
        """Make the bot a member; returns the channel object and whether it already was."""
        with self.lock:
            info = self._chan(channel_id).info
            already = info.is_member
            if apply and not already:
                info.is_member = True
            obj = info.as_api(self.team)
            if not apply and not already:
                obj["is_member"] = True
                obj["num_members"] += 1
            return obj, already

    # -- public read API -------------------------------------------------------------------------
    def channels(self) -> list[dict]:
        """Every channel object (public, private, archived) as conversations.list shows it."""
        with self.lock:
            return [ch.info.as_api(self.team) for ch in self._channels]

    def channel(self, channel_id: str) -> dict:
        """One channel object as conversations.list shows it (``KeyError`` if unknown)."""
        with self.lock:
            return self._chan(channel_id).info.as_api(self.team)

    def users(self) -> list[dict]:
        """Every user object as users.list shows it (emails included)."""
        return copy.deepcopy(self._users)

    def add_user(self, name: str, real_name: str = "New Member") -> str:
        """A new member joins the workspace (users.list shows it from now on); its id."""
        with self.lock:
            user = copy.deepcopy(self._users[0])
            uid = slack_id("U", hash_of(self.spec.seed, 900, len(self._users)))
            email = f"{name}@{user['profile']['email'].partition('@')[2]}"
            user.update(
                id=uid, name=name, real_name=real_name, deleted=False, updated=int(time.time())
            )
            user.update(is_admin=False, is_owner=False, is_primary_owner=False)
            user["profile"].update(
                real_name=real_name,
                real_name_normalized=real_name,
                display_name=name,
                display_name_normalized=name,
                email=email,
            )
            self._users.append(user)
            return uid

    def leave_channel(self, channel_id: str, user_id: str) -> None:
        """A member leaves a channel (conversations.members no longer lists them)."""
        with self.lock:
            self._chan(channel_id).info.members.remove(user_id)

    def user_groups(self, include_disabled: bool = True) -> list[dict]:
        """User groups as usergroups.list shows them with ``include_users`` (a copy): two
        enabled groups over the humans, one disabled; made on first use, then mutable."""
        with self.lock:
            if not hasattr(self, "_groups"):
                humans = [u["id"] for u in self._users[: self.spec.users] if not u["deleted"]]
                halves = (humans[: len(humans) // 2], humans[len(humans) // 2 :], humans[:1])
                self._groups = [
                    self._user_group(k, handle, users, disabled=k == 2)
                    for k, (handle, users) in enumerate(
                        zip(("eng", "support", "old-team"), halves, strict=True)
                    )
                ]
            groups = [g for g in self._groups if include_disabled or not g["date_delete"]]
            return copy.deepcopy(groups)

    def _user_group(self, k: int, handle: str, users: list[str], disabled: bool) -> dict:
        created = int(self.now) - 86400 * (30 + k)
        return {
            "id": slack_id("S", hash_of(self.spec.seed, 400, k)),
            "team_id": self.team.id,
            "is_usergroup": True,
            "name": handle.replace("-", " ").title(),
            "description": f"The {handle} team",
            "handle": handle,
            "is_external": False,
            "date_create": created,
            "date_update": created,
            "date_delete": created + 86400 if disabled else 0,
            "auto_type": None,
            "created_by": self._default_user,
            "updated_by": self._default_user,
            "deleted_by": self._default_user if disabled else None,
            "prefs": {"channels": [], "groups": []},
            "users": list(users),
            "user_count": len(users),
        }

    def set_user_group_users(self, group_id: str, users: list[str]) -> None:
        """Replace a group's members (usergroups.users.update)."""
        with self.lock:
            self.user_groups()
            group = next(g for g in self._groups if g["id"] == group_id)
            group["users"] = list(users)
            group["user_count"] = len(users)

    def user_objects(self) -> list[dict]:
        """The shared user dicts (read-only; for the HTTP layer, which copies what it changes)."""
        return self._users

    def message_count(self) -> int:
        """Number of messages ``ground_truth`` yields (tombstones of threads included)."""
        with self.lock:
            return self._count

    def thread_parents(self, channel_id: str | None = None) -> list[tuple[str, str]]:
        """``(channel_id, ts)`` of every message that currently has replies."""
        with self.lock:
            chans = [self._chan(channel_id)] if channel_id else self._channels
            return [
                (ch.info.id, fmt_ts(p)) for ch in chans for p in sorted(ch.threads) if ch.threads[p]
            ]

    def ts_at_days_ago(self, channel_id: str, days: float) -> str:
        """ts of the top-level message closest to ``now - days`` (no broadcast, no tombstone)."""
        target = self.now_us - int(days * 86400 * US_PER_S)
        with self.lock:
            ch = self._chan(channel_id)
            best: int | None = None
            older = self._history_desc(ch, target, 0)
            newer = self._history_asc(ch, target + 1)
            for it in (older, newer):
                for t in it:
                    if t in ch.reply_parent or t in ch.tombstones:
                        continue
                    if best is None or abs(t - target) < abs(best - target):
                        best = t
                    break
            if best is None:
                raise KeyError(f"no messages in {channel_id}")
            return fmt_ts(best)

    def ground_truth(self, channel_id: str | None = None) -> Iterator[dict]:
        """Every message once (top-level, replies, broadcasts, thread tombstones) plus
        ``channel_id``: per channel, oldest first, each thread's replies after its parent."""
        return self._ground_truth(channel_id, wire=False)

    def _ground_truth(self, channel_id: str | None, wire: bool) -> Iterator[dict]:
        """Validate eagerly (unknown channel -> ``KeyError`` now), iterate lazily."""
        with self.lock:
            chans = [self._chan(channel_id)] if channel_id else list(self._channels)
        return self._iter_truth(chans, wire)

    def _iter_truth(self, chans: list[_Channel], wire: bool) -> Iterator[dict]:
        for ch in chans:
            cid = ch.info.id
            lo = 0
            while True:
                with self.lock:
                    batch: list[dict] = []
                    stamps = list(islice(self._history_asc(ch, lo), GROUND_TRUTH_BATCH))
                    for t in stamps:
                        if t in ch.reply_parent:
                            continue  # a broadcast: listed with its thread
                        batch.append(self._render(ch, t, wire))
                        for r in ch.threads.get(t, ()):
                            batch.append(self._render(ch, r, wire))
                for msg in batch:
                    msg["channel_id"] = cid
                    yield msg
                if len(stamps) < GROUND_TRUTH_BATCH:
                    break
                lo = stamps[-1] + 1

    def channel_messages(
        self, channel_id: str, lo: int = 0, hi: int | None = None, wire: bool = True
    ) -> Iterator[dict]:
        """Every message of a channel with ``lo <= ts < hi`` (int microseconds) in ``ts`` order,
        replies interleaved where they were posted, each message once (a broadcast too).

        This is the order of a Slack export's day files (ground truth lists each thread after
        its parent instead). Parents carry ``replies: [{user, ts}]`` as exports show them.
        """
        with self.lock:
            ch = self._chan(channel_id)
            stamps = set(self._history_asc(ch, lo))
            for replies in ch.threads.values():
                stamps.update(replies)
            ordered = sorted(t for t in stamps if t >= lo and (hi is None or t < hi))
        for first in range(0, len(ordered), GROUND_TRUTH_BATCH):
            with self.lock:
                batch = []
                for t in ordered[first : first + GROUND_TRUTH_BATCH]:
                    if not (self._top_present(ch, t) or t in ch.reply_parent):
                        continue  # deleted between listing and rendering
                    msg = self._render(ch, t, wire)
                    replies = ch.threads.get(t) if t not in ch.reply_parent else None
                    if replies:
                        msg["replies"] = [
                            {"user": self._user_of(ch, r), "ts": fmt_ts(r)} for r in replies
                        ]
                    batch.append(msg)
            yield from batch

    # -- mutations -------------------------------------------------------------------------------
    def _new_ts(self, ch: _Channel, ts: str | float | None, after: int = 0) -> int:
        if ts is None:
            t = max(int(time.time() * US_PER_S), ch.max_ts + 1, after + 1)
        else:
            t = _to_us(ts)
            if self._taken(ch, t):
                raise ValueError(f"ts {fmt_ts(t)} already exists in {ch.info.id}")
            if t <= after:
                raise ValueError("a reply's ts must be after its parent's")
        ch.max_ts = max(ch.max_ts, t)
        return t

    def post_message(
        self, channel_id: str, text: str = "hi", user: str | None = None, ts: str | None = None
    ) -> str:
        """Post a top-level message; ``ts=None`` -> now, strictly after everything in the
        channel."""
        with self.lock:
            ch = self._chan(channel_id)
            t = self._new_ts(ch, ts)
            ch.posted[t] = _Posted(user or self._default_user, text, None, False)
            insort(ch.extra, t)
            self._count += 1
            return fmt_ts(t)

    def post_reply(
        self,
        channel_id: str,
        thread_ts: str,
        text: str = "r",
        user: str | None = None,
        ts: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Reply in a thread (a reply's ts means its thread); updates the parent's fields."""
        with self.lock:
            ch = self._chan(channel_id)
            parent = _to_us(thread_ts)
            parent = ch.reply_parent.get(parent, parent)
            if not self._top_present(ch, parent) or parent in ch.tombstones:
                raise KeyError(f"thread_not_found: {thread_ts}")
            t = self._new_ts(ch, ts, after=parent)
            ch.posted[t] = _Posted(user or self._default_user, text, parent, broadcast)
            ch.reply_parent[t] = parent
            insort(ch.threads.setdefault(parent, []), t)
            ch.reply_users.pop(parent, None)
            if broadcast:
                insort(ch.extra, t)
            self._count += 1
            return fmt_ts(t)

    def _existing(self, ch: _Channel, ts: str) -> int:
        t = _to_us(ts)
        if t in ch.reply_parent or (self._top_present(ch, t) and t not in ch.tombstones):
            return t
        raise KeyError(f"message_not_found: {ts}")

    def edit_message(self, channel_id: str, ts: str, text: str) -> None:
        """Replace a message's text; adds ``edited{user, ts}``."""
        with self.lock:
            ch = self._chan(channel_id)
            t = self._existing(ch, ts)
            edited_at = max(int(time.time() * US_PER_S), t + 1)
            ch.edits[t] = (text, {"user": self._user_of(ch, t), "ts": fmt_ts(edited_at)})

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Delete a message; a parent with replies becomes a tombstone."""
        with self.lock:
            ch = self._chan(channel_id)
            t = self._existing(ch, ts)
            ch.edits.pop(t, None)
            ch.reactions.pop(t, None)
            parent = ch.reply_parent.pop(t, None)
            if parent is None:
                if ch.threads.get(t):
                    ch.tombstones.add(t)
                else:
                    self._remove_top(ch, t)
                return
            replies = ch.threads[parent]
            replies.pop(bisect_left(replies, t))
            ch.reply_users.pop(parent, None)
            self._drop_extra(ch, t)
            ch.posted.pop(t, None)
            self._count -= 1
            if not replies and parent in ch.tombstones:
                ch.tombstones.discard(parent)
                self._remove_top(ch, parent)

    def _drop_extra(self, ch: _Channel, t: int) -> None:
        k = bisect_left(ch.extra, t)
        if k < len(ch.extra) and ch.extra[k] == t:
            ch.extra.pop(k)

    def _remove_top(self, ch: _Channel, t: int) -> None:
        if ch.posted.pop(t, None) is not None:
            self._drop_extra(ch, t)
        else:
            ch.deleted.add(t)
        ch.threads.pop(t, None)
        ch.reply_users.pop(t, None)
        self._count -= 1

    def add_reaction(self, channel_id: str, ts: str, name: str, user: str) -> None:
        """Add ``user``'s reaction ``name`` (``ValueError`` if already reacted)."""
        with self.lock:
            ch = self._chan(channel_id)
            t = self._existing(ch, ts)
            reactions = ch.reactions.get(t)
            if reactions is None:
                reactions = self._render(ch, t, wire=False).get("reactions", [])
            for r in reactions:
                if r["name"] == name:
                    if user in r["users"]:
                        raise ValueError("already_reacted")
                    r["users"].append(user)
                    r["count"] += 1
                    break
            else:
                reactions.append({"name": name, "users": [user], "count": 1})
            ch.reactions[t] = reactions

    def remove_reaction(self, channel_id: str, ts: str, name: str, user: str) -> None:
        """Remove ``user``'s reaction ``name`` (``ValueError`` ``no_reaction`` if absent); a
        reaction nobody is left on disappears, as in Slack."""
        with self.lock:
            ch = self._chan(channel_id)
            t = self._existing(ch, ts)
            # the message as shown: generated reactions, or the overlay's (copied by _render)
            shown = self._render(ch, t, wire=False).get("reactions", [])
            if not any(r["name"] == name and user in r["users"] for r in shown):
                raise ValueError("no_reaction")
            left = [
                dict(r, users=[u for u in r["users"] if u != user], count=r["count"] - 1)
                if r["name"] == name
                else r
                for r in shown
            ]
            ch.reactions[t] = [r for r in left if r["users"]]

    def create_channel(self, name: str, is_private: bool = False, member: bool = True) -> str:
        """Create an empty channel; returns its id."""
        with self.lock:
            if any(ch.info.name == name for ch in self._channels):
                raise ValueError(f"name_taken: {name}")
            index = len(self._channels)
            cid = slack_id("C", hash_of(self.spec.seed, 300, index))
            while cid in self._by_id:
                index += 1000
                cid = slack_id("C", hash_of(self.spec.seed, 300, index))
            now_s = int(time.time())
            info = ChannelInfo(
                index=index,
                id=cid,
                name=name,
                is_private=is_private,
                is_archived=False,
                is_general=False,
                is_member=member,
                created=now_s,
                creator=self._default_user,
                topic="",
                purpose="",
                members=[],
                updated_ms=now_s * 1000,
            )
            key = hash_of(self.spec.seed, 300, index)
            timeline = Timeline.spread(0, self.now_us, self.now_us, key)
            self._add_channel(info, key, ChannelPlan(timeline=timeline, max_ts=self.now_us))
            return cid

    def rename_channel(self, channel_id: str, new_name: str) -> None:
        """Rename; the old name goes to ``previous_names``."""
        with self.lock:
            info = self._chan(channel_id).info
            if any(ch.info.name == new_name for ch in self._channels if ch.info is not info):
                raise ValueError(f"name_taken: {new_name}")
            info.previous_names.insert(0, info.name)
            info.name = new_name

    def archive_channel(self, channel_id: str) -> None:
        """Archive (history stays readable)."""
        with self.lock:
            self._chan(channel_id).info.is_archived = True

    def unarchive_channel(self, channel_id: str) -> None:
        """Unarchive."""
        with self.lock:
            self._chan(channel_id).info.is_archived = False
