"""Demo data for ``make run``: a few customers and policies for the demo partner.

Everything goes through the public HTTP API with the token of the dev sign-in
link, exactly as a person in the UI would do it, so the seed also exercises
the rules (defaults applied to new customers, assignments moving customers).
Idempotent: nothing is done when the partner already has customers.

Blocking (``urllib``) on purpose: it runs once, before the dev stack's summary
is printed, and needs no event loop.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from services.policy_service.ui.devsignin import DEMO_PARTNER, DEV_SIGN_IN_PATH

END_USER_ALL = {
    "documentation": {"match": True, "create_if_missing": True},
    "psa": {"match": True, "create_if_missing": True},
    "send_welcome_email": True,
    "enable_self_serve_reset": True,
    "sync_password_to_m365": True,
}
END_USER_MATCH_ONLY = {
    "documentation": {"match": True, "create_if_missing": False},
    "psa": {"match": True, "create_if_missing": False},
    "enable_self_serve_reset": True,
}
ADMINISTRATORS = {
    "save_password_in_vault": True,
    "documentation": {"match": True, "create_if_missing": True},
    "enable_password_rotation": True,
}

POLICIES: tuple[dict[str, Any], ...] = (
    {
        "account_type": "end_user",
        "name": "Standard end users",
        "description": "Documentation and PSA records matched or created, welcome email, "
        "self-service reset and Microsoft 365 password sync.",
        "is_default": True,
        "options": END_USER_ALL,
    },
    {
        "account_type": "end_user",
        "name": "Match only",
        "description": "For customers who keep their own records: link what exists, "
        "create nothing, send no email.",
        "is_default": False,
        "options": END_USER_MATCH_ONLY,
    },
    {
        "account_type": "administrator",
        "name": "Administrators",
        "description": "Passwords in IT Glue / Hudu when the customer is mapped, "
        "otherwise in the vault; enrolled in rotation.",
        "is_default": True,
        "options": ADMINISTRATORS,
    },
)

CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "name": "Contoso Ltd",
        "psa": {"provider": "connectwise", "company_id": "1001"},
        "documentation": {"provider": "itglue", "organization_id": "50101"},
    },
    {
        "name": "Fabrikam Inc",
        "psa": {"provider": "autotask", "company_id": "20417"},
        "documentation": {"provider": "hudu", "organization_id": "77"},
    },
    {
        "name": "Northwind Traders",
        "psa": {"provider": "connectwise", "company_id": "3003"},
        "documentation": {"provider": "itglue", "organization_id": "50233"},
    },
    {
        # Same PSA company as Northwind Traders: contacts are never created for either.
        "name": "Northwind Logistics",
        "psa": {"provider": "connectwise", "company_id": "3003"},
    },
    {
        "name": "Tailspin Toys",
        "psa": {"provider": "halo", "company_id": "88"},
        "documentation": {"provider": "hudu", "organization_id": "91"},
    },
    {"name": "Woodgrove Bank"},
)

MATCH_ONLY_CUSTOMERS = ("Fabrikam Inc",)
"""Moved from the default end-user policy to "Match only"."""


class SeedError(RuntimeError):
    """The demo data could not be written (the message says why)."""


@dataclass(frozen=True)
class SeedResult:
    seeded: bool
    customers: int
    policies: int

    def describe(self) -> str:
        if not self.seeded:
            return f"{DEMO_PARTNER} already has {self.customers} customer(s): demo data left as is"
        return f"{DEMO_PARTNER} seeded with {self.customers} customers and {self.policies} policies"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def dev_sign_in_token(base_url: str, timeout: float = 5.0) -> str:
    """The manager token that the dev sign-in link of ``base_url`` hands out."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(base_url + DEV_SIGN_IN_PATH, timeout=timeout) as resp:
            status, location = resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        status, location = exc.code, exc.headers.get("Location", "")
    except OSError as exc:
        raise SeedError(f"the policy service at {base_url} does not answer: {exc}") from exc
    fragment = urllib.parse.urlsplit(location).fragment
    token: str = urllib.parse.parse_qs(fragment).get("token", [""])[0]
    if status not in (302, 303) or not token:
        raise SeedError(f"{base_url}{DEV_SIGN_IN_PATH} gave {status}: is DEV_MODE on?")
    return token


class _Api:
    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url, self.token, self.timeout = base_url, token, timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise SeedError(f"{method} {path} answered {exc.code}: {detail}") from exc
        except OSError as exc:
            raise SeedError(f"{method} {path} failed: {exc}") from exc
        return json.loads(raw) if raw else None


def seed_demo(base_url: str, token: str | None = None, timeout: float = 5.0) -> SeedResult:
    """Give the demo partner its policies and customers, unless it has customers already.

    ``token`` defaults to the one of the service's dev sign-in link (dev mode).
    """
    base_url = base_url.rstrip("/")
    api = _Api(base_url, token or dev_sign_in_token(base_url, timeout), timeout)
    existing = api.call("GET", "/v1/customers?limit=500")["items"]
    if existing:
        return SeedResult(seeded=False, customers=len(existing), policies=0)
    policies: dict[str, str] = {}
    for policy in POLICIES:
        created = api.call("POST", "/v1/import-policies", policy)
        policies[policy["name"]] = created["id"]
    customers: dict[str, str] = {}
    for customer in CUSTOMERS:
        created = api.call("POST", "/v1/customers", customer)
        customers[customer["name"]] = created["id"]
    api.call(
        "PUT",
        f"/v1/import-policies/{policies['Match only']}/customers",
        {"customer_ids": [customers[name] for name in MATCH_ONLY_CUSTOMERS]},
    )
    return SeedResult(seeded=True, customers=len(customers), policies=len(policies))


def seed_integrations(base_url: str, simulators_url: str, timeout: float = 5.0) -> list[str]:
    """Point the demo partner's integrations at the local vendor simulators.

    The simulators say what to configure (``/demo/integrations``: base URLs,
    their demo credentials, settings); each is PUT as a person would in the UI.
    Done at every start, because the simulators' port may change; the integration's
    version grows each time, and the handlers take the new one.
    """
    base_url = base_url.rstrip("/")
    try:
        with urllib.request.urlopen(simulators_url + "/demo/integrations", timeout=timeout) as resp:
            wanted: dict[str, Any] = json.loads(resp.read())
    except OSError as exc:
        raise SeedError(f"the simulators at {simulators_url} do not answer: {exc}") from exc
    api = _Api(base_url, dev_sign_in_token(base_url, timeout), timeout)
    for provider, body in wanted.items():
        api.call("PUT", f"/v1/integrations/{provider}", body)
    return sorted(wanted)
