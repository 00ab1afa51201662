"""PII modes on DuckDB with the emulated workspace: no raw email survives `hash` or `drop`."""

import hashlib
import hmac
from pathlib import Path
from typing import List, Tuple

import pytest

from slack_source import SlackConfigError, slack_source
from slack_source.pii import pseudonymize_messages, pseudonymize_users
from tests.helpers import DATASET, TOKEN, make_test_pipeline, query
from tooling.slack_emulator import EmulatorServer, Workspace

SALT = "test-salt-not-secret"


def _load_users(server: EmulatorServer, tmp_path: Path, **pii: str) -> Tuple[object, List[str]]:
    pipeline = make_test_pipeline(tmp_path)
    source = slack_source(
        access_token=TOKEN, api_base_url=server.base_url, rate_limit_profile="off", **pii
    ).with_resources("users")
    pipeline.run(source).raise_on_failed_jobs()
    return pipeline, [
        t[0]
        for t in query(
            pipeline,
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{DATASET}'",
        )
    ]


def _all_values(pipeline: object, tables: List[str]) -> List[str]:
    """Every non-null value of every column of every table in the dataset, as text."""
    values: List[str] = []
    for table in tables:
        columns = [
            c[0]
            for c in query(
                pipeline,
                "SELECT column_name FROM information_schema.columns"
                f" WHERE table_schema = '{DATASET}' AND table_name = '{table}'",
            )
        ]
        for column in columns:
            rows = query(pipeline, f'SELECT CAST("{column}" AS VARCHAR) FROM {DATASET}."{table}"')
            values.extend(r[0] for r in rows if r[0] is not None)
    return values


def _emails(workspace: Workspace) -> List[str]:
    emails = [u["profile"]["email"] for u in workspace.users() if u["profile"].get("email")]
    assert emails, "the emulated workspace should have users with emails"
    return emails


def _columns(pipeline: object, table: str) -> List[str]:
    return [
        c[0]
        for c in query(
            pipeline,
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = '{table}'",
        )
    ]


def test_off_loads_emails(emulator: Tuple[Workspace, EmulatorServer], tmp_path: Path) -> None:
    """Control: without a mode the scan does find the emails (so the scan itself works)."""
    workspace, server = emulator
    pipeline, tables = _load_users(server, tmp_path)
    values = _all_values(pipeline, tables)
    assert set(_emails(workspace)) <= set(values)


def test_hash_leaves_no_raw_email_anywhere(
    emulator: Tuple[Workspace, EmulatorServer], tmp_path: Path
) -> None:
    workspace, server = emulator
    pipeline, tables = _load_users(server, tmp_path, pii_mode="hash", pii_salt=SALT)
    values = _all_values(pipeline, tables)
    blob = "\n".join(values).lower()
    people = [u for u in workspace.users() if u["profile"].get("email")]
    for user in people:
        assert user["profile"]["email"].lower() not in blob
        assert user["profile"]["real_name"] not in values
        assert user["name"] not in values
    # the hash is a keyed HMAC-SHA256: stable, so it can still be joined on
    first = people[0]
    expected = hmac.new(
        SALT.encode(), first["profile"]["email"].encode(), hashlib.sha256
    ).hexdigest()
    rows = query(pipeline, f"SELECT profile__email FROM {DATASET}.users WHERE id = '{first['id']}'")
    assert rows == [(expected,)]


def test_hash_salt_from_secrets(
    emulator: Tuple[Workspace, EmulatorServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sources.slack.pii_mode` / `sources.slack.pii_salt` from config (env here)."""
    workspace, server = emulator
    monkeypatch.setenv("SOURCES__SLACK__PII_MODE", "hash")
    monkeypatch.setenv("SOURCES__SLACK__PII_SALT", SALT)
    pipeline, tables = _load_users(server, tmp_path)
    blob = "\n".join(_all_values(pipeline, tables)).lower()
    for email in _emails(workspace):
        assert email.lower() not in blob


def test_drop_removes_the_fields(
    emulator: Tuple[Workspace, EmulatorServer], tmp_path: Path
) -> None:
    workspace, server = emulator
    pipeline, tables = _load_users(server, tmp_path, pii_mode="drop")
    columns = set(_columns(pipeline, "users"))
    assert "id" in columns
    for gone in (
        "name",
        "real_name",
        "profile__email",
        "profile__real_name",
        "profile__display_name",
    ):
        assert gone not in columns
    blob = "\n".join(_all_values(pipeline, tables)).lower()
    for email in _emails(workspace):
        assert email.lower() not in blob
    n_users = query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.users")[0][0]
    assert n_users == len(workspace.users())


def test_hash_without_salt_is_a_clear_error(
    emulator: Tuple[Workspace, EmulatorServer],
) -> None:
    _, server = emulator
    with pytest.raises(Exception) as error:
        slack_source(access_token=TOKEN, api_base_url=server.base_url, pii_mode="hash")
    assert "pii_salt" in str(error.value)
    assert isinstance(error.value, SlackConfigError) or isinstance(
        error.value.__cause__, SlackConfigError
    )


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(SlackConfigError, match="pii_mode"):
        pseudonymize_users("mask")


def test_message_user_profile_is_scrubbed_and_rows_are_copied() -> None:
    row = {
        "channel_id": "C1",
        "ts": "1.0",
        "user": "U1",
        "text": "hi",
        "user_profile": {"real_name": "Ada Lovelace", "name": "ada", "image_72": "x"},
    }
    hashed = pseudonymize_messages("hash", SALT)(row)
    assert hashed["user_profile"]["real_name"] != "Ada Lovelace"
    assert len(hashed["user_profile"]["real_name"]) == 64
    assert hashed["user_profile"]["image_72"] == "x"
    assert hashed["text"] == "hi" and hashed["user"] == "U1"
    assert row["user_profile"]["real_name"] == "Ada Lovelace"  # not changed in place
    dropped = pseudonymize_messages("drop")(row)
    assert dropped["user_profile"] == {"image_72": "x"}
    plain = {"channel_id": "C1", "ts": "2.0"}
    assert pseudonymize_messages("hash", SALT)(plain) is plain


def test_broadcast_root_user_profile_is_scrubbed() -> None:
    """A thread_broadcast carries its parent in `root`, the parent's `user_profile` with it."""
    profile = {"real_name": "Ada Lovelace", "name": "ada", "image_72": "x"}
    root = {"ts": "1.0", "user_profile": profile}
    row = {"ts": "2.0", "subtype": "thread_broadcast", "root": root}
    hashed = pseudonymize_messages("hash", SALT)(row)
    assert len(hashed["root"]["user_profile"]["real_name"]) == 64
    assert hashed["root"]["ts"] == "1.0"
    assert row["root"]["user_profile"]["real_name"] == "Ada Lovelace"  # not changed in place
    assert pseudonymize_messages("drop")(row)["root"]["user_profile"] == {"image_72": "x"}
