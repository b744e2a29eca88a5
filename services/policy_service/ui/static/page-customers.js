// Customers: their PSA and documentation mappings and the policy in force per account type.

import * as api from "./api.js";
import { h, clear, field, listing, q, announce, clearFieldErrors } from "./dom.js";
import { ACCOUNT_TYPES, ACCOUNT_TYPE, PSA, DOCS, psaGroups, sharingWith, psaText, docsText, byName } from "./vocab.js";
import { breadcrumb, pageHeading, readOnlyNotice, problemPanel, showIn, badge, loading } from "./widgets.js";
import { accountsHref, allCounts, countLinks } from "./page-accounts.js";

export async function customersPage({ user, params }) {
  const [policies, customers] = await Promise.all([api.policies(), api.customers()]);
  const view = new CustomersView(user, policies, customers.sort(byName));
  return view.render(params.get("add") === "1");
}

/** One customer: its mappings, its policies and its accounts by status. */
export async function customerPage({ id }) {
  const [policies, customers, current] = await Promise.all([
    api.policies(),
    api.customers(),
    api.call("GET", `/v1/customers/${encodeURIComponent(id)}`),
  ]);
  const customer = current.body;
  const policyById = new Map(policies.map((p) => [p.id, p]));
  const shared = sharingWith(customer, psaGroups(customers));
  const accounts = h("section", { class: "card", id: "customer-accounts", "aria-labelledby": "customer-accounts-title" });
  showAccounts(accounts, customer);
  return h(
    "div",
    {},
    breadcrumb("Global Settings", ["Customers", "#/customers"], customer.name),
    pageHeading(customer.name),
    h("p", { class: "lead" }, "Its PSA company and documentation organisation, the policy of each account type, and its accounts."),
    h(
      "div",
      { class: "customer-layout" },
      h(
        "section",
        { class: "card", "aria-labelledby": "customer-mappings-title" },
        h("h2", { id: "customer-mappings-title" }, "Mappings"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "PSA company"),
          h(
            "dd",
            {},
            psaText(customer.psa) || h("span", { class: "muted" }, "Not mapped"),
            shared.length
              ? h("span", { class: "shared-flag" }, `Shared with ${listing(shared.map((c) => c.name))}: contacts matched, never created`)
              : null,
          ),
          h("dt", {}, "Documentation"),
          h("dd", {}, docsText(customer.documentation) || h("span", { class: "muted" }, "Not mapped")),
          ACCOUNT_TYPES.map((type) => {
            const policy = policyById.get(customer.policy_ids[type]);
            return [
              h("dt", {}, `${ACCOUNT_TYPE[type].one} policy`),
              h("dd", {}, policy ? h("a", { href: `#/policies/${policy.id}` }, policy.name) : h("span", { class: "muted" }, "None \u2014 not imported")),
            ];
          }),
        ),
        h("p", {}, h("a", { href: `#/preview?customer=${customer.id}` }, `Preview an import for ${customer.name}`)),
      ),
      accounts,
    ),
  );
}

