"""Deterministic message content, generated on demand from ``(channel key, ts)``.

A pool of pre-built bodies (text + rich-text blocks, also pre-serialised as orjson Fragments)
keeps per-message work to one hash and a small dict: a 999-message page renders in a few ms.
``wire=True`` embeds the Fragments (HTTP responses); ``wire=False`` builds fresh plain objects
(ground truth, Python API) so callers may mutate what they get.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from .directory import Team, integration_bot_id
from .rng import fast_hash, fmt_ts, hash_of, mix64, slack_id, uuid_from
from .vocab import BOTS, EMOJI, FILES, LINK_HOSTS, OPENERS, WORDS

POOL_SIZE = 1024
REACTION_POOL = 256
BID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/="


@dataclass(frozen=True)
class Body:
    """Message text and its rich-text blocks (plain JSON bytes and an embeddable Fragment)."""

    text: str
    blocks_json: bytes
    blocks_fragment: orjson.Fragment


def block_id(h: int) -> str:
    """Slack-style short random block id."""
    out = []
    for _ in range(5):
        h, r = divmod(h, len(BID_ALPHABET))
        out.append(BID_ALPHABET[r])
    return "".join(out)


def blocks_for_text(text: str, h: int) -> list[dict]:
    """Rich-text blocks Slack attaches to a plain posted or edited message."""
    return [
        {
            "type": "rich_text",
            "block_id": block_id(h),
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


class _BodyBuilder:
    """Builds one random body: mrkdwn text and the equivalent nested rich_text block."""

    def __init__(self, rng: random.Random, mention_ids: list[str]) -> None:
        self.rng = rng
        self.mentions = mention_ids

    def section(self) -> tuple[str, list[dict]]:
        rng = self.rng
        text_parts: list[str] = []
        elements: list[dict] = []
        opener = rng.choice(OPENERS)
        if opener:
            text_parts.append(opener + " ")
            elements.append({"type": "text", "text": opener + " "})
        if self.mentions and rng.random() < 0.2:
            uid = rng.choice(self.mentions)
            text_parts.append(f"<@{uid}> ")
            elements.append({"type": "user", "user_id": uid})
            elements.append({"type": "text", "text": " "})
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 14)))
        if rng.random() < 0.15:
            head, _, tail = words.partition(" ")
            text_parts.append(f"*{head}* {tail}")
            elements.append({"type": "text", "text": head, "style": {"bold": True}})
            elements.append({"type": "text", "text": f" {tail}"})
        else:
            text_parts.append(words)
            elements.append({"type": "text", "text": words})
        if rng.random() < 0.15:
            host = rng.choice(LINK_HOSTS)
            url = f"https://{host}/{rng.choice(WORDS)}/{rng.randrange(1, 9999)}"
            text_parts.append(f" <{url}>")
            elements.append({"type": "text", "text": " "})
            elements.append({"type": "link", "url": url})
        if rng.random() < 0.2:
            name, code = rng.choice(EMOJI)
            text_parts.append(f" :{name}:")
            elements.append({"type": "text", "text": " "})
            elements.append({"type": "emoji", "name": name, "unicode": code})
        return "".join(text_parts), elements

    def body(self) -> Body:
        rng = self.rng
        text, elements = self.section()
        inner: list[dict] = [{"type": "rich_text_section", "elements": elements}]
        roll = rng.random()
        if roll < 0.15:
            items = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6)))
                for _ in range(rng.randrange(2, 5))
            ]
            text += "\n" + "\n".join(f"• {item}" for item in items)
            inner.append(
                {
                    "type": "rich_text_list",
                    "style": "bullet",
                    "indent": 0,
                    "border": 0,
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": item}]}
                        for item in items
                    ],
                }
            )
        elif roll < 0.25:
            quote = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 8)))
            text += f"\n&gt; {quote}"
            inner.append({"type": "rich_text_quote", "elements": [{"type": "text", "text": quote}]})
        elif roll < 0.33:
            code = f"SELECT count(*) FROM {rng.choice(WORDS)} WHERE id = {rng.randrange(100)};"
            text += f"\n```{code}```"
            inner.append(
                {
                    "type": "rich_text_preformatted",
                    "border": 0,
                    "elements": [{"type": "text", "text": code}],
                }
            )
        blocks = [
            {"type": "rich_text", "block_id": block_id(rng.getrandbits(40)), "elements": inner}
        ]
        raw = orjson.dumps(blocks)
        return Body(text=text, blocks_json=raw, blocks_fragment=orjson.Fragment(raw))


class ContentGenerator:
    """Renders generated messages; every field is a function of ``(channel key, ts)``."""

    def __init__(
        self,
        seed: int,
        team: Team,
        authors: list[str],
        now_us: int,
        profiles: dict[str, dict] | None = None,
    ) -> None:
        rng = random.Random(hash_of(seed, 50))
        builder = _BodyBuilder(rng, authors)
        self.seed = seed
        self.team = team
        self.authors = authors
        self.now_us = now_us
        self.bodies = [builder.body() for _ in range(POOL_SIZE)]
        self.team_id = team.id
        self.n_authors = len(authors)
        # Slack attaches the author's short profile to every human user's message (~230 bytes
        # of the wire JSON); serialised once per author, embedded as a Fragment on the wire.
        raws = [orjson.dumps(p) if p else None for p in ((profiles or {}).get(a) for a in authors)]
        self.profiles = [(raw, orjson.Fragment(raw)) if raw else None for raw in raws]
        # client_msg_id = one of 256 UUID-shaped prefixes + 12 hex digits of the message hash
        self.uuid_prefixes = [uuid_from(rng.getrandbits(64))[:24] for _ in range(256)]
        sets = [self._reaction_set(rng) for _ in range(REACTION_POOL)]
        self.reaction_pool = [(raw, orjson.Fragment(raw)) for raw in sets]
        self.bots = [
            (integration_bot_id(seed, k), slack_id("A", hash_of(seed, 202, k)), real, color)
            for k, (real, _username, color) in enumerate(BOTS)
        ]

    # -- shared pieces -------------------------------------------------------------------------
    def author(self, channel_key: int, ts_us: int) -> str:
        """User who wrote the generated user message at ``ts_us``."""
        return self.authors[(fast_hash(channel_key, ts_us) >> 8) % self.n_authors]

    def _user_message(self, h: int, ts_us: int, ts: str, wire: bool) -> dict:
        body = self.bodies[(h >> 20) & (POOL_SIZE - 1)]
        author = (h >> 8) % self.n_authors
        user = self.authors[author]
        msg = {
            "type": "message",
            "user": user,
            "text": body.text,
            "ts": ts,
            "client_msg_id": self.uuid_prefixes[(h >> 48) & 255] + f"{h & 0xFFFFFFFFFFFF:012x}",
            "team": self.team_id,
        }
        profile = self.profiles[author] if self.profiles else None
        if profile is not None:
            msg["user_profile"] = profile[1] if wire else orjson.loads(profile[0])
        msg["blocks"] = body.blocks_fragment if wire else orjson.loads(body.blocks_json)
        features = (h >> 30) & 0x3FF  # 10 bits: one roll, features are rare
        if features < 290:
            if features < 51:  # ~5%
                delta = (h >> 37) % (3600 * 1_000_000) + 1_000_000
                edited = ts_us + delta if ts_us + delta < self.now_us else ts_us + 1
                msg["edited"] = {"user": user, "ts": fmt_ts(edited)}
            elif features < 205:  # ~15%
                msg["reactions"] = self._reactions(h, wire)
            elif features < 246:  # ~4%
                msg["files"] = [self._file(h, ts_us, user)]
                msg["upload"] = False
                msg["display_as_bot"] = False
            else:  # ~4%
                msg["attachments"] = [self._unfurl(h)]
        return msg

    def _reaction_set(self, rng: random.Random) -> bytes:
        """One generated ``reactions`` list, serialised (1-3 emoji, 1-4 users each)."""
        out: list[dict] = []
        for _ in range(rng.randrange(1, 4)):
            name = rng.choice(EMOJI)[0]
            if any(r["name"] == name for r in out):
                continue
            users = rng.sample(self.authors, rng.randrange(1, min(4, len(self.authors)) + 1))
            out.append({"name": name, "users": users, "count": len(users)})
        return orjson.dumps(out)

    def _reactions(self, h: int, wire: bool) -> object:
        raw, fragment = self.reaction_pool[(h >> 12) & (REACTION_POOL - 1)]
        return fragment if wire else orjson.loads(raw)

    def _file(self, h: int, ts_us: int, user: str) -> dict:
        h2 = mix64(h ^ 0xF11E)
        name, mimetype, filetype, pretty = FILES[h2 % len(FILES)]
        fid = slack_id("F", h2 >> 3)
        team = self.team.id
        created = ts_us // 1_000_000
        return {
            "id": fid,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": pretty,
            "user": user,
            "user_team": team,
            "editable": False,
            "size": 1000 + (h2 >> 10) % 5_000_000,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"https://files.slack.com/files-pri/{team}-{fid}/{name}",
            "url_private_download": f"https://files.slack.com/files-pri/{team}-{fid}/download/{name}",
            "permalink": f"https://{self.team.domain}.slack.com/files/{user}/{fid}/{name}",
            "is_starred": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }

    def _unfurl(self, h: int) -> dict:
        host = LINK_HOSTS[(h >> 3) % len(LINK_HOSTS)]
        word = WORDS[(h >> 9) % len(WORDS)]
        url = f"https://{host}/{word}"
        title = f"{word.capitalize()} overview"
        return {
            "from_url": url,
            "id": 1,
            "original_url": url,
            "fallback": f"{host}: {title}",
            "text": f"Everything about the {word}.",
            "title": title,
            "title_link": url,
            "service_name": host,
            "service_icon": f"https://{host}/favicon.ico",
        }

    def _bot_message(self, h: int, ts: str) -> dict:
        bot_id, app_id, name, color = self.bots[(h >> 8) % len(self.bots)]
        num = (h >> 20) % 10000
        word = WORDS[(h >> 34) % len(WORDS)]
        text = f"{name}: {word} #{num} finished"
        return {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": ts,
            "username": name,
            "bot_id": bot_id,
            "app_id": app_id,
            "attachments": [
                {
                    "id": 1,
                    "color": color,
                    "fallback": text,
                    "title": f"{word} #{num}",
                    "text": f"Job {word} #{num} finished in {(h >> 48) % 600} s",
                    "fields": [{"title": "Environment", "value": "production", "short": True}],
                }
            ],
        }

    # -- public renderers ----------------------------------------------------------------------
    def top(self, channel_key: int, ts_us: int, ts: str, force_user: bool, wire: bool) -> dict:
        """A generated top-level message (thread parents are always user messages)."""
        h = fast_hash(channel_key, ts_us)
        kind = h % 100
        if force_user or kind >= 11:
            return self._user_message(h, ts_us, ts, wire)
        if kind < 8:
            return self._bot_message(h, ts)
        user = self.authors[(h >> 8) % self.n_authors]
        return {
            "type": "message",
            "subtype": "channel_join",
            "ts": ts,
            "user": user,
            "text": f"<@{user}> has joined the channel",
        }

    def reply(self, channel_key: int, ts_us: int, ts: str, wire: bool) -> dict:
        """A generated thread reply's content (thread fields are added by the caller)."""
        return self._user_message(fast_hash(channel_key, ts_us), ts_us, ts, wire)

    def posted(self, user: str, text: str, ts_us: int, ts: str) -> dict:
        """A message posted through the mutation API."""
        h = hash_of(self.seed, ts_us, 77)
        return {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "client_msg_id": uuid_from(h),
            "team": self.team.id,
            "blocks": blocks_for_text(text, h),
        }
