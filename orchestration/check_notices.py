"""The command line's checks stay one line on bad input, also when they start Prefect.

With token rotation the pre-flight reads the token store (a Secret block), and so starts the
temporary Prefect server a one-off run uses, whose start and stop notices would surround the
one `error: ...` line; its refresh line would come in dlt's format, before the run's logs exist.
"""

import logging


class TemporaryServerNotices(logging.Filter):
    """Prefect's notices of its temporary server, while the checks run: with token rotation
    the pre-flight reads the token store and so starts the server a one-off run uses; bad
    input must still be one line (so when the command ends there, the notices of the server
    stopping and of its events being sent at exit are dropped too). Without rotation the
    checks start no server, and the run's console is as before. The pre-flight's refresh
    line is dropped too: it would come in dlt's format, before the run's logs exist."""

    NOTICES = (
        "Starting temporary server",
        "Stopping temporary server",
        "Still processing items",
        "Slack token refreshed",  # the pre-flight's, in dlt's format before the run's logs
    )
    LOGGERS = ("prefect", "EventsWorker", "dlt.slack")

    started = False  # the checks started the server: its stop notice is dropped too

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        self.started = self.started or message.startswith(self.NOTICES[0])
        return not message.startswith(self.NOTICES)

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def checked(self) -> None:
        """The checks passed: the run's own lines from here on (the stop notice of a server
        the checks started stays dropped, as its start notice was)."""
        for name in self.LOGGERS if not self.started else self.LOGGERS[2:]:
            logging.getLogger(name).removeFilter(self)
