// Preview: the decision the import worker would take for a sample account (nothing is sent).

import * as api from "./api.js";
import { h, clear, field, plural, q, clearFieldErrors } from "./dom.js";
import { ACCOUNT_TYPES, ACCOUNT_TYPE, DIRECTORY, describeCommand, byName } from "./vocab.js";
import { breadcrumb, pageHeading, problemPanel, showIn, badge, notesList } from "./widgets.js";

function newExternalId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function previewPage({ params }) {
  const [policies, customers] = await Promise.all([api.policies(), api.customers()]);
  customers.sort(byName);
  const policyNames = new Map(policies.map((p) => [p.id, p.name]));
  const customerById = new Map(customers.map((c) => [c.id, c]));

  const customer = h(
    "select",
    { id: "preview-customer" },
    customers.map((c) => h("option", { value: c.id, selected: c.id === params.get("customer") }, c.name)),
  );
  const typeGroup = h(
    "fieldset",
    { class: "inline-radios", dataset: { field: "account_type" } },
    h("legend", {}, "Account type"),
    h(
      "div",
      { class: "radios" },
      ACCOUNT_TYPES.map((t, i) =>
        h(
          "span",
          { class: "radio" },
          h("input", { type: "radio", name: "account_type", id: `preview-type-${t}`, value: t, checked: i === 0 }),
          h("label", { for: `preview-type-${t}` }, ACCOUNT_TYPE[t].one),
        ),
      ),
    ),
    h("p", { class: "field-error", id: "preview-type-error", hidden: true }),
  );
  const directory = h(
    "select",
    { id: "preview-directory" },
    Object.entries(DIRECTORY).map(([value, text]) => h("option", { value }, text)),
  );
  const username = h("input", { type: "text", id: "preview-username", value: "jdoe", autocomplete: "off" });
  const email = h("input", { type: "text", id: "preview-email", value: "jdoe@example.com", autocomplete: "off", inputmode: "email" });
  const problems = h("div", { class: "form-problems" });
  const result = h("section", { class: "preview-result", id: "preview-result", "aria-live": "polite", "aria-labelledby": "result-title" });

  const form = h(
    "form",
    { class: "card preview-form", novalidate: true, "aria-label": "Sample account" },
    problems,
    field({ label: "Customer", control: customer, field: "customer_id" }),
    typeGroup,
    field({ label: "Directory", control: directory, field: "directory" }),
    h(
      "div",
      { class: "field-row" },
      field({ label: "Username", control: username, field: "username" }),
      field({ label: "Email (optional)", control: email, field: "email" }),
    ),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button-primary" }, "Preview decision")),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    clear(problems);
    const account = {
      customer_id: customer.value,
      account_type: form.querySelector("input[name=account_type]:checked").value,
      directory: directory.value,
      external_id: newExternalId(),
      username: username.value,
    };
    if (email.value.trim()) account.email = email.value.trim();
    try {
      const { body } = await api.call("POST", "/v1/import-preview", { body: account });
      showDecision(result, body, customerById.get(account.customer_id), account, policyNames, customers);
    } catch (error) {
      clear(result);
      showIn(problems, problemPanel(error, { form }));
    }
  });

  return h(
    "div",
    {},
    breadcrumb("Global Settings", ["Automatic Imports", "#/policies"], "Preview"),
    pageHeading("Import preview"),
    h(
      "p",
      { class: "lead" },
      "What the import worker would do, with the policies as they are now, for an account discovered " +
        "at a customer. Nothing is sent.",
    ),
    customers.length
      ? h("div", { class: "preview-layout" }, form, result)
      : h("p", { class: "empty" }, "Add a customer first: ", h("a", { href: "#/customers" }, "Customers"), "."),
  );
}

function showDecision(holder, decision, customer, account, policyNames, customers) {
  const words = ACCOUNT_TYPE[account.account_type];
  clear(holder);
  holder.append(h("h2", { id: "result-title" }, "Decision"));
  if (decision.outcome === "no_policy") {
    holder.append(
      h(
        "p",
        { class: "outcome outcome-none" },
        badge("No policy", "badge-muted"),
        ` ${customer.name} has no ${words.lower} policy, so nothing would be done. The account is decided ` +
          "again the next time it is discovered, so assigning a policy later still imports it.",
      ),
    );
    return;
  }
  holder.append(
    h(
      "p",
      { class: "outcome" },
      badge("Imported", "badge-ok"),
      ` under ${q(policyNames.get(decision.policy_id) || decision.policy_id)} (version ${decision.policy_version}): `,
      decision.commands.length ? `${plural(decision.commands.length, "command")}, in this order.` : "no command.",
    ),
  );
  if (decision.commands.length) {
    holder.append(
      h(
        "ol",
        { class: "commands", id: "preview-commands" },
        decision.commands.map((c) =>
          h(
            "li",
            {},
            h("span", { class: "command-text" }, describeCommand(c)),
            h("span", { class: "command-meta" }, h("code", {}, c.type), " \u2192 topic ", h("code", {}, c.topic)),
          ),
        ),
      ),
    );
  }
  holder.append(h("h3", {}, decision.notes.length ? "Notes: options on but not acted upon" : "Notes"));
  holder.append(
    decision.notes.length
      ? notesList(decision.notes, { customer, customers }, { id: "preview-notes" })
      : h("p", { class: "hint" }, "None: every option that is on is acted upon."),
  );
}
