"""Users and channel skeletons of the generated workspace (small, built eagerly)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .config import WorkspaceSpec
from .rng import hash_of, slack_id, text_key
from .vocab import BOTS, CHANNEL_WORDS, FIRST_NAMES, LAST_NAMES, TIMEZONES

SLACKBOT_ID = "USLACKBOT"
# conversations.list ``types`` -> (read scope, history scope), as Slack's docs name them
CONVERSATION_SCOPES: dict[str, tuple[str, str]] = {
    "public_channel": ("channels:read", "channels:history"),
    "private_channel": ("groups:read", "groups:history"),
    "mpim": ("mpim:read", "mpim:history"),
    "im": ("im:read", "im:history"),
}
DOMAIN = "emulator.example.com"


@dataclass
class Team:
    """Identity of the workspace and of the emulator's own bot."""

    id: str
    name: str
    domain: str
    bot_user_id: str
    bot_id: str
    app_id: str


@dataclass
class ChannelInfo:
    """Mutable channel metadata; the API's channel object is rendered from it."""

    index: int
    id: str
    name: str
    is_private: bool
    is_archived: bool
    is_general: bool
    is_member: bool
    created: int
    creator: str
    topic: str
    purpose: str
    members: list[str]
    previous_names: list[str] = field(default_factory=list)
    updated_ms: int = 0
    kind: str = "channel"  # "channel", "im" (a 1:1 DM) or "mpim" (a group DM)
    user: str = ""  # an im's counterpart

    @property
    def conversation_type(self) -> str:
        """Its ``types`` value in conversations.list."""
        if self.kind != "channel":
            return self.kind
        return "private_channel" if self.is_private else "public_channel"

    @property
    def scopes(self) -> tuple[str, str]:
        """(read scope, history scope) of its kind."""
        return CONVERSATION_SCOPES[self.conversation_type]

    def as_api(self, team: Team) -> dict:
        """The channel object as conversations.list / conversations.join show it."""
        if self.kind == "im":
            return self._im_api(team)
        members = len(self.members) + (1 if self.is_member else 0)
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": team.id,
            "updated": self.updated_ms,
            "parent_conversation": None,
            "creator": self.creator,
            "is_ext_shared": False,
            "shared_team_ids": [team.id],
            "pending_connected_team_ids": [],
            "is_member": self.is_member,
            "topic": {
                "value": self.topic,
                "creator": self.creator if self.topic else "",
                "last_set": self.created if self.topic else 0,
            },
            "purpose": {
                "value": self.purpose,
                "creator": self.creator if self.purpose else "",
                "last_set": self.created if self.purpose else 0,
            },
            "previous_names": list(self.previous_names),
            "num_members": members,
            **(
                {"is_channel": False, "is_mpim": True, "is_open": True}
                if self.kind == "mpim"
                else {}
            ),
        }

    def _im_api(self, team: Team) -> dict:
        """A 1:1 DM as conversations.list shows it: no name or membership flags, the
        counterpart in ``user``."""
        return {
            "id": self.id,
            "created": self.created,
            "is_archived": False,
            "is_im": True,
            "is_org_shared": False,
            "context_team_id": team.id,
            "updated": self.updated_ms,
            "user": self.user,
            "is_user_deleted": False,
            "priority": 0,
        }

    def member_ids(self, team: Team) -> list[str]:
        """Member user ids in a stable order (the bot last when it is a member)."""
        return self.members + ([team.bot_user_id] if self.is_member else [])


def make_team(seed: int) -> Team:
    """Team and bot identities derived from the seed."""
    return Team(
        id=slack_id("T", hash_of(seed, 1)),
        name="Emulator Workspace",
        domain="emulator-workspace",
        bot_user_id=slack_id("U", hash_of(seed, 2)),
        bot_id=slack_id("B", hash_of(seed, 3)),
        app_id=slack_id("A", hash_of(seed, 4)),
    )


def _profile(team: Team, uid: str, real: str, display: str, email: str | None) -> dict:
    avatar = f"{hash_of(text_key(uid)) & 0xFFFFFFFFFFFF:012x}"
    first, _, last = real.partition(" ")
    profile = {
        "title": "",
        "phone": "",
        "skype": "",
        "real_name": real,
        "real_name_normalized": real,
        "display_name": display,
        "display_name_normalized": display,
        "fields": None,
        "status_text": "",
        "status_emoji": "",
        "status_expiration": 0,
        "avatar_hash": avatar,
        "first_name": first,
        "last_name": last,
    }
    if email is not None:
        profile["email"] = email
    for size in (24, 32, 48, 72, 192, 512):
        profile[f"image_{size}"] = f"https://avatars.slack-edge.com/{avatar}_{size}.png"
    profile["team"] = team.id
    return profile


