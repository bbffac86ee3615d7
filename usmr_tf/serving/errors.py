"""Errors of the TF Serving clients; all are `UsmrError`s, so the CLI reports them cleanly."""

from usmr_tf.errors import UsmrError


class ServingError(UsmrError):
    """A request to a TF Serving endpoint failed."""


class ServerUnreachableError(ServingError):
    """Nothing answers at the address (connection refused, DNS failure, server down)."""


class ServingTimeoutError(ServingError):
    """The server did not answer within the client's timeout."""


class ModelNotFoundError(ServingError):
    """The server does not serve this model name / version / signature."""


class InvalidInputError(ServingError, ValueError):
    """The request does not fit the model (wrong shape, dtype, NaN), caught before or by the server."""
