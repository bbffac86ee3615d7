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


def whole_number(value, name, minimum=1):
    """`value` as an int when it is a whole number >= `minimum` (an int or an integral float,
    not a bool or a string); else a ValueError naming the argument `name`."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
