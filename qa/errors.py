"""User-facing errors.

Anything the user can cause (a bad path, a missing model, an empty question) is raised as a
:class:`QAError`. The CLI and the REPL print its message on one line and never a traceback;
library callers can catch it like any exception.
"""


class QAError(Exception):
    """An error whose message is meant for the user, on one line."""


class ModelError(QAError):
    """The embedding model is missing, corrupt or cannot be reached."""


class IndexStoreError(QAError):
    """The index is missing, corrupt or was built with other settings."""


def unexpected(exc: BaseException, command: str) -> str:
    """The one line for an exception nobody expected (a bug): what failed, and where the
    details are. The CLI and the REPL print it instead of a traceback unless QA_DEBUG is set."""
    what = " ".join(str(exc).split())[:160]
    return (f"unexpected {type(exc).__name__} in {command}" + (f": {what}" if what else "")
            + "; QA_DEBUG=1 shows the traceback")
