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


class ServerBusyError(ServingError):
    """The server (or a proxy before it) is overloaded or restarting: HTTP 429 / 502 / 503 / 504."""


class BadResponseError(ServingError):
    """The server answered, but not with what the model should give (not JSON, no such output,
    wrong shape or dtype): usually a different model or a proxy behind that address."""


# Worth another try after a pause: the request may succeed once the server is up again.
TRANSIENT = (ServerUnreachableError, ServingTimeoutError, ServerBusyError)


def with_retries(call, retries, backoff, describe, sleep=None):
    """`call()`, tried again after a `TRANSIENT` error at most `retries` times, waiting
    `backoff`, `2 * backoff`, `4 * backoff`, ... seconds (at most 30 s) in between; the last
    error is raised with how many attempts were made. Other errors are raised at once."""
    import time

    sleep = sleep or time.sleep
    retries = max(0, int(retries))
    for attempt in range(retries + 1):
        try:
            return call()
        except TRANSIENT as exc:
            if attempt == retries:
                if retries:
                    raise type(exc)(f"{exc} (gave up after {retries + 1} attempts "
                                    f"{describe})") from None
                raise
            sleep(min(30.0, backoff * 2 ** attempt))
    raise AssertionError("unreachable")  # pragma: no cover
