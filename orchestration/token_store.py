"""Rotating Slack tokens on Prefect: the current pair in a Secret block, refreshes under a
global concurrency limit, both named per workspace.

Why a `Secret` block: every worker, served process and one-off run of a deployment talks to
the same Prefect API, so the block is the one place they all read and update (a file would be
per machine, a dlt secret is read-only configuration). It is stored encrypted-at-rest by the
server's database like every block, shown masked in the UI, and never appears in a flow's
parameters or logs. The CLI's one-off `run` uses the temporary server on its Prefect home
(`PREFECT_HOME`, `run.sh` prepares one), whose database keeps the block between runs too.

Why a global concurrency limit of 1 (`slack-token` / `slack-token-<workspace>`): a refresh
spends the stored refresh token, so two runs of one installation (a scheduled and a manual run,
or parallel tasks of one run on different workers) must not refresh at once; whoever waits
re-reads the block afterwards and uses the pair the first one stored (`TokenRotation`). The
limit is held only around a refresh (a second or so), not for the run. A killed holder's slot
frees itself when its lease runs out.

Names: `slack-token` for the single workspace, `slack-token-<name>` (underscores as dashes,
Prefect's block names allow no `_`) for one of several; a workspace name starts with a letter,
so no workspace can take the single workspace's name.
"""

import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Set, Tuple

from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from slack_source import RotationCredentials, TokenRotation, TokenStore
from slack_source.token_rotation import digest

from .one_off_api import PrefectApiUnavailable, wait_for_one_off_api
from .run_settings import RunSettings, source_rotation_credentials, source_settings

STORE_PREFIX = "slack-token"
ROTATION_FIELDS = ("refresh_token", "client_id", "client_secret")
LOCK_TIMEOUT_S = 600.0  # waiting longer for another run's refresh means it is stuck


def store_name(workspace: Optional[str]) -> str:
    """The Secret block and the concurrency limit of a workspace's pair."""
    return STORE_PREFIX if workspace is None else f"{STORE_PREFIX}-{workspace.replace('_', '-')}"


def ensure_lock_limit(name: str) -> None:
    """Create the limit of one slot unless it exists: read first, so that a server does not
    log a failed insert (a temporary server's log is the console of a one-off run)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass  # another process created it meanwhile


_limits: Set[str] = set()
_limits_lock = threading.Lock()


def api_ready() -> None:
    """A one-off run's API (started at the top of the flow file) answers before the store
    uses it: the pre-flight reads the pair while that server may still be booting."""
    problem = wait_for_one_off_api()
    if problem:
        raise PrefectApiUnavailable(problem)


class PrefectTokenStore(TokenStore):
    """The pair in a Secret block (a JSON dict), the lock a global concurrency limit of 1."""

    def __init__(self, name: str) -> None:
        self.name = name

    def read(self) -> Optional[Dict[str, Any]]:
        api_ready()
        try:
            value = Secret.load(self.name, _sync=True).get()  # type: ignore[call-arg]
        except ValueError:  # no such block yet: the seed is used
            return None
        return value if isinstance(value, dict) else None

    def write(self, pair: Dict[str, Any]) -> None:
        api_ready()
        Secret(value=pair).save(self.name, overwrite=True, _sync=True)  # type: ignore[call-arg]

    @contextmanager
    def lock(self) -> Iterator[None]:
        api_ready()
        with _limits_lock:  # created once per process (two creating it at once: both fine)
            if self.name not in _limits:
                ensure_lock_limit(self.name)
                _limits.add(self.name)
        with concurrency(self.name, occupy=1, strict=True, timeout_seconds=LOCK_TIMEOUT_S):
            yield


def rotation_credentials(settings: RunSettings) -> Optional[RotationCredentials]:
    """The run's rotation settings, None when no refresh token is configured (rotation off).
    A workspace's client id and secret default to `sources.slack.*`'s: one app, many
    installations; its refresh token never does."""
    source = source_settings()
    if settings.workspace is None:
        return source_rotation_credentials(source)
    from .workspaces import load_workspace

    workspace = load_workspace(settings.workspace)
    if not workspace.refresh_token:
        return None
    env = f"SLACK_PIPELINE__WORKSPACES__{settings.workspace.upper()}__"
    return RotationCredentials(
        client_id=str(workspace.client_id or source.client_id or ""),
        client_secret=str(workspace.client_secret or source.client_secret or ""),
        refresh_token=str(workspace.refresh_token),
        access_token=str(workspace.access_token or "") or None,
        settings={name: env + name.upper() for name in ROTATION_FIELDS},
    )


# One rotation per installation and process: its threads share the local lock and counter.
_rotations: Dict[Tuple[str, ...], TokenRotation] = {}
_rotations_lock = threading.Lock()


def token_rotation(settings: RunSettings, api_base_url: str) -> Optional[TokenRotation]:
    """The Prefect-backed rotation of this run's workspace, None when rotation is off.
    Raises `SlackConfigError` (one line, no value) for incomplete rotation settings."""
    credentials = rotation_credentials(settings)
    if credentials is None:
        return None
    name = store_name(settings.workspace)
    key = (
        name,
        api_base_url,
        digest(credentials.refresh_token + credentials.client_id + credentials.client_secret),
        digest(credentials.access_token or ""),
    )
    with _rotations_lock:
        if key not in _rotations:
            label = f"workspace {settings.workspace}" if settings.workspace else "single workspace"
            _rotations[key] = TokenRotation(
                PrefectTokenStore(name), credentials, api_base_url, label=label
            )
        return _rotations[key]


def rotating_connection(settings: RunSettings, api_base_url: str) -> Dict[str, Any]:
    """`make_client` / `slack_source` keyword arguments of a rotating installation: its
    current access token (refreshed first when due) and the rotation; empty when off."""
    rotation = token_rotation(settings, api_base_url)
    if rotation is None:
        return {}
    return {"access_token": rotation.access_token(), "token_rotation": rotation}
