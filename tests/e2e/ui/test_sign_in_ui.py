"""Signing in: a pasted token, the dev sign-in link, and the seeded demo partner's pages
(the screenshots of the README are taken here, at 1280 px and a phone's width, each page
checked with axe-core)."""

import re

from playwright.sync_api import Page, expect

from services.policy_service.devseed import seed_demo
from services.policy_service.ui.devsignin import DEMO_PARTNER

from .support import Partner, check_layouts, screenshot, token


def test_the_sign_in_page_takes_a_pasted_token_and_refuses_a_bad_one(
    page: Page, partner: Partner
) -> None:
    partner.create_policy("Pasted")
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/#/sign-in$"))
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

    field = page.get_by_label("Bearer token (JWT)")
    field.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('[data-field="token"] .field-error')).to_contain_text("This is not a JWT")

    forged = token(partner.id)[:-4] + "AAAA"
    field.fill(forged)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('[data-field="token"] .field-error')).to_contain_text(
        "The policy service refused this token"
    )

    field.fill(token(partner.id, "read_only"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#status")).to_contain_text("(Read-only)")
    expect(page.locator(".policy-card")).to_contain_text("Pasted")
    assert page.evaluate("sessionStorage.getItem('msp-import.token')")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert page.evaluate("sessionStorage.getItem('msp-import.token')") is None


def test_an_expired_session_goes_back_to_sign_in(page: Page, partner: Partner) -> None:
    page.goto(f"/ui/#token={token(partner.id, ttl=-10)}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("#status")).to_contain_text("expired")


def test_dev_sign_in_opens_the_seeded_demo_partner(page: Page, ui_base_url: str) -> None:
    seed_demo(ui_base_url)  # idempotent: another run of this test finds it seeded
    again = seed_demo(ui_base_url)
    assert not again.seeded
    assert again.customers >= 6

    page.goto("/dev/sign-in")
    expect(page.locator("#status")).to_contain_text(f"(Manager) of partner {DEMO_PARTNER}")
    assert "token=" not in page.url  # moved to sessionStorage at once
    expect(page.locator(".policy-card[data-policy-name='Standard end users'] .badge")).to_have_text(
        "Default"
    )
    page.evaluate("document.getElementById('status').hidden = true")
    check_layouts(page, "automatic-imports")

    page.get_by_role("link", name="Customers", exact=True).click()
    expect(page.locator("#customers-table")).to_contain_text("Northwind Logistics")
    check_layouts(page, "customers")

    page.get_by_role("link", name="Automatic Imports", exact=True).click()
    page.get_by_role("link", name="+ New Import Policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New Import Policy")
    page.get_by_label("Name", exact=True).fill("Northwind group")
    page.get_by_label("Description").fill("Both Northwind companies: one ConnectWise company.")
    page.get_by_label("Set as default for end-user accounts").check()
    page.get_by_label("Northwind Logistics").check()
    page.get_by_label("Northwind Traders").check()
    page.get_by_label("Match the user to a contact in the PSA").check()
    page.get_by_label("Create the contact if it is missing").check()
    page.get_by_label("Send a welcome email").check()
    expect(page.locator("#shared-psa-warning")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    check_layouts(page, "new-policy")
    page.evaluate("document.getElementById('customer-options').scrollTop = 0")
    page.evaluate(
        "document.getElementById('shared-psa-warning').scrollIntoView({block: 'end'});"
        "window.scrollBy(0, 16)"
    )
    screenshot(page, "shared-psa-warning")

    # A 422 from the API, shown on its field.
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_role("button", name="Create policy").click()
    expect(page.locator('[data-field="name"] .field-error')).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    check_layouts(page, "validation-error")

    page.get_by_role("link", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import preview")
    page.get_by_label("Customer", exact=True).select_option(label="Northwind Logistics")
    page.get_by_role("button", name="Preview decision").click()
    expect(page.locator("#preview-commands")).to_be_visible()
    check_layouts(page, "preview")

    # The same partner seen by a technician: read-only, with the reason.
    page.goto("/dev/sign-in?role=technician")
    expect(page.locator("#read-only-notice")).to_be_visible()
    expect(page.get_by_role("link", name="+ New Import Policy")).to_have_count(0)
    page.evaluate("document.getElementById('status').hidden = true")
    check_layouts(page, "read-only")
