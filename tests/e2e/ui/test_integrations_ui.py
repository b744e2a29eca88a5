"""Global Settings, Integrations, in a real browser: a card per provider with its status,
write-only credentials, a 422 shown on each field, removal, and read-only roles."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests import secret_watch
from tests.account_events import Account, result_event

from .support import Bus, Partner, check_layouts, wait_until

PROVIDERS = ["connectwise", "autotask", "halo", "itglue", "hudu", "smtp", "m365"]
HALO = {
    "base_url": "https://acme.halopsa.example",
    "credentials": {"client_id": "halo-client", "client_secret": "halo-secret-ui-7f3a9c"},
    "settings": {"requests_per_5_minutes": 250},
}
HUDU = {
    "base_url": "https://acme.hudu.example",
    "credentials": {"api_key": "hudu-key-ui-4b8e21"},
}


def card(page: Page, provider: str) -> Locator:
    return page.locator(f'.integration[data-provider="{provider}"]')


def put(partner: Partner, provider: str, body: dict[str, Any]) -> Any:
    secret_watch.watch_credentials(body.get("credentials") or {})
    return partner.call("PUT", f"/v1/integrations/{provider}", body)


def test_set_up_connectwise_then_its_credentials_show_as_set_and_never_their_values(
    page: Page, partner: Partner
) -> None:
    secrets = {
        "company_id": "contoso-msp",
        "public_key": "pub-ui-" + uuid.uuid4().hex[:10],
        "private_key": "priv-ui-" + uuid.uuid4().hex[:10],
        "client_id": "client-ui-" + uuid.uuid4().hex[:10],
    }
    secret_watch.watch(*secrets.values())
    partner.sign_in(page, route="#/integrations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations")
    expect(page.locator(".integration")).to_have_count(len(PROVIDERS))
    for provider in PROVIDERS:
        expect(card(page, provider).locator(".integration-status")).to_have_text("Not configured")
    check_layouts(page, "integrations-empty", screenshots=False)

    connectwise = card(page, "connectwise")
    toggle = connectwise.get_by_role("button", name="Set up ConnectWise")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    address = connectwise.get_by_label("Address", exact=True)
    expect(address).to_be_focused()
    address.fill("api-na.myconnectwise.example/v4_6_release/apis/3.0")  # https is added
    labels = {
        "company_id": "Company id",
        "public_key": "Public key",
        "private_key": "Private key",
        "client_id": "Client id",
    }
    for name, label in labels.items():
        field = connectwise.get_by_label(label, exact=True)
        expect(field).to_have_attribute("type", "password")
        field.fill(secrets[name])
    connectwise.get_by_label("Requests per minute").fill("120")
    connectwise.get_by_role("button", name="Save ConnectWise").click()

    expect(page.locator("#status")).to_contain_text(
        "Set up ConnectWise. Credentials set: Client id, Company id, Private key and Public key."
    )
    expect(connectwise.locator(".integration-status")).to_have_text("Not checked yet")
    expect(connectwise.locator(".credentials-set")).to_contain_text(
        "Client id, Company id, Private key and Public key set"
    )
    expect(connectwise.locator(".base-url")).to_have_text(
        "https://api-na.myconnectwise.example/v4_6_release/apis/3.0"
    )
    expect(connectwise).to_contain_text("Requests per minute: 120")
    expect(connectwise.get_by_role("button", name="Edit ConnectWise")).to_be_focused()
    stored = partner.call("GET", "/v1/integrations/connectwise")
    assert stored["credential_fields"] == sorted(secrets)
    assert stored["settings"] == {"requests_per_minute": 120}
    assert stored["version"] == 1

    # The form again: every credential input empty, each marked "Set"; nothing leaks.
    connectwise.get_by_role("button", name="Edit ConnectWise").click()
    for label in labels.values():
        field = connectwise.get_by_label(label, exact=True)
        expect(field).to_have_value("")
        expect(field).to_have_attribute("type", "password")
    expect(connectwise.locator(".badge-set")).to_have_count(4)
    expect(connectwise.get_by_label("Requests per minute")).to_have_value("120")
    check_layouts(page, "integrations-form")

    # Saved with no credential typed: the stored ones are kept.
    connectwise.get_by_label("Requests per minute").fill("90")
    connectwise.get_by_label("Marker custom field id").fill("17")
    connectwise.get_by_role("button", name="Save ConnectWise").click()
    expect(page.locator("#status")).to_contain_text("Saved ConnectWise.")
    expect(connectwise).to_contain_text("Requests per minute: 90")
    saved = partner.call("GET", "/v1/integrations/connectwise")
    assert saved["credential_fields"] == sorted(secrets)
    assert saved["settings"] == {"requests_per_minute": 90, "marker_custom_field_id": 17}
    assert saved["version"] == 2

    content = page.content()
    for value in secrets.values():
        assert value not in content
        assert value not in page.locator("body").inner_text()


def test_a_422_is_shown_next_to_each_field(page: Page, partner: Partner) -> None:
    partner.sign_in(page, route="#/integrations")
    autotask = card(page, "autotask")
    autotask.get_by_role("button", name="Set up Autotask").click()
    autotask.get_by_label("Address", exact=True).fill("ftp://webservices5.autotask.example")
    autotask.get_by_label("API username").fill("api@contoso.example")
    autotask.get_by_label("Integration code").fill("TRACK-1")  # the secret stays empty
    autotask.get_by_label("Requests per hour").fill("lots")
    autotask.get_by_role("button", name="Save Autotask").click()

    problems = autotask.locator(".form-problems .problem")
    expect(problems).to_be_focused()
    expect(problems).to_contain_text("Autotask was not saved: some fields need attention")
    for path, message, label in [
        ("base_url", "must be https", "Address"),
        ("credentials.secret", "must not be empty", "Secret"),
        ("settings.requests_per_hour", "integer", "Requests per hour"),
    ]:
        holder = autotask.locator(f'[data-field="{path}"]')
        expect(holder.locator(".field-error")).to_contain_text(message)
        expect(autotask.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
        expect(problems.get_by_role("link", name=label, exact=True)).to_be_visible()
    check_layouts(page, "integrations-validation-error")

    # Fixed, it saves; the errors go.
    autotask.get_by_label("Address", exact=True).fill(
        "https://webservices5.autotask.example/atservicesrest"
    )
    autotask.get_by_label("Secret", exact=True).fill("autotask-secret-ui-91c2")
    secret_watch.watch("autotask-secret-ui-91c2")
    autotask.get_by_label("Requests per hour").fill("")
    autotask.get_by_role("button", name="Save Autotask").click()
    expect(page.locator("#status")).to_contain_text("Set up Autotask.")
    expect(autotask.locator(".field-error:visible")).to_have_count(0)
    assert partner.call("GET", "/v1/integrations/autotask")["settings"] == {}

    # An email integration needs its sender.
    smtp = card(page, "smtp")
    smtp.get_by_role("button", name="Set up Email (SMTP)").click()
    smtp.get_by_label("Address", exact=True).fill("smtp://smtp.contoso.example:587")
    smtp.get_by_role("button", name="Save Email (SMTP)").click()
    expect(smtp.locator('[data-field="settings.from_address"] .field-error')).to_contain_text(
        re.compile("required", re.IGNORECASE)
    )
    smtp.get_by_label("From address").fill("it@contoso.example")
    smtp.get_by_label("STARTTLS").select_option("true")
    smtp.get_by_role("button", name="Save Email (SMTP)").click()
    expect(smtp.locator(".integration-status")).to_have_text("Not checked yet")
    expect(smtp).to_contain_text("STARTTLS: on")
    smtp_saved = partner.call("GET", "/v1/integrations/smtp")
    assert smtp_saved["credential_fields"] == ["password", "username"]  # both empty: no sign-in
    assert smtp_saved["settings"] == {"from_address": "it@contoso.example", "starttls": True}


def test_the_status_says_whether_it_works_with_the_vendors_message(
    page: Page, partner: Partner, bus: Bus
) -> None:
    put(partner, "halo", HALO)
    put(partner, "hudu", HUDU)
    m365 = {"tenant_id": "t-1", "client_id": "c-1", "client_secret": "m365-secret-ui-0d9f"}
    put(partner, "m365", {"base_url": "https://graph.example/v1.0", "credentials": m365})
    refused = "401 Unauthorized: invalid_client (the client secret has expired)"
    account = Account(partner.id, uuid.uuid4())
    later = datetime.now(UTC) + timedelta(seconds=2)
    bus.results(
        result_event(account, "psa.contact.link", reason="integration_auth", provider="halo",
                     detail=refused, at=later),
        result_event(account, "documentation.password.link", outcome="matched",
                     provider="hudu", at=later),
    )  # fmt: skip

    def states() -> dict[str, str]:
        items = partner.call("GET", "/v1/integrations")["items"]
        return {i["provider"]: i["status"]["state"] for i in items}

    wait_until(
        states,
        lambda states: states == {"halo": "failing", "hudu": "ok", "m365": "unknown"},
        30,
        "statuses",
    )  # fmt: skip
    partner.sign_in(page, route="#/integrations")

    halo = card(page, "halo")
    expect(halo.locator(".integration-status")).to_have_text("Failing")
    expect(halo.locator(".integration-problem")).to_contain_text(f"Halo said: {refused}")
    expect(halo.locator(".integration-problem")).to_contain_text("Last checked")
    expect(halo).to_contain_text("Requests per 5 minutes: 250")
    expect(card(page, "hudu").locator(".integration-status")).to_have_text("Working")
    expect(card(page, "hudu")).to_contain_text("Hudu answered the last call.")
    expect(card(page, "m365").locator(".integration-status")).to_have_text("Not checked yet")
    expect(card(page, "connectwise").locator(".integration-status")).to_have_text("Not configured")
    page.evaluate("document.getElementById('status').hidden = true")
    check_layouts(page, "integrations")


def test_remove_asks_first_then_the_card_is_not_configured(page: Page, partner: Partner) -> None:
    put(partner, "hudu", HUDU)
    partner.sign_in(page, route="#/integrations")
    hudu = card(page, "hudu")
    hudu.get_by_role("button", name="Edit Hudu").click()
    hudu.get_by_role("button", name="Remove Hudu\u2026").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Remove \u201cHudu\u201d?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert partner.call("GET", "/v1/integrations")["items"]

    hudu.get_by_role("button", name="Remove Hudu\u2026").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove integration").click()
    expect(page.locator("#status")).to_contain_text("Removed Hudu")
    expect(hudu.locator(".integration-status")).to_have_text("Not configured")
    expect(hudu.get_by_role("button", name="Set up Hudu")).to_be_focused()
    assert partner.call("GET", "/v1/integrations")["items"] == []


def test_a_technician_sees_the_integrations_read_only(page: Page, partner: Partner) -> None:
    put(partner, "halo", HALO)
    partner.sign_in(page, role="technician", route="#/integrations")
    notice = page.locator("#read-only-notice")
    expect(notice).to_contain_text("You are signed in as Technician: you can see the integrations")
    halo = card(page, "halo")
    expect(halo.locator(".credentials-set")).to_contain_text("Client id and Client secret set")
    expect(halo.locator(".base-url")).to_have_text(HALO["base_url"])
    expect(page.locator(".integration button")).to_have_count(0)
    expect(page.locator(".integration form")).to_have_count(0)
    assert HALO["credentials"]["client_secret"] not in page.content()
    check_layouts(page, "integrations-read-only", screenshots=False)
