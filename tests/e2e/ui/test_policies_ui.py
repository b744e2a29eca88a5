"""The Automatic Imports pages in a real browser: list, create, edit, delete."""

import re

from playwright.sync_api import Locator, Page, expect

from .support import Partner


def card(page: Page, name: str) -> Locator:
    return page.locator(f'.policy-card[data-policy-name="{name}"]')


def test_create_a_default_end_user_policy_with_customers_then_the_badge_moves(
    page: Page, partner: Partner
) -> None:
    partner.create_policy("Old default", is_default=True)
    alpha = partner.add_customer("Alpha Dental", psa=("autotask", "A-1"))
    beta = partner.add_customer("Beta Logistics", psa=("halo", "B-2"))
    partner.add_customer("Gamma Labs")
    partner.sign_in(page)

    page.get_by_role("link", name="+ New Import Policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New Import Policy")
    page.get_by_role("radio", name="End-user Accounts").check()
    page.get_by_label("Name", exact=True).fill("Everyone")
    page.get_by_label("Description").fill("All end users of our managed customers.")

    page.get_by_label("Set as default for end-user accounts").check()
    note = page.locator("#default-note")
    expect(note).to_contain_text("\u201cOld default\u201d is the default end-user policy now")
    expect(note).to_contain_text("\u201cOld default\u201d loses it")

    search = page.get_by_label("Search customers")
    search.fill("alp")
    expect(page.locator("#customer-options li:visible")).to_have_count(1)
    page.get_by_label("Alpha Dental").check()
    search.fill("")
    page.get_by_label("Beta Logistics").check()
    expect(page.locator("#customer-count")).to_have_text(
        "2 customers selected: Alpha Dental and Beta Logistics."
    )
    # Both are on the old default now: the page says they move.
    expect(page.locator(f'li[data-customer-id="{alpha["id"]}"] .move-flag')).to_have_text(
        "Moves here from \u201cOld default\u201d"
    )
    expect(page.locator("#move-note")).to_contain_text("Saving moves 2 customers")

    page.get_by_label("Match the account in IT Glue or Hudu").check()
    page.get_by_label("Send a welcome email").check()
    page.get_by_role("button", name="Create policy").click()

    expect(page.locator("#status")).to_contain_text("Created \u201cEveryone\u201d")
    everyone, old = card(page, "Everyone"), card(page, "Old default")
    expect(everyone.locator(".badge-default")).to_have_text("Default")
    expect(old.locator(".badge-default")).to_have_count(0)
    expect(everyone.locator(".customer-count")).to_have_text("2 customers")
    expect(everyone.locator(".chip")).to_have_text(["IT Glue / Hudu: match", "Welcome email"])
    expect(everyone).to_contain_text("All end users of our managed customers.")
    expect(old.locator(".customer-count")).to_have_text("1 customer")  # Gamma Labs stays

    created = next(p for p in partner.policies() if p["name"] == "Everyone")
    assert created["is_default"] is True
    assert sorted(created["customer_ids"]) == sorted([alpha["id"], beta["id"]])
    assert partner.customer(beta["id"])["policy_ids"]["end_user"] == created["id"]

    # Another one becomes the default: the badge moves to it.
    old.get_by_role("link", name="Edit").click()
    page.get_by_label("Set as default for end-user accounts").check()
    expect(page.locator("#default-note")).to_contain_text(
        "\u201cEveryone\u201d is the default end-user policy now"
    )
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#status")).to_contain_text("Saved \u201cOld default\u201d")
    expect(card(page, "Old default").locator(".badge-default")).to_have_text("Default")
    expect(card(page, "Everyone").locator(".badge-default")).to_have_count(0)
    assert partner.policy(created["id"])["is_default"] is False