/** The customer's accounts by status (the list's counts), with links to them. */
async function showAccounts(section, customer) {
  const title = h("h2", { id: "customer-accounts-title" }, "Accounts");
  section.append(title, loading("Counting the accounts\u2026"));
  let counts;
  try {
    const { body } = await api.call("GET", `/v1/accounts?customer_id=${encodeURIComponent(customer.id)}&limit=1`);
    counts = allCounts(body.counts);
  } catch (error) {
    clear(section).append(title, problemPanel(error, { intro: "The accounts could not be counted" }));
    return;
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  clear(section).append(
    title,
    total
      ? h("p", { class: "hint" }, `${total} ${total === 1 ? "account" : "accounts"} decided, by status:`)
      : h("p", { class: "hint" }, "No account decided yet: they are counted here as discovery finds them."),
    countLinks(counts, { customer: customer.id }, { "aria-label": `Accounts of ${customer.name} by status` }),
    h(
      "p",
      {},
      h("a", { href: accountsHref({ customer: customer.id }), id: "customer-accounts-link" }, `See the accounts of ${customer.name}`),
    ),
  );
}

class CustomersView {
  constructor(user, policies, customers) {
    this.user = user;
    this.policies = new Map(policies.map((p) => [p.id, p]));
    this.defaults = {};
    for (const p of policies) if (p.is_default) this.defaults[p.account_type] = p;
    this.customers = customers;
  }

  render(openForm) {
    this.tableHolder = h("div", {});
    this.renderTable();
    const addButton = this.user.canWrite
      ? h(
          "button",
          { type: "button", class: "button-primary", id: "add-customer", "aria-expanded": "false", "aria-controls": "add-customer-form" },
          "+ Add customer",
        )
      : null;
    this.formHolder = h("div", { id: "add-customer-form", hidden: true });
    if (addButton) {
      addButton.addEventListener("click", () => this.toggleForm(addButton));
      this.addButton = addButton;
    }
    const page = h(
      "div",
      {},
      breadcrumb("Global Settings", "Customers"),
      pageHeading("Customers", addButton),
      h(
        "p",
        { class: "lead" },
        "Your client companies, the PSA company and documentation organisation each maps to, and the " +
          "import policy in force for each account type.",
      ),
      readOnlyNotice(),
      this.formHolder,
      this.tableHolder,
    );
    if (openForm && addButton) this.toggleForm(addButton);
    return page;
  }

  policyCell(customer, type) {
    const policy = this.policies.get(customer.policy_ids[type]);
    if (!policy) {
      return h("td", { class: "muted" }, "None \u2014 not imported");
    }
    return h(
      "td",
      {},
      h("a", { href: `#/policies/${policy.id}` }, policy.name),
      policy.is_default ? badge("Default", "badge-default badge-small") : null,
    );
  }

  renderTable() {
    const groups = psaGroups(this.customers);
    clear(this.tableHolder);
    if (!this.customers.length) {
      this.tableHolder.append(h("p", { class: "empty" }, "No customers yet."));
      return;
    }
    const rows = this.customers.map((customer) => {
      const shared = sharingWith(customer, groups);
      return h(
        "tr",
        { dataset: { customerId: customer.id } },
        h("th", { scope: "row" }, h("a", { href: `#/customers/${customer.id}` }, customer.name)),
        h(
          "td",
          {},
          psaText(customer.psa) || h("span", { class: "muted" }, "Not mapped"),
          shared.length
            ? h(
                "span",
                { class: "shared-flag", title: "Contacts are never created for customers that share a PSA company" },
                `Shared with ${listing(shared.map((c) => c.name))}: contacts matched, never created`,
              )
            : null,
        ),
        h("td", {}, docsText(customer.documentation) || h("span", { class: "muted" }, "Not mapped")),
        ACCOUNT_TYPES.map((type) => this.policyCell(customer, type)),
        h("td", {}, h("a", { href: `#/preview?customer=${customer.id}`, "aria-label": `Preview an import for ${customer.name}` }, "Preview")),
      );
    });
    this.tableHolder.append(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "customers", id: "customers-table" },
          h("caption", { class: "visually-hidden" }, "Customers with their mappings and policies"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Customer"),
              h("th", { scope: "col" }, "PSA company"),
              h("th", { scope: "col" }, "Documentation"),
              ACCOUNT_TYPES.map((t) => h("th", { scope: "col" }, `${ACCOUNT_TYPE[t].one} policy`)),
              h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Preview")),
            ),
          ),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  toggleForm(button) {
    const open = this.formHolder.hidden;
    this.formHolder.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      clear(this.formHolder).append(this.addForm());
      this.formHolder.querySelector("input").focus();
    }
  }

  addForm() {
    const name = h("input", { type: "text", id: "customer-name", autocomplete: "off" });
    const psaProvider = h(
      "select",
      { id: "psa-provider" },
      h("option", { value: "" }, "None"),
      Object.entries(PSA).map(([value, text]) => h("option", { value }, text)),
    );
    const psaCompany = h("input", { type: "text", id: "psa-company", autocomplete: "off" });
    const docsProvider = h(
      "select",
      { id: "docs-provider" },
      h("option", { value: "" }, "None"),
      Object.entries(DOCS).map(([value, text]) => h("option", { value }, text)),
    );
    const docsOrg = h("input", { type: "text", id: "docs-org", autocomplete: "off" });
    const problems = h("div", { class: "form-problems" });
    const gets = h("div", { id: "customer-gets", "aria-live": "polite" });
    const submit = h("button", { type: "submit", class: "button-primary" }, "Add customer");
    const form = h(
      "form",
      { class: "card add-customer", novalidate: true, "aria-labelledby": "add-title" },
      h("h2", { id: "add-title" }, "Add a customer"),
      problems,
      field({ label: "Name", control: name, field: "name" }),
      h(
        "div",
        { class: "field-row" },
        field({ label: "PSA", control: psaProvider, field: "psa.provider" }),
        field({ label: "PSA company id", control: psaCompany, field: "psa.company_id", hint: "The company's id in the PSA." }),
      ),
      h(
        "div",
        { class: "field-row" },
        field({ label: "Documentation", control: docsProvider, field: "documentation.provider" }),
        field({
          label: "Organisation id",
          control: docsOrg,
          field: "documentation.organization_id",
          hint: "The organisation's id in IT Glue or Hudu.",
        }),
      ),
      gets,
      h(
        "div",
        { class: "form-actions" },
        submit,
        h("button", { type: "button", class: "button", onclick: () => this.toggleForm(this.addButton) }, "Cancel"),
      ),
    );

    const refresh = () => {
      psaCompany.disabled = !psaProvider.value;
      docsOrg.disabled = !docsProvider.value;
      clear(gets);
      const lines = ACCOUNT_TYPES.map((type) => {
        const policy = this.defaults[type];
        const words = ACCOUNT_TYPE[type];
        return h(
          "li",
          {},
          `${words.one} accounts: `,
          policy
            ? h("strong", {}, q(policy.name))
            : h("span", {}, `no default ${words.lower} policy, so none (assign one later)`),
        );
      });
      gets.append(h("div", { class: "notice" }, h("p", {}, "When added, this customer gets the default policies:"), h("ul", {}, lines)));
      const company = psaCompany.value.trim();
      if (psaProvider.value && company) {
        const same = this.customers.filter(
          (c) => c.psa && c.psa.provider === psaProvider.value && c.psa.company_id === company,
        );
        if (same.length) {
          gets.append(
            h(
              "div",
              { class: "notice notice-warning", id: "add-shared-psa" },
              `${listing(same.map((c) => c.name))} already ${same.length === 1 ? "maps" : "map"} to ${PSA[psaProvider.value]} company ${company}: ` +
                `PSA contacts will not be created for this customer nor for ${listing(same.map((c) => c.name))}; they are matched only.`,
            ),
          );
        }
      }
    };
    form.addEventListener("input", refresh);
    form.addEventListener("change", refresh);
    refresh();

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      clear(problems);
      const body = { name: name.value };
      if (psaProvider.value) body.psa = { provider: psaProvider.value, company_id: psaCompany.value };
      if (docsProvider.value) body.documentation = { provider: docsProvider.value, organization_id: docsOrg.value };
      submit.disabled = true;
      try {
        const { body: added } = await api.call("POST", "/v1/customers", { body });
        this.customers.push(added);
        this.customers.sort(byName);
        this.renderTable();
        this.toggleForm(this.addButton);
        const got = ACCOUNT_TYPES.map((t) => {
          const policy = this.policies.get(added.policy_ids[t]);
          return `${ACCOUNT_TYPE[t].lower}: ${policy ? q(policy.name) : "none"}`;
        });
        announce(`Added ${added.name}. Policies: ${got.join(", ")}.`);
        this.addButton.focus();
      } catch (error) {
        showIn(problems, problemPanel(error, { form }));
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }
}
