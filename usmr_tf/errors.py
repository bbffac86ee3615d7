"""Errors raised by usmr-tf for bad user input.

Every error names the offending file (when there is one) and the problem, so the
CLI can print it and exit with a non-zero status instead of a traceback.
"""


class UsmrError(Exception):
    """Base class for all errors the CLI reports as ``error: ...`` with exit code 2."""


class DataError(UsmrError, ValueError):
    """Unreadable, corrupt or unsuitable input data (NIfTI, PNG, folders, arrays)."""

    def __init__(self, message, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigError(UsmrError, ValueError):
    """A recipe or command-line setting that cannot be used."""