def test_create_if_missing_is_enabled_only_when_match_is_checked(
    page: Page, partner: Partner
) -> None:
    partner.sign_in(page, route="#/policies/new")
    match = page.get_by_label("Match the user to a contact in the PSA")
    create = page.get_by_label("Create the contact if it is missing")
    expect(create).to_be_disabled()
    expect(page.locator("#opt-psa-create-needs")).to_be_visible()

    # With the keyboard only: Space checks, Tab moves on to the now enabled box.
    match.focus()
    page.keyboard.press("Space")
    expect(match).to_be_checked()
    expect(create).to_be_enabled()
    expect(page.locator("#opt-psa-create-needs")).to_be_hidden()
    page.keyboard.press("Tab")
    expect(create).to_be_focused()
    page.keyboard.press("Space")
    expect(create).to_be_checked()

    # Unchecking match unchecks and disables create.
    match.focus()
    page.keyboard.press("Space")
    expect(create).not_to_be_checked()
    expect(create).to_be_disabled()

    # Administrators have no PSA option; documentation follows the same rule.
    page.get_by_role("radio", name="Administrator Accounts").check()
    expect(page.get_by_label("Match the user to a contact in the PSA")).to_have_count(0)
    expect(
        page.get_by_label("Save the password in the vault if not using IT Glue or Hudu")
    ).to_be_visible()
    expect(page.get_by_label("Enable password rotation")).to_be_visible()
    doc_create = page.get_by_label("Create it in IT Glue or Hudu if it is missing")
    expect(doc_create).to_be_disabled()
    page.get_by_label("Match the account in IT Glue or Hudu").check()
    expect(doc_create).to_be_enabled()


def test_customers_sharing_a_psa_company_are_named_in_a_warning(
    page: Page, partner: Partner
) -> None:
    partner.add_customer("Northwind Traders", psa=("connectwise", "3003"))
    partner.add_customer("Northwind Logistics", psa=("connectwise", "3003"))
    partner.add_customer("Contoso", psa=("connectwise", "1001"))
    partner.sign_in(page, route="#/policies/new")

    page.get_by_label("Contoso").check()
    expect(page.locator("#shared-psa-warning")).to_have_count(0)

    page.get_by_label("Match the user to a contact in the PSA").check()
    page.get_by_label("Create the contact if it is missing").check()
    page.get_by_label("Northwind Logistics").check()
    warning = page.locator("#shared-psa-warning")
    expect(warning).to_contain_text("PSA contacts will not be created for Northwind Logistics.")
    expect(warning).to_contain_text(
        "Northwind Logistics shares ConnectWise company 3003 with Northwind Traders."
    )
    expect(warning).to_contain_text("even though \u201cCreate the contact if it is missing\u201d")
    expect(warning).not_to_contain_text("Contoso")

    page.get_by_label("Northwind Traders").check()
    expect(warning).to_contain_text(
        "PSA contacts will not be created for Northwind Logistics and Northwind Traders."
    )
    # Not an end-user matter for administrators.
    page.get_by_role("radio", name="Administrator Accounts").check()
    expect(page.locator("#shared-psa-warning")).to_have_count(0)


def test_a_422_from_the_api_is_shown_on_its_field(page: Page, partner: Partner) -> None:
    partner.create_policy("Taken")
    partner.sign_in(page, route="#/policies/new")
    name = page.get_by_label("Name", exact=True)
    name.fill("   ")  # only spaces: the API strips them and finds nothing
    page.get_by_role("button", name="Create policy").click()

    holder = page.locator('[data-field="name"]')
    expect(holder.locator(".field-error")).to_have_text(re.compile("at least 1 character"))
    expect(name).to_have_attribute("aria-invalid", "true")
    problems = page.locator(".form-problems .problem")
    expect(problems).to_be_focused()
    expect(problems).to_contain_text("Some fields need attention")
    expect(problems.get_by_role("link", name="Name")).to_be_visible()

    # A name already taken (409) is shown on the same field.
    name.fill("Taken")
    page.get_by_role("button", name="Create policy").click()
    expect(holder.locator(".field-error")).to_contain_text("already exists")
    assert [p["name"] for p in partner.policies()] == ["Taken"]


