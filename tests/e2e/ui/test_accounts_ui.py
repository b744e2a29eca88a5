"""The Accounts pages in a real browser: counts that filter, filters, paging, the live
refresh, and one account's decision and results in plain words."""

import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from playwright.sync_api import Locator, Page, Request, expect

from tests.account_events import Account, decision_event

from .accounts_seed import CW_CONTACT_URL, NO_EMAIL, seed_accounts
from .support import Bus, Partner, check_layouts

LIVE = 20_000  # ms: a poll every 3 s, plus the read model following the broker


def rows(page: Page) -> Locator:
    return page.locator("#accounts-table tbody tr")


def chip(page: Page, status: str) -> Locator:
    return page.locator(f'#account-counts [data-status="{status}"]')


def expect_counts(
    page: Page, all_: int, done: int, pending: int, attention: int, none: int
) -> None:
    expect(chip(page, "all")).to_have_text(f"All {all_}")
    expect(chip(page, "done")).to_have_text(f"Done {done}")
    expect(chip(page, "pending")).to_have_text(f"Pending {pending}")
    expect(chip(page, "attention")).to_have_text(f"Needs attention {attention}")
    expect(chip(page, "no_policy")).to_have_text(f"No policy {none}")


def test_counts_filter_the_list_and_a_new_decision_shows_while_the_page_is_open(
    page: Page, partner: Partner, bus: Bus
) -> None:
    seeded = seed_accounts(partner, bus)
    partner.sign_in(page, route="#/accounts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Accounts")).to_have_attribute("aria-current", "page")
    expect(rows(page).locator("th a")).to_have_text(["dave", "carol", "bob.admin", "ada"])
    expect_counts(page, 4, 1, 1, 1, 1)
    ada = rows(page).filter(has_text="ada")
    expect(ada).to_contain_text("Ada Lovelace")
    expect(ada).to_contain_text("Contoso")
    expect(ada).to_contain_text("End-user")
    expect(ada.locator(".status-chip")).to_have_text("Needs attention")
    expect(rows(page).filter(has_text="bob.admin").locator(".status-chip")).to_have_text("Pending")
    check_layouts(page, "accounts")

    # A status chip is the status filter (a toggle button); All clears it.
    chip(page, "attention").click()
    expect(chip(page, "attention")).to_have_attribute("aria-pressed", "true")
    expect(rows(page).locator("th a")).to_have_text(["ada"])
    expect(page).to_have_url(re.compile(r"#/accounts\?status=attention$"))
    expect_counts(page, 4, 1, 1, 1, 1)  # counts ignore the status filter
    chip(page, "all").click()
    expect(chip(page, "attention")).to_have_attribute("aria-pressed", "false")
    expect(rows(page)).to_have_count(4)
    # With the keyboard: Enter on a chip filters, and the focus stays on it.
    chip(page, "done").focus()
    page.keyboard.press("Enter")
    expect(rows(page).locator("th a")).to_have_text(["dave"])
    expect(chip(page, "done")).to_have_attribute("aria-pressed", "true")
    expect(chip(page, "done")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(chip(page, "all")).to_be_focused()
    page.keyboard.press("Space")
    expect(rows(page)).to_have_count(4)

    # Customer and type narrow the counts too.
    page.get_by_label("Customer").select_option(label="Fabrikam")
    expect(rows(page).locator("th a")).to_have_text(["dave", "bob.admin"])
    expect_counts(page, 2, 1, 1, 0, 0)
    page.get_by_label("Account type").select_option(label="Administrator")
    expect(rows(page).locator("th a")).to_have_text(["bob.admin"])
    expect_counts(page, 1, 0, 1, 0, 0)
    expect(page).to_have_url(
        re.compile(rf"customer={seeded.fabrikam['id']}&type=administrator$")
    )  # fmt: skip
    page.get_by_label("Customer").select_option(label="All customers")
    page.get_by_label("Account type").select_option(label="All account types")
    expect(rows(page)).to_have_count(4)

    # Free text: username, display name or email, any case.
    search = page.get_by_label("Search")
    search.fill("DANVERS")
    expect(rows(page).locator("th a")).to_have_text(["carol"])
    search.fill("fabrikam.example")
    expect(rows(page).locator("th a")).to_have_text(["dave"])
    search.fill("nobody-at-all")
    expect(page.locator("#accounts-empty")).to_have_text("No account matches these filters.")
    search.fill("")
    expect(rows(page)).to_have_count(4)

    # A decision arriving while the page is open: counts and list follow, no reload.
    erin = Account(
        partner.id, uuid.UUID(seeded.contoso["id"]), username="erin", display_name="Erin"
    )
    bus.decisions(
        decision_event(
            erin, ("psa.contact.link",), policy_id=uuid.UUID(seeded.everyone["id"]),
            at=datetime.now(UTC),
        )
    )  # fmt: skip
    expect(chip(page, "pending")).to_have_text("Pending 2", timeout=LIVE)
    expect(chip(page, "all")).to_have_text("All 5")
    expect(rows(page).first.locator("th a")).to_have_text("erin")

    # Leaving the page stops its refresh.
    asked: list[str] = []

    def record(request: Request) -> None:
        if "/v1/accounts" in request.url:
            asked.append(request.url)

    page.get_by_role("link", name="Customers", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
    page.on("request", record)
    time.sleep(4)
    assert asked == []


def test_an_account_explains_its_decision_and_each_result(
    page: Page, partner: Partner, bus: Bus
) -> None:
    seeded = seed_accounts(partner, bus)
    partner.sign_in(page, route="#/accounts")
    page.get_by_role("link", name="ada", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(f"#/accounts/{quote(seeded.ada.key, safe='')}")))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(page.locator("#account-status")).to_have_text("Needs attention")

    # The note in plain words, with the customers that share the PSA company by name.
    notes = page.locator("#account-notes > li")
    expect(notes).to_have_count(1)
    expect(notes.first).to_contain_text(
        "No contact created: Contoso and Contoso EU share ConnectWise company 1001"
    )
    expect(notes.first).to_contain_text("Option: Create the contact if it is missing")

    # The policy and version that decided it, linked.
    decision = page.locator("#account-decision")
    expect(decision).to_contain_text("Imported under \u201cEveryone\u201d (version 1)")
    expect(page.locator("#account-policy")).to_have_attribute(
        "href", f"#/policies/{seeded.everyone['id']}"
    )

    commands = page.locator("#account-commands > li")
    expect(commands).to_have_count(2)
    psa = commands.filter(
        has=page.get_by_role("heading", name="Link the PSA contact in ConnectWise")
    )
    expect(psa.locator(".status-chip")).to_have_text("Succeeded")
    expect(psa).to_contain_text("Matched an existing contact.")
    vendor = psa.get_by_role("link", name="Open contact 55 in ConnectWise (opens in a new tab)")
    expect(vendor).to_have_attribute("href", CW_CONTACT_URL)
    expect(vendor).to_have_attribute("target", "_blank")
    expect(vendor).to_have_attribute("rel", re.compile(r"\bnoopener\b"))

    welcome = commands.filter(has=page.get_by_role("heading", name="Send the welcome email"))
    expect(welcome.locator(".status-chip")).to_have_text("Failed")
    expect(welcome.locator(".reason-text")).to_have_text(
        "There is no email address to send to: the account has none, and neither has its PSA "
        "contact."
    )
    expect(welcome.locator(".command-detail")).to_contain_text(NO_EMAIL)
    check_layouts(page, "account")

    page.locator("#account-policy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Everyone")

    # An account its customer had no policy for says so, and lists no command.
    page.goto(f"/ui/#/accounts/{quote(seeded.carol.key, safe='')}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Carol Danvers")
    expect(page.locator("#account-status")).to_have_text("No policy")
    expect(page.locator("#account-decision")).to_contain_text(
        "Not imported: Contoso EU had no end-user policy"
    )
    expect(page.locator("#account-commands")).to_have_count(0)

    # An unknown key is a 404, told as such.
    page.goto(f"/ui/#/accounts/{quote(f'{partner.id}:nobody', safe='')}")
    expect(page.locator(".problem")).to_contain_text("This page could not be loaded")


def test_load_more_follows_the_cursor_and_the_refresh_keeps_the_pages(
    page: Page, partner: Partner, bus: Bus
) -> None:
    customer = partner.add_customer("Northwind")
    policy = partner.create_policy("Everyone", customer_ids=[customer["id"]])
    accounts = [
        Account(partner.id, uuid.UUID(customer["id"]), username=f"user{n:02d}", display_name=None)
        for n in range(53)
    ]
    bus.decisions(
        *(
            decision_event(a, ("psa.contact.link",), policy_id=uuid.UUID(policy["id"]))
            for a in accounts
        )
    )
    partner.wait_for_accounts(53)
    partner.sign_in(page, route="#/accounts")
    expect(rows(page)).to_have_count(50)
    expect(page.locator("#accounts-summary")).to_have_text(
        "50 accounts shown, newest first; more below."
    )
    page.get_by_role("button", name="Load more accounts").click()
    expect(rows(page)).to_have_count(53)
    expect(page.get_by_role("button", name="Load more accounts")).to_have_count(0)
    expect(rows(page).nth(50).locator("a")).to_be_focused()
    keys = rows(page).evaluate_all("(rows) => rows.map((r) => r.dataset.key)")
    assert len(set(keys)) == 53

    # Paged: the refresh brings new counts but leaves the rows as they are.
    late = Account(partner.id, uuid.UUID(customer["id"]), username="late")
    bus.decisions(decision_event(late, ("psa.contact.link",), policy_id=uuid.UUID(policy["id"])))
    expect(chip(page, "pending")).to_have_text("Pending 54", timeout=LIVE)
    expect(rows(page)).to_have_count(53)
