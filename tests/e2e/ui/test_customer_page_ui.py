"""One customer's page in a real browser: its mappings, policies and accounts by status,
each count a way into the Accounts list filtered to the customer."""

import re

from playwright.sync_api import Page, expect

from .accounts_seed import seed_accounts
from .support import Bus, Partner, check_layouts


def test_a_customer_shows_its_accounts_by_status_and_links_to_them(
    page: Page, partner: Partner, bus: Bus
) -> None:
    seeded = seed_accounts(partner, bus)
    partner.sign_in(page, route="#/customers")
    page.get_by_role("link", name="Contoso", exact=True).click()
    expect(page).to_have_url(re.compile(rf"#/customers/{seeded.contoso['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Contoso")
    expect(page.locator(".facts")).to_contain_text("ConnectWise \u00b7 company 1001")
    expect(page.locator(".facts")).to_contain_text("Shared with Contoso EU")
    expect(page.get_by_role("link", name="Everyone")).to_have_attribute(
        "href", f"#/policies/{seeded.everyone['id']}"
    )

    accounts = page.locator("#customer-accounts")
    expect(accounts.get_by_role("heading", name="Accounts")).to_be_visible()
    expect(accounts).to_contain_text("1 account decided, by status:")
    counts = accounts.get_by_role("list", name="Accounts of Contoso by status")
    expect(counts.get_by_role("link")).to_have_text(
        ["Done 0", "Pending 0", "Needs attention 1", "No policy 0"]
    )
    check_layouts(page, "customer")

    accounts.get_by_role("link", name="See the accounts of Contoso").click()
    expect(page).to_have_url(re.compile(rf"#/accounts\?customer={seeded.contoso['id']}$"))
    expect(page.get_by_label("Customer")).to_have_value(seeded.contoso["id"])
    expect(page.locator("#accounts-table tbody tr th a")).to_have_text(["ada"])

    # A count goes to the list filtered by the customer and that status.
    page.go_back()
    page.locator("#customer-accounts").get_by_role("link", name="Needs attention 1").click()
    expect(page.locator('#account-counts [data-status="attention"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#accounts-table tbody tr th a")).to_have_text(["ada"])

    # Fabrikam's counts are its own.
    page.goto(f"/ui/#/customers/{seeded.fabrikam['id']}")
    fabrikam = page.get_by_role("list", name="Accounts of Fabrikam by status")
    expect(fabrikam.get_by_role("link")).to_have_text(
        ["Done 1", "Pending 1", "Needs attention 0", "No policy 0"]
    )
