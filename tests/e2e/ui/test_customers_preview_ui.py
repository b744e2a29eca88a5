"""Customers and the import preview in a real browser."""

from playwright.sync_api import Locator, Page, expect

from .support import Partner


def row(page: Page, customer: str) -> Locator:
    header = page.get_by_role("rowheader", name=customer, exact=True)
    return page.locator("#customers-table tbody tr").filter(has=header)


def test_customers_show_mappings_and_policies_and_a_new_one_gets_the_defaults(
    page: Page, partner: Partner
) -> None:
    default = partner.create_policy("Everyone", is_default=True)
    partner.create_policy("Admins", "administrator")  # not the default
    partner.add_customer("Northwind Traders", ("connectwise", "3003"), ("itglue", "42"))
    partner.sign_in(page, route="#/customers")

    traders = row(page, "Northwind Traders")
    expect(traders).to_contain_text("ConnectWise \u00b7 company 3003")
    expect(traders).to_contain_text("IT Glue \u00b7 organisation 42")
    expect(traders.get_by_role("link", name="Everyone")).to_be_visible()
    expect(traders).to_contain_text("None \u2014 not imported")  # no administrator policy

    page.get_by_role("button", name="+ Add customer").click()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    gets = page.locator("#customer-gets")
    expect(gets).to_contain_text("End-user accounts: \u201cEveryone\u201d")
    expect(gets).to_contain_text("Administrator accounts: no default administrator policy")

    page.get_by_label("Name", exact=True).fill("Northwind Logistics")
    page.get_by_label("PSA", exact=True).select_option("connectwise")
    page.get_by_label("PSA company id").fill("3003")
    expect(page.locator("#add-shared-psa")).to_contain_text(
        "Northwind Traders already maps to ConnectWise company 3003: PSA contacts will not be "
        "created for this customer nor for Northwind Traders"
    )
    page.get_by_role("button", name="Add customer", exact=True).click()

    expect(page.locator("#status")).to_contain_text(
        "Added Northwind Logistics. Policies: end-user: \u201cEveryone\u201d, administrator: none."
    )
    added = row(page, "Northwind Logistics")
    expect(added.get_by_role("link", name="Everyone")).to_be_visible()
    expect(added).to_contain_text("Shared with Northwind Traders: contacts matched, never created")
    expect(traders).to_contain_text("Shared with Northwind Logistics")
    customers = partner.call("GET", "/v1/customers")["items"]
    logistics = next(c for c in customers if c["name"] == "Northwind Logistics")
    assert logistics["policy_ids"] == {"end_user": default["id"], "administrator": None}


def test_a_customer_field_error_is_shown_next_to_the_field(page: Page, partner: Partner) -> None:
    partner.sign_in(page, route="#/customers?add=1")
    page.get_by_label("Name", exact=True).fill("Fabrikam")
    page.get_by_label("Documentation", exact=True).select_option("hudu")
    page.get_by_role("button", name="Add customer", exact=True).click()  # no organisation id

    holder = page.locator('[data-field="documentation.organization_id"]')
    expect(holder.locator(".field-error")).to_contain_text("at least 1 character")
    expect(page.get_by_label("Organisation id")).to_have_attribute("aria-invalid", "true")
    assert partner.call("GET", "/v1/customers")["items"] == []


def test_the_preview_shows_each_command_and_each_note(page: Page, partner: Partner) -> None:
    traders = partner.add_customer("Northwind Traders", ("connectwise", "3003"), ("itglue", "42"))
    partner.add_customer("Northwind Logistics", ("connectwise", "3003"))
    lonely = partner.add_customer("Lonely Ltd")
    policy = partner.create_policy(
        "Everything",
        customer_ids=[traders["id"]],
        options={
            "documentation": {"match": True, "create_if_missing": True},
            "psa": {"match": True, "create_if_missing": True},
            "send_welcome_email": True,
            "enable_self_serve_reset": True,
            "sync_password_to_m365": True,
        },
    )
    partner.sign_in(page, route=f"#/preview?customer={traders['id']}")
    expect(page.get_by_label("Customer", exact=True)).to_have_value(traders["id"])
    page.get_by_label("Directory").select_option("entra_id")
    page.get_by_label("Email (optional)").fill("ada@northwind.example")
    page.get_by_role("button", name="Preview decision").click()

    result = page.locator("#preview-result")
    expect(result).to_contain_text("Imported under \u201cEverything\u201d (version")
    commands = page.locator("#preview-commands > li .command-text")
    expect(commands).to_have_text(
        [
            "Link the password entry in IT Glue organisation 42, creating it if missing; "
            "password changes sync back",
            "Link the contact in ConnectWise company 3003 (match only: no contact is created)",
            "Send the welcome email to ada@northwind.example",
            "Enable self-serve password reset",
        ]
    )
    expect(page.locator("#preview-commands")).to_contain_text("psa.contact.link")
    notes = page.locator("#preview-notes > li")
    expect(notes).to_have_count(2)
    expect(notes.nth(0)).to_contain_text("Create the contact if it is missing")
    expect(notes.nth(1)).to_contain_text("Sync AD / local passwords to Microsoft 365")
    expect(notes.nth(1)).to_contain_text("already in Microsoft 365")

    # A customer with no policy for the type: nothing would be done, and the page says why.
    page.get_by_label("Customer", exact=True).select_option(lonely["id"])
    page.get_by_role("radio", name="Administrator").check()
    page.get_by_role("button", name="Preview decision").click()
    expect(result).to_contain_text("Lonely Ltd has no administrator policy")
    expect(page.locator("#preview-commands")).to_have_count(0)
    assert partner.policy(policy["id"])["version"] == policy["version"]


def test_a_preview_error_is_shown_on_its_field(page: Page, partner: Partner) -> None:
    partner.add_customer("Contoso")
    partner.sign_in(page, route="#/preview")
    page.get_by_label("Email (optional)").fill("not an address")
    page.get_by_role("button", name="Preview decision").click()
    holder = page.locator('[data-field="email"]')
    expect(holder.locator(".field-error")).to_be_visible()
    expect(page.get_by_label("Email (optional)")).to_have_attribute("aria-invalid", "true")