def test_a_stale_edit_is_explained_and_can_be_resolved(page: Page, partner: Partner) -> None:
    policy = partner.create_policy("Shared desk")
    partner.sign_in(page, route=f"#/policies/{policy['id']}")
    page.get_by_label("Description").fill("my description")

    # Meanwhile a colleague renames it.
    partner.call("PATCH", f"/v1/import-policies/{policy['id']}", {"name": "Service desk"})

    page.get_by_role("button", name="Save changes").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text("someone else changed this policy")
    expect(conflict).to_contain_text("version 1; it is now at version 2")
    expect(conflict).to_contain_text("the name (now \u201cService desk\u201d)")
    expect(page.get_by_label("Description")).to_have_value("my description")

    conflict.get_by_role("button", name="Save my version over theirs").click()
    expect(page.locator("#status")).to_contain_text("Saved \u201cShared desk\u201d")
    saved = partner.policy(policy["id"])
    assert (saved["name"], saved["description"], saved["version"]) == (
        "Shared desk",
        "my description",
        3,
    )


def test_delete_asks_first_and_names_the_customers_left_without_policy(
    page: Page, partner: Partner
) -> None:
    first = partner.add_customer("First Bank")
    second = partner.add_customer("Second Bank")
    policy = partner.create_policy(
        "Banks", is_default=True, customer_ids=[first["id"], second["id"]]
    )
    partner.sign_in(page, route=f"#/policies/{policy['id']}")

    page.get_by_role("button", name="Delete policy\u2026").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete \u201cBanks\u201d?")
    expect(dialog).to_contain_text("2 customers will be left with no end-user policy")
    expect(dialog).to_contain_text("First Bank and Second Bank")
    expect(dialog).to_contain_text("It is the default end-user policy")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()

    page.keyboard.press("Escape")  # cancels, like the Cancel button
    expect(dialog).to_be_hidden()
    assert partner.policies()

    page.get_by_role("button", name="Delete policy\u2026").click()
    dialog.get_by_role("button", name="Delete policy").click()
    expect(page.locator("#status")).to_contain_text(
        "Deleted \u201cBanks\u201d. 2 customers now have no end-user policy."
    )
    expect(page.locator("#policies-end_user .empty")).to_contain_text("No end-user policy yet")
    expect(page.locator("#policies-end_user .unassigned")).to_contain_text(
        "2 customers have no end-user policy, so their end-user accounts are not imported: "
        "First Bank and Second Bank."
    )
    assert partner.policies() == []
    assert partner.customer(first["id"])["policy_ids"]["end_user"] is None


def test_a_technician_sees_everything_read_only_with_the_reason(
    page: Page, partner: Partner
) -> None:
    customer = partner.add_customer("Read Corp", psa=("halo", "7"))
    policy = partner.create_policy(
        "Look only",
        is_default=True,
        customer_ids=[customer["id"]],
        options={"psa": {"match": True}},
    )
    partner.sign_in(page, role="technician")

    notice = page.locator("#read-only-notice")
    expect(notice).to_contain_text("You are signed in as Technician")
    expect(notice).to_contain_text("only a Manager, a Primary or a Super administrator")
    expect(page.get_by_role("link", name="+ New Import Policy")).to_have_count(0)
    expect(page.locator("header")).to_contain_text("Technician")
    expect(card(page, "Look only").get_by_role("link", name="View")).to_be_visible()

    card(page, "Look only").get_by_role("link", name="View").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Look only")
    expect(page.locator("#read-only-notice")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    expect(page.get_by_label("Match the user to a contact in the PSA")).to_be_checked()
    expect(page.get_by_label("Match the user to a contact in the PSA")).to_be_disabled()
    expect(page.get_by_label("Read Corp")).to_be_checked()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete policy\u2026")).to_have_count(0)

    page.get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
    expect(page.locator("#read-only-notice")).to_be_visible()
    expect(page.get_by_role("button", name="+ Add customer")).to_have_count(0)
    assert partner.policy(policy["id"])["version"] == policy["version"]
