"""How a run retries and how it fails: the retry policy, every layer in one place, with its
bound, and the one way a flow fails.

1. One Slack call (`slack_source.client`, tenacity around dlt's requests session): a 429, a
   5xx, a dropped connection or a malformed body is retried, at most `SLACK_CALL_ATTEMPTS` (8)
   attempts. Between them it waits Slack's `Retry-After` when sent (the pacer holds every call
   of that method meanwhile), else 1, 2, 4 ... s capped at 60 s, with jitter: at most 123 s of
   backoff, plus what Slack asks for.
2. One Prefect task (users, channels, a batch of channels' history): a transient failure that
   outlived layer 1 re-runs the task up to `TASK_RETRIES` (2) times, after 10 and 60 s.
   A re-run continues from dlt's state; never for a bad token, a missing scope or bad input
   (`retry_only_transient`). So a Slack call is tried at most 8 x 3 = 24 times over at most
   3 x 123 + 70 = 439 s of waiting, Retry-After aside.
3. The pre-flight's `auth.test`: `PREFLIGHT_ATTEMPTS` (3) attempts, at most 3 s of backoff, no
   Prefect retry (it runs in the flow, not a task): Slack being down shows within seconds.

A channel that still fails after all of this is reported, the others load, and the run ends
Failed; the next run reads it from its state.

Every flow fails the same way, for a reason it knows: it returns `failed_run(message)`, a
Failed state whose message names the cause in one line (no traceback in the run's log), after
publishing what it loaded; calling the flow raises the cause (`RunFailed`, or the bad input's
own error). Bad input is found before anything is written (`prepare.py`). Only a bug raises
through, with its traceback. The command line turns either into one line and an exit code
(`cli.py`).
"""

from typing import Any, Iterator, Optional

from prefect.states import Failed, State

from slack_source import SlackApiError, SlackConfigError

PERMANENT = (SlackApiError, SlackConfigError)
TASK_RETRIES = 2


class RunFailed(RuntimeError):
    """A flow run that did not load everything: the message names what, in one line."""


def failed_run(message: str, cause: Optional[BaseException] = None) -> State:
    """The one way a flow (or a task) fails for a known reason: see the module docstring."""
    return Failed(message=message, data=cause if cause is not None else RunFailed(message))


TASK_RETRY_DELAYS_SECONDS = [10, 60]


def causes(error: Optional[BaseException]) -> Iterator[BaseException]:
    """The error and everything it wraps (dlt wraps source errors in its step errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "exception", None) or error.__cause__ or error.__context__


def root_slack_error(error: Optional[BaseException]) -> Optional[BaseException]:
    """The first Slack or configuration error inside `error`, if any."""
    return next((e for e in causes(error) if isinstance(e, PERMANENT)), None)


def retry_only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry unless a permanent Slack/config error caused it."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception as raised:  # noqa: BLE001 - the failure itself is what we inspect
            error = raised
    return root_slack_error(error if isinstance(error, BaseException) else None) is None


# The task options of every task that calls Slack.
TRANSIENT_RETRIES: dict = dict(
    retries=TASK_RETRIES,
    retry_delay_seconds=TASK_RETRY_DELAYS_SECONDS,
    retry_condition_fn=retry_only_transient,
)
