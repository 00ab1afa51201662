"""Which task failures Prefect should retry: transient ones, never a bad token or scope."""

from typing import Any, Iterator, Optional

from slack_source import SlackApiError, SlackConfigError

PERMANENT = (SlackApiError, SlackConfigError)


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
