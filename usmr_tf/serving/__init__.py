"""Clients for a usmr model behind TF Serving: `GrpcClient` (port 8500) and `RestClient` (8501).

Import them from their modules (``usmr_tf.serving.grpc_client`` / ``.rest_client``) so that
only the transport you use is loaded. Synthesized images are research output, not for diagnosis.
"""

from usmr_tf.serving.errors import (  # noqa: F401
    InvalidInputError,
    ModelNotFoundError,
    ServerUnreachableError,
    ServingError,
    ServingTimeoutError,
)
