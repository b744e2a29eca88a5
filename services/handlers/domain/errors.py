"""What a vendor call can end in, besides an answer (raised by the connectors).

The executor maps them onto results: an auth failure is ``integration_auth``
(and the integration's status ``failing``), a refusal ``vendor_rejected`` with
the vendor's message; an unavailable vendor is waited out, with back-off, and
only after ``VENDOR_GIVE_UP_SECONDS`` reported as ``timeout``. ``MaybeDone``
means a create was sent but its answer lost: the handler searches again
before it creates anything.
"""


class VendorError(Exception):
    """Base of the vendor failures; ``message`` is the vendor's own, never a secret."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class VendorAuthError(VendorError):
    """401/403, or a refused token request: the credentials do not work."""


class VendorRejected(VendorError):
    """Any other 4xx (and a vendor's validation error sent as 500): this request is wrong."""


class VendorUnavailable(VendorError):
    """429, 5xx, a timeout or a refused connection: try again later."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class MaybeDone(VendorError):
    """A non-idempotent request (a create) whose outcome is unknown: search before redoing."""


class AddressRefused(VendorError):
    """The integration's host resolves to an address tenants may not reach."""
