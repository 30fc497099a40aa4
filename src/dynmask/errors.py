"""The error types every layer raises. Each message is one line: what is wrong (naming the argument or
file) and how to fix it. The command line prints it as ``error: ...`` and exits 2 for every
:data:`USER_ERRORS` type; anything else is a bug and says so."""

from __future__ import annotations

__all__ = ["DataError", "RunFolderError", "ChecksumError", "FetchError", "TooFewToCalibrate", "USER_ERRORS"]


class DataError(ValueError):
    """Bad input data, with a message that says what is wrong and how to fix it."""


class RunFolderError(DataError):
    """A run folder that is missing, damaged, tampered with, or does not fit the command."""


class ChecksumError(RuntimeError):
    """A download whose sha256 is not the pinned one: refused, nothing cached."""


class FetchError(RuntimeError):
    """A data set could not be fetched or cached; the message names the setting to change."""


class TooFewToCalibrate(ValueError):
    """Fewer held-out values than a conformal quantile at the requested level needs."""


# what the command line reports as the user's error (one line, exit 2), not as a bug
USER_ERRORS = (DataError, FileNotFoundError, ChecksumError, FetchError, FloatingPointError)
