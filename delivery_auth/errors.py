"""The exception tree of delivery-auth.

Every error is a :class:`DeliveryAuthError`. Messages say what happened and what
to do about it; they never contain a client secret or a token.

Example::

    try:
        requests.get(url, auth=auth)
    except InvalidClientError as exc:
        print(exc.status_code, exc.error)   # e.g. 401 invalid_client
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigurationError",
    "CredentialsRejectedError",
    "DeliveryAuthError",
    "DisallowedHostError",
    "InsecureTransportError",
    "InvalidClientError",
    "TokenEndpointUnavailableError",
    "TokenRequestError",
    "TokenRevokedError",
]


class DeliveryAuthError(Exception):
    """Base class of every error raised by delivery-auth."""


class TokenRequestError(DeliveryAuthError):
    """The token endpoint did not give us a usable token.

    Attributes:
        status_code: HTTP status of the token response, or ``None`` when no
            response arrived (connection error, timeout).
        error: the OAuth ``error`` code, or a problem-details ``title``.
        description: the server's human-readable explanation, if any.
        token_url: the endpoint that was asked.
        problem_type: the ``type`` of an RFC 7807 problem-details body (DHL's
            ``https://api.dhlecs.com/docs/errors/400.0000005``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        token_url: str,
        status_code: int | None = None,
        error: str | None = None,
        description: str | None = None,
        problem_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.token_url = token_url
        self.status_code = status_code
        self.error = error
        self.description = description
        self.problem_type = problem_type


class InvalidClientError(TokenRequestError):
    """The token endpoint rejected the client credentials (HTTP 400/401, ``invalid_client``)."""


class TokenEndpointUnavailableError(TokenRequestError):
    """The token endpoint kept failing transiently (5xx, 429, timeouts) until retries ran out.

    ``retry_after`` holds the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        token_url: str,
        status_code: int | None = None,
        error: str | None = None,
        description: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            token_url=token_url,
            status_code=status_code,
            error=error,
            description=description,
        )
        self.retry_after = retry_after


class ConfigurationError(DeliveryAuthError, ValueError):
    """Settings a provider needs are missing or invalid (e.g. environment variables).

    ``missing`` names every variable that was not set.
    """

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class TokenRevokedError(DeliveryAuthError):
    """The API says the token is no longer valid and there is no way to get a new one here."""


class CredentialsRejectedError(DeliveryAuthError):
    """The API refused the credentials when asked to check them (a provider's ``verify``)."""


class InsecureTransportError(DeliveryAuthError, ValueError):
    """A token or secret would travel over plain HTTP to a host that is not loopback."""


class DisallowedHostError(DeliveryAuthError, ValueError):
    """A request was about to carry credentials to a host outside ``allowed_hosts``."""
