// Global Settings › Automatic Imports: the policies, grouped by account type.

import * as api from "./api.js";
import { h, listing, plural } from "./dom.js";
import { ACCOUNT_TYPES, ACCOUNT_TYPE, optionsOn, byName } from "./vocab.js";
import { breadcrumb, pageHeading, readOnlyNotice, badge } from "./widgets.js";

export async function policiesPage({ user }) {
  const [policies, customers] = await Promise.all([api.policies(), api.customers()]);
  const names = new Map(customers.map((c) => [c.id, c.name]));

  const newButton = user.canWrite
    ? h("a", { href: "#/policies/new", class: "button button-primary", id: "new-policy" }, "+ New Import Policy")
    : null;

  return h(
    "div",
    {},
    breadcrumb("Global Settings", "Automatic Imports"),
    pageHeading("Automatic Imports", newButton),
    h(
      "p",
      { class: "lead" },
      "What happens to each account that discovery finds at your customers. Every customer " +
        "follows one policy per account type; the default policy of each type is given to " +
        "customers when they are added.",
    ),
    readOnlyNotice(),
    ACCOUNT_TYPES.map((type) => section(type, policies, customers, names, user)),
  );
}

function section(type, allPolicies, customers, names, user) {
  const words = ACCOUNT_TYPE[type];
  const policies = allPolicies.filter((p) => p.account_type === type);
  policies.sort((a, b) => Number(b.is_default) - Number(a.is_default) || byName(a, b));
  const headingId = `section-${type}`;
  const unassigned = customers.filter((c) => !c.policy_ids[type]).sort(byName);

  const body = policies.length
    ? h(
        "ul",
        { class: "policy-list", "aria-labelledby": headingId },
        policies.map((p) => policyCard(p, names, user)),
      )
    : h(
        "p",
        { class: "empty" },
        `No ${words.lower} policy yet: ${words.lower} accounts are not imported automatically.`,
        user.canWrite ? " " : null,
        user.canWrite ? h("a", { href: `#/policies/new?type=${type}` }, `Create one`) : null,
      );

  return h(
    "section",
    { class: "policy-section", "aria-labelledby": headingId, id: `policies-${type}` },
    h("div", { class: "section-heading" }, h("h2", { id: headingId }, words.title), h("p", { class: "hint" }, words.about)),
    body,
    unassigned.length
      ? h(
          "p",
          { class: "unassigned" },
          `${plural(unassigned.length, "customer")} ${unassigned.length === 1 ? "has" : "have"} no ` +
            `${words.lower} policy, so their ${words.lower} accounts are not imported: `,
          listing(unassigned.map((c) => c.name)),
          ".",
        )
      : null,
  );
}

function policyCard(policy, names, user) {
  const on = optionsOn(policy.account_type, policy.options);
  const customerNames = policy.customer_ids.map((id) => names.get(id)).filter(Boolean).sort();
  const titleId = `policy-${policy.id}-name`;
  return h(
    "li",
    { class: "policy-card", dataset: { policyId: policy.id, policyName: policy.name } },
    h(
      "div",
      { class: "policy-main" },
      h(
        "h3",
        { id: titleId },
        h("a", { href: `#/policies/${policy.id}` }, policy.name),
        policy.is_default ? badge("Default", "badge-default") : null,
      ),
      policy.description ? h("p", { class: "description" }, policy.description) : null,
      h(
        "ul",
        { class: "chips", "aria-label": "Options on" },
        on.length ? on.map((text) => h("li", { class: "chip" }, text)) : h("li", { class: "chip chip-none" }, "No options on"),
      ),
    ),
    h(
      "div",
      { class: "policy-side" },
      h(
        "p",
        { class: "customer-count", title: customerNames.join(", ") },
        h("strong", {}, String(policy.customer_ids.length)),
        ` ${policy.customer_ids.length === 1 ? "customer" : "customers"}`,
      ),
      h(
        "a",
        { href: `#/policies/${policy.id}`, class: "button", "aria-describedby": titleId },
        user.canWrite ? "Edit" : "View",
      ),
    ),
  );
}

