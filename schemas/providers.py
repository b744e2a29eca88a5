"""What each provider's integration needs (docs/contract.md §6), as pure rules.

For every provider: the credential fields it requires (and may take), the
settings it knows with their types and defaults, and which URL schemes its
``base_url`` may use. The policy service validates a PUT against these; the
handlers read the same settings models, so a default lives in one place.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.base import Email
from schemas.integrations import Provider


class ProviderSettings(BaseModel):
    """Settings of one provider; unknown keys are refused (422)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ConnectWiseSettings(ProviderSettings):
    requests_per_minute: int = Field(default=60, ge=1, le=100_000)
    marker_custom_field_id: int | None = Field(
        default=None,
        ge=1,
        description="A contact custom field (Text) that holds the account key of contacts "
        "the handlers create; without one, a create is recognised by its email or name only.",
    )


class AutotaskSettings(ProviderSettings):
    requests_per_hour: int = Field(default=10_000, ge=1, le=1_000_000)
    max_concurrency: int = Field(default=3, ge=1, le=100)


class HaloSettings(ProviderSettings):
    requests_per_5_minutes: int = Field(default=300, ge=1, le=1_000_000)


class ITGlueSettings(ProviderSettings):
    requests_per_5_minutes: int = Field(default=3000, ge=1, le=1_000_000)
    password_category_id: int | None = Field(default=None, ge=1)


class HuduSettings(ProviderSettings):
    requests_per_minute: int = Field(default=300, ge=1, le=100_000)


class SmtpSettings(ProviderSettings):
    from_address: Email
    starttls: bool | None = Field(
        default=None, description="Defaults to true for smtp://, false for smtps:// (TLS)."
    )
    brand: str = Field(default="Your IT team", min_length=1, max_length=200)
    portal_url: str | None = Field(default=None, max_length=2048)


class M365Settings(ProviderSettings):
    token_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Default https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token",
    )


@dataclass(frozen=True)
class ProviderSpec:
    provider: Provider
    required: tuple[str, ...]
    optional: tuple[str, ...]
    may_be_empty: bool  # whether required credential values may be empty strings
    schemes: tuple[str, ...]
    settings: type[ProviderSettings]

    @property
    def credential_fields(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


HTTPS = ("https",)
SPECS: dict[Provider, ProviderSpec] = {
    spec.provider: spec
    for spec in (
        ProviderSpec(
            Provider.CONNECTWISE,
            ("company_id", "public_key", "private_key", "client_id"),
            (),
            False,
            HTTPS,
            ConnectWiseSettings,
        ),
        ProviderSpec(
            Provider.AUTOTASK,
            ("username", "secret", "integration_code"),
            (),
            False,
            HTTPS,
            AutotaskSettings,
        ),
        ProviderSpec(
            Provider.HALO, ("client_id", "client_secret"), ("tenant",), False, HTTPS, HaloSettings
        ),
        ProviderSpec(Provider.ITGLUE, ("api_key",), (), False, HTTPS, ITGlueSettings),
        ProviderSpec(Provider.HUDU, ("api_key",), (), False, HTTPS, HuduSettings),
        ProviderSpec(
            Provider.SMTP, ("username", "password"), (), True, ("smtp", "smtps"), SmtpSettings
        ),
        ProviderSpec(
            Provider.M365,
            ("tenant_id", "client_id", "client_secret"),
            (),
            False,
            HTTPS,
            M365Settings,
        ),
    )
}


class IntegrationProblem(ValueError):
    """One field of an integration that is not acceptable: (location, message)."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def check_credentials(spec: ProviderSpec, credentials: dict[str, Any]) -> dict[str, str]:
    """The credentials, if they are exactly the provider's fields; never echoes a value."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for name in spec.required:
        value = credentials.get(name)
        if value is None:
            problems.append((("credentials", name), "required"))
        elif not isinstance(value, str):
            problems.append((("credentials", name), "must be a string"))
        elif not value and not spec.may_be_empty:
            problems.append((("credentials", name), "must not be empty"))
    for name, value in credentials.items():
        if name not in spec.credential_fields:
            known = ", ".join(spec.credential_fields)
            problems.append((("credentials", name), f"unknown field (expected: {known})"))
        elif name in spec.optional and not isinstance(value, str):
            problems.append((("credentials", name), "must be a string"))
        elif isinstance(value, str) and len(value) > 4096:
            problems.append((("credentials", name), "longer than 4096 characters"))
    if problems:
        raise IntegrationProblem(problems)
    return {k: str(v) for k, v in credentials.items()}


def check_settings(spec: ProviderSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as given (validated against the provider's model; defaults not filled)."""
    try:
        spec.settings.model_validate(settings)
    except ValidationError as exc:
        raise IntegrationProblem(
            [
                (("settings", *(str(x) for x in e["loc"])), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None
    return dict(settings)


@dataclass(frozen=True)
class Target:
    """Where a base URL points: the host to resolve and the port to connect to."""

    scheme: str
    host: str
    port: int


def check_base_url(spec: ProviderSpec, url: str, *, allow_private: bool) -> Target:
    """Shape of ``base_url``: scheme, host, no credentials in it, no fragment."""
    where = ("base_url",)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise IntegrationProblem([(where, f"not a URL: {exc}")]) from None
    schemes = spec.schemes + (("http",) if allow_private and spec.schemes == HTTPS else ())
    if parts.scheme not in schemes:
        raise IntegrationProblem([(where, f"must be {' or '.join(schemes)}")])
    if not parts.hostname:
        raise IntegrationProblem([(where, "has no host")])
    if parts.username or parts.password:
        raise IntegrationProblem([(where, "must not carry credentials; use credentials")])
    if parts.fragment or parts.query:
        raise IntegrationProblem([(where, "must not have a query or fragment")])
    default = {"https": 443, "http": 80, "smtp": 587, "smtps": 465}[parts.scheme]
    return Target(parts.scheme, parts.hostname, port or default)


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses a tenant must not point the handlers at: private, loopback,
    link-local, reserved, multicast, shared (anything not globally routable)."""
    refused = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            refused.append(text)
    return refused


__all__ = [
    "SPECS",
    "IntegrationProblem",
    "ProviderSpec",
    "Target",
    "check_base_url",
    "check_credentials",
    "check_settings",
    "refused_addresses",
]