def make_users(spec: WorkspaceSpec, team: Team, now_s: int) -> list[dict]:
    """users.list members: humans (some deleted), integration bots, the app bot and Slackbot."""
    rng = random.Random(hash_of(spec.seed, 10))
    users: list[dict] = []
    deleted_any = False
    for i in range(spec.users):
        first = FIRST_NAMES[(i + spec.seed) % len(FIRST_NAMES)]
        last = LAST_NAMES[(i * 7 + spec.seed) % len(LAST_NAMES)]
        real = f"{first} {last}"
        name = f"{first}.{last}".lower() + (f"{i}" if i >= len(FIRST_NAMES) else "")
        uid = slack_id("U", hash_of(spec.seed, 100, i))
        tz, tz_label, tz_offset = TIMEZONES[rng.randrange(len(TIMEZONES))]
        deleted = i > 0 and rng.random() < 0.1
        if not deleted and not deleted_any and spec.users >= 3 and i == spec.users - 1:
            deleted = True
        deleted_any = deleted_any or deleted
        display = first.lower() if rng.random() < 0.7 else ""
        users.append(
            {
                "id": uid,
                "team_id": team.id,
                "name": name,
                "deleted": deleted,
                "color": f"{rng.randrange(1 << 24):06x}",
                "real_name": real,
                "tz": tz,
                "tz_label": tz_label,
                "tz_offset": tz_offset,
                "profile": _profile(team, uid, real, display, f"{name}@{DOMAIN}"),
                "is_admin": i in (0, 1),
                "is_owner": i == 0,
                "is_primary_owner": i == 0,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "is_bot": False,
                "is_app_user": False,
                "updated": now_s - rng.randrange(1, 400) * 86400,
                "is_email_confirmed": True,
                "who_can_share_contact_card": "EVERYONE",
            }
        )
    for k, (real, username, _color) in enumerate(BOTS):
        uid = slack_id("U", hash_of(spec.seed, 200, k))
        profile = _profile(team, uid, real, "", None)
        profile["bot_id"] = integration_bot_id(spec.seed, k)
        profile["always_active"] = True
        users.append(_bot_user(team, uid, username, real, profile, now_s))
    profile = _profile(team, team.bot_user_id, "Emulator Bot", "", None)
    profile.update({"bot_id": team.bot_id, "api_app_id": team.app_id, "always_active": True})
    users.append(_bot_user(team, team.bot_user_id, "emulator-bot", "Emulator Bot", profile, now_s))
    slackbot = _bot_user(
        team,
        SLACKBOT_ID,
        "slackbot",
        "Slackbot",
        _profile(team, SLACKBOT_ID, "Slackbot", "Slackbot", None),
        0,
    )
    slackbot["is_bot"] = False  # Slack reports Slackbot as a non-bot user
    slackbot["profile"]["always_active"] = True
    users.append(slackbot)
    return users


def _bot_user(team: Team, uid: str, name: str, real: str, profile: dict, updated: int) -> dict:
    return {
        "id": uid,
        "team_id": team.id,
        "name": name,
        "deleted": False,
        "color": "757575",
        "real_name": real,
        "tz": "America/Los_Angeles",
        "tz_label": "Pacific Standard Time",
        "tz_offset": -28800,
        "profile": profile,
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": True,
        "is_app_user": False,
        "updated": updated,
        "is_email_confirmed": False,
        "who_can_share_contact_card": "EVERYONE",
    }


def integration_bot_id(seed: int, k: int) -> str:
    """bot_id of the k-th integration bot (used by ``bot_message`` messages)."""
    return slack_id("B", hash_of(seed, 201, k))


def channel_names(n: int) -> list[str]:
    """``general`` then unique names from the vocabulary (suffixed when it runs out)."""
    names = ["general"]
    i = 0
    while len(names) < n:
        word = CHANNEL_WORDS[i % len(CHANNEL_WORDS)]
        rnd = i // len(CHANNEL_WORDS)
        names.append(word if rnd == 0 else f"{word}-{rnd + 1}")
        i += 1
    return names


def make_channels(
    spec: WorkspaceSpec, team: Team, humans: list[dict], now_s: int
) -> list[ChannelInfo]:
    """Channel skeletons in id order: general, public, non-member, archived, private."""
    rng = random.Random(hash_of(spec.seed, 20))
    names = channel_names(spec.channels)
    n_priv, n_arch, n_non = spec.private_channels, spec.archived_channels, spec.non_member_channels
    n_plain = spec.channels - 1 - n_priv - n_arch - n_non
    kinds = ["general"] + ["public"] * n_plain + ["non_member"] * n_non
    kinds += ["archived"] * n_arch + ["private"] * n_priv
    active = [u["id"] for u in humans if not u["deleted"]] or [humans[0]["id"]]
    owner = humans[0]["id"]
    channels = []
    for i, (kind, name) in enumerate(zip(kinds, names, strict=True)):
        if kind == "private":
            name = f"private-{name}"
        created = now_s - int(spec.days * 86400) - rng.randrange(86400, 400 * 86400)
        if kind == "general":
            members = list(active)
        else:
            k = max(1, min(len(active), rng.randrange(2, len(active) + 2)))
            members = sorted(rng.sample(active, k), key=active.index)
        channels.append(
            ChannelInfo(
                index=i,
                id=slack_id("C", hash_of(spec.seed, 300, i)),
                name=name,
                is_private=kind == "private",
                is_archived=kind == "archived",
                is_general=kind == "general",
                is_member=kind != "non_member",
                created=created,
                creator=owner,
                topic="" if rng.random() < 0.3 else f"All things {name}",
                purpose=f"This channel is for {name}." if rng.random() < 0.8 else "",
                members=members,
                updated_ms=created * 1000 + rng.randrange(1000),
            )
        )
    return channels + make_direct_messages(spec, humans, now_s, len(channels))


def make_direct_messages(
    spec: WorkspaceSpec, humans: list[dict], now_s: int, first_index: int
) -> list[ChannelInfo]:
    """The bot's 1:1 DMs (``D…``, one per active user in turn) and group DMs (``G…``, the bot
    and two to four users, named ``mpdm-a--b--c-1`` as Slack names them), after the channels:
    a workspace without them is generated exactly as before."""
    rng = random.Random(hash_of(spec.seed, 21))
    active = [u for u in humans if not u["deleted"]] or humans[:1]
    out: list[ChannelInfo] = []
    for k in range(spec.dms + spec.group_dms):
        index = first_index + k
        im = k < spec.dms
        if im:
            people = [active[k % len(active)]]
        else:
            people = sorted(
                rng.sample(active, min(len(active), rng.randrange(2, 5))), key=humans.index
            )
        created = now_s - int(spec.days * 86400) - rng.randrange(86400, 400 * 86400)
        handles = "--".join(u["name"] for u in people)
        out.append(
            ChannelInfo(
                index=index,
                id=slack_id("D" if im else "G", hash_of(spec.seed, 300, index)),
                name="" if im else f"mpdm-{handles}-1",
                is_private=True,
                is_archived=False,
                is_general=False,
                is_member=True,
                created=created,
                creator=people[0]["id"],
                topic="",
                purpose="" if im else "Group messaging",
                members=[u["id"] for u in people],
                updated_ms=created * 1000 + rng.randrange(1000),
                kind="im" if im else "mpim",
                user=people[0]["id"] if im else "",
            )
        )
    return out


# The short profile Slack attaches to a human user's message (history, replies, exports).
USER_PROFILE_FIELDS = ("avatar_hash", "image_72", "first_name", "real_name", "display_name")


def user_profiles(users: list[dict]) -> dict[str, dict]:
    """The short ``user_profile`` an export attaches to each human user's message."""
    out: dict[str, dict] = {}
    for user in users:
        if user.get("is_bot") or user["id"] == "USLACKBOT":
            continue
        profile = user.get("profile", {})
        short = {key: profile.get(key, "") for key in USER_PROFILE_FIELDS}
        short.update(
            team=user.get("team_id"),
            name=user.get("name"),
            is_restricted=user.get("is_restricted", False),
            is_ultra_restricted=user.get("is_ultra_restricted", False),
        )
        out[user["id"]] = short
    return out
