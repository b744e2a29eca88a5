// + New Import Policy › Automatic Import Options, and the same page to view, edit or delete one.

import * as api from "./api.js";
import { h, clear, field, describe, uid, listing, plural, q, flashNext, clearFieldErrors } from "./dom.js";
import {
  ACCOUNT_TYPES,
  ACCOUNT_TYPE,
  OPTIONS,
  emptyOptions,
  psaGroups,
  sharingWith,
  psaText,
  byName,
  PSA,
} from "./vocab.js";
import { breadcrumb, pageHeading, readOnlyNotice, problemPanel, showIn, badge } from "./widgets.js";

export async function policyPage({ id, params, user }) {
  const isNew = id === "new";
  const [policies, customers, current] = await Promise.all([
    api.policies(),
    api.customers(),
    isNew ? null : api.call("GET", `/v1/import-policies/${encodeURIComponent(id)}`),
  ]);
  const page = new PolicyForm({
    user,
    policies,
    customers: customers.sort(byName),
    loaded: current ? current.body : null,
    version: current ? (current.etag ?? current.body.version) : null,
    type: isNew && ACCOUNT_TYPE[params.get("type")] ? params.get("type") : "end_user",
  });
  return page.render();
}

class PolicyForm {
  constructor({ user, policies, customers, loaded, version, type }) {
    this.user = user;
    this.editable = user.canWrite;
    this.policies = policies;
    this.customers = customers;
    this.loaded = loaded;
    this.version = version;
    this.type = loaded ? loaded.account_type : type;
    this.policyNames = new Map(policies.map((p) => [p.id, p.name]));
    this.groups = psaGroups(customers);
    this.selected = new Set(loaded ? loaded.customer_ids : []);
    this.optionsByType = {};
    for (const t of ACCOUNT_TYPES) this.optionsByType[t] = emptyOptions(t);
    if (loaded) this.optionsByType[this.type] = { ...emptyOptions(this.type), ...structuredClone(loaded.options) };
  }

  get isNew() {
    return !this.loaded;
  }

  get words() {
    return ACCOUNT_TYPE[this.type];
  }

  // -- layout ------------------------------------------------------------------------

  render() {
    const title = this.isNew ? "New Import Policy" : this.loaded.name;
    this.problems = h("div", { class: "form-problems" });
    this.conflict = h("div", { class: "form-conflict" });
    this.form = h("form", { class: "policy-form", novalidate: true, "aria-label": "Automatic Import Options" });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.form.addEventListener("change", () => this.refresh());
    this.form.addEventListener("input", (event) => {
      if (event.target === this.search) this.filterCustomers();
    });

    const body = h(
      "fieldset",
      { class: "form-body", disabled: !this.editable },
      h("legend", { class: "visually-hidden" }, "Automatic Import Options"),
      this.basicsSection(),
      this.defaultSection(),
      this.customersSection(),
      (this.optionsHolder = h("div", { class: "options-holder" })),
    );
    this.form.append(this.problems, this.conflict, body, this.actions());
    this.renderOptions();
    this.refresh();

    return h(
      "div",
      {},
      breadcrumb("Global Settings", ["Automatic Imports", "#/policies"], this.isNew ? "New Import Policy" : title),
      pageHeading(
        h("span", {}, title, !this.isNew && this.loaded.is_default ? badge("Default", "badge-default") : null),
      ),
      h(
        "p",
        { class: "lead" },
        this.isNew
          ? "Automatic Import Options: what to do with each account discovered at the customers you assign."
          : `Automatic Import Options for ${this.words.lower} accounts \u00b7 version ${this.version}`,
      ),
      readOnlyNotice(),
      this.form,
      (this.dialog = this.deleteDialog()),
    );
  }

  basicsSection() {
    let typeControl;
    if (this.isNew) {
      typeControl = h(
        "fieldset",
        { class: "radio-cards", dataset: { field: "account_type" } },
        h("legend", {}, "Account type"),
        h("p", { class: "hint", id: "type-hint" }, "A policy is for one account type only; it cannot be changed later."),
        ACCOUNT_TYPES.map((t) => {
          const input = h("input", {
            type: "radio",
            name: "account_type",
            value: t,
            id: `type-${t}`,
            checked: t === this.type,
            "aria-describedby": "type-hint",
          });
          input.addEventListener("change", () => this.switchType(t));
          return h(
            "div",
            { class: "radio-card" },
            input,
            h("label", { for: `type-${t}` }, h("strong", {}, ACCOUNT_TYPE[t].title), h("span", { class: "hint" }, ACCOUNT_TYPE[t].about)),
          );
        }),
        h("p", { class: "field-error", id: "type-error", hidden: true }),
      );
    } else {
      typeControl = h(
        "div",
        { class: "field" },
        h("p", { class: "label-like" }, "Account type"),
        h("p", {}, h("strong", {}, this.words.title), " \u2014 ", h("span", { class: "hint" }, "fixed; to cover the other type, create another policy.")),
      );
    }
    this.nameInput = h("input", {
      type: "text",
      id: "policy-name",
      name: "name",
      value: this.loaded ? this.loaded.name : "",
      autocomplete: "off",
    });
    this.descriptionInput = h("textarea", { id: "policy-description", name: "description", rows: "2" });
    this.descriptionInput.value = this.loaded ? this.loaded.description : "";
    return h(
      "section",
      { class: "card", "aria-labelledby": "basics-title" },
      h("h2", { id: "basics-title" }, "Policy"),
      typeControl,
      field({ label: "Name", control: this.nameInput, field: "name", hint: "Unique among the policies of this account type." }),
      field({
        label: "Description",
        control: this.descriptionInput,
        field: "description",
        hint: "Optional: who this policy is for, so colleagues pick the right one.",
      }),
    );
  }

  defaultSection() {
    this.defaultBox = h("input", {
      type: "checkbox",
      id: "is-default",
      name: "is_default",
      checked: this.loaded ? this.loaded.is_default : false,
    });
    this.defaultLabel = h("label", { for: "is-default" });
    this.defaultNote = h("p", { class: "note", id: "default-note", "aria-live": "polite" });
    describe(this.defaultBox, "default-rule", "default-note");
    return h(
      "section",
      { class: "card", "aria-labelledby": "default-title" },
      h("h2", { id: "default-title" }, "Default policy"),
      h(
        "div",
        { class: "check", dataset: { field: "is_default" } },
        this.defaultBox,
        this.defaultLabel,
        h(
          "p",
          { class: "hint", id: "default-rule" },
          "Only one policy per account type can be the default. A customer you add gets the default " +
            "policy of each account type; customers you already have keep the policy they have.",
        ),
        h("p", { class: "field-error", id: "is-default-error", hidden: true }),
      ),
      this.defaultNote,
    );
  }

  customersSection() {
    this.search = h("input", { type: "search", id: "customer-search", autocomplete: "off", "aria-controls": "customer-options" });
    this.customerCount = h("p", { class: "count", id: "customer-count", "aria-live": "polite" });
    this.customerList = h("ul", { class: "customer-options", id: "customer-options" });
    this.noMatch = h("p", { class: "hint", hidden: true }, "No customer matches your search.");
    this.moveNote = h("div", { id: "move-note", "aria-live": "polite" });
    this.sharedWarning = h("div", { id: "shared-psa", "aria-live": "polite" });
    this.customersHint = h("p", { class: "hint", id: "customers-hint" });
    return h(
      "section",
      { class: "card", "aria-labelledby": "customers-title" },
      h("h2", { id: "customers-title" }, "Customers"),
      h(
        "fieldset",
        { class: "customer-picker", dataset: { field: "customer_ids" }, "aria-describedby": "customers-hint" },
        h("legend", { class: "visually-hidden" }, "Customers assigned to this policy"),
        this.customersHint,
        h("p", { class: "field-error", id: "customers-error", hidden: true }),
        h("div", { class: "field search" }, h("label", { for: "customer-search" }, "Search customers"), this.search),
        this.customerCount,
        this.customerList,
        this.noMatch,
      ),
      this.moveNote,
      this.sharedWarning,
    );
  }

  renderCustomerOptions() {
    clear(this.customerList);
    if (!this.customers.length) {
      this.customerList.append(
        h("li", { class: "hint" }, "No customers yet. ", h("a", { href: "#/customers" }, "Add customers"), " first."),
      );
      return;
    }
    for (const customer of this.customers) {
      const box = h("input", {
        type: "checkbox",
        id: `customer-${customer.id}`,
        value: customer.id,
        checked: this.selected.has(customer.id),
      });
      const currentId = customer.policy_ids[this.type];
      const onThis = this.loaded && currentId === this.loaded.id;
      const current = currentId
        ? onThis
          ? "on this policy"
          : `now on ${q(this.policyNames.get(currentId) || "another policy")}`
        : `no ${this.words.lower} policy`;
      const detailId = `customer-${customer.id}-detail`;
      const moveId = `customer-${customer.id}-move`;
      describe(box, detailId, moveId);
      box.addEventListener("change", () => {
        if (box.checked) this.selected.add(customer.id);
        else this.selected.delete(customer.id);
      });
      const shared = sharingWith(customer, this.groups);
      this.customerList.append(
        h(
          "li",
          { dataset: { name: customer.name.toLowerCase(), customerId: customer.id } },
          box,
          h(
            "div",
            { class: "customer-text" },
            h("label", { for: box.id, class: "customer-name" }, customer.name),
            h(
              "span",
              { class: "customer-detail", id: detailId },
              current,
              customer.psa ? ` \u00b7 ${psaText(customer.psa)}` : "",
              shared.length ? ` (shared with ${listing(shared.map((c) => c.name))})` : "",
            ),
            h("span", { class: "move-flag", id: moveId, hidden: true }),
          ),
        ),
      );
    }
  }

  renderOptions() {
    const values = this.optionsByType[this.type];
    const sections = [];
    for (const option of OPTIONS[this.type]) {
      if (option.group) sections.push(this.groupControl(option, values[option.group] || {}));
      else sections.push(this.checkControl(`options.${option.key}`, `opt-${option.key}`, option, values[option.key]));
    }
    clear(this.optionsHolder).append(
      h(
        "section",
        { class: "card", "aria-labelledby": "options-title" },
        h("h2", { id: "options-title" }, `Options for ${this.words.lower} accounts`),
        h("p", { class: "hint" }, "Applied, in this order, to each account the first time it is discovered."),
        h("div", { class: "options", dataset: { field: "options" } }, h("p", { class: "field-error", id: "options-error", hidden: true }), sections),
      ),
    );
  }

  checkControl(path, id, option, checked, extra = null) {
    const input = h("input", { type: "checkbox", id, checked: Boolean(checked), dataset: { option: path } });
    const helpId = `${id}-help`;
    describe(input, helpId);
    return h(
      "div",
      { class: "check", dataset: { field: path } },
      input,
      h("label", { for: id }, option.label),
      h("p", { class: "hint", id: helpId }, option.help),
      extra,
      h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
    );
  }

  groupControl(option, value) {
    const base = `options.${option.group}`;
    const needsId = `opt-${option.group}-create-needs`;
    const match = this.checkControl(`${base}.match`, `opt-${option.group}-match`, option.match, value.match);
    const create = this.checkControl(
      `${base}.create_if_missing`,
      `opt-${option.group}-create`,
      option.create,
      value.create_if_missing,
      h("p", { class: "needs", id: needsId }, `Needs ${q(option.match.label)} first.`),
    );
    create.classList.add("sub");
    describe(create.querySelector("input"), needsId);
    return h(
      "fieldset",
      { class: "option-group", dataset: { field: base, group: option.group } },
      h("legend", {}, option.legend),
      h("p", { class: "field-error", id: `opt-${option.group}-error`, hidden: true }),
      match,
      create,
    );
  }

  actions() {
    if (!this.editable) {
      return h("div", { class: "form-actions" }, h("a", { href: "#/policies", class: "button" }, "Back to Automatic Imports"));
    }
    this.saveButton = h("button", { type: "submit", class: "button-primary" }, this.isNew ? "Create policy" : "Save changes");
    return h(
      "div",
      { class: "form-actions" },
      this.saveButton,
      h("a", { href: "#/policies", class: "button" }, "Cancel"),
      this.isNew
        ? null
        : h("button", { type: "button", class: "button-danger", id: "delete-policy", onclick: () => this.confirmDelete() }, "Delete policy\u2026"),
    );
  }

  // -- behaviour --------------------------------------------------------------------

  switchType(type) {
    this.optionsByType[this.type] = this.readOptions();
    this.type = type;
    this.renderOptions();
    this.refresh();
  }

  readOptions() {
    const options = emptyOptions(this.type);
    for (const input of this.optionsHolder.querySelectorAll("input[data-option]")) {
      const [, head, tail] = input.dataset.option.split(".");
      if (tail) options[head][tail] = input.checked;
      else options[head] = input.checked;
    }
    return options;
  }

  /** Everything that depends on the current choices. */
  refresh() {
    if (this.renderedFor !== this.type) {
      this.renderCustomerOptions();
      this.filterCustomers();
      this.renderedFor = this.type;
    }
    this.defaultLabel.textContent = `Set as default for ${this.words.lower} accounts`;
    this.customersHint.textContent =
      `A customer has one ${this.words.lower} policy at a time: assigning one here moves it off ` +
      "the policy it is on now.";
    for (const group of this.optionsHolder.querySelectorAll("fieldset[data-group]")) {
      const match = group.querySelector(`#opt-${group.dataset.group}-match`);
      const create = group.querySelector(`#opt-${group.dataset.group}-create`);
      if (!match.checked) create.checked = false;
      create.disabled = !match.checked;
      group.querySelector(".needs").hidden = match.checked;
    }
    this.refreshDefaultNote();
    this.refreshMoves();
    this.refreshShared();
  }

  refreshDefaultNote() {
    const thisId = this.loaded && this.loaded.id;
    const current = this.policies.find((p) => p.account_type === this.type && p.is_default);
    const words = this.words.lower;
    let text;
    let warn = false;
    if (this.defaultBox.checked) {
      if (current && current.id !== thisId) {
        text = `${q(current.name)} is the default ${words} policy now. Saving moves the Default badge to this policy, and ${q(current.name)} loses it.`;
        warn = true;
      } else if (current) {
        text = `This is the default ${words} policy.`;
      } else {
        text = `There is no default ${words} policy yet: this one becomes it.`;
      }
    } else if (current && current.id === thisId) {
      text = `This is the default ${words} policy now. Saving with the box unchecked leaves ${words} accounts with no default: customers added later get no ${words} policy.`;
      warn = true;
    } else if (current) {
      text = `${q(current.name)} stays the default ${words} policy.`;
    } else {
      text = `There is no default ${words} policy: customers added later get no ${words} policy.`;
    }
    this.defaultNote.textContent = text;
    this.defaultNote.className = warn ? "note note-warning" : "note";
  }

  refreshMoves() {
    const thisId = this.loaded && this.loaded.id;
    const moving = [];
    for (const item of this.customerList.querySelectorAll("li[data-customer-id]")) {
      const customer = this.customers.find((c) => c.id === item.dataset.customerId);
      const flag = item.querySelector(".move-flag");
      const currentId = customer.policy_ids[this.type];
      const moves = this.selected.has(customer.id) && currentId && currentId !== thisId;
      const leaves = !this.selected.has(customer.id) && thisId && currentId === thisId;
      flag.hidden = !(moves || leaves);
      flag.textContent = moves
        ? `Moves here from ${q(this.policyNames.get(currentId) || "another policy")}`
        : leaves
          ? `Will have no ${this.words.lower} policy`
          : "";
      flag.className = leaves ? "move-flag move-flag-leave" : "move-flag";
      if (moves) moving.push(`${customer.name} (from ${q(this.policyNames.get(currentId) || "another policy")})`);
    }
    const leaving = this.loaded
      ? this.loaded.customer_ids
          .filter((cid) => !this.selected.has(cid))
          .map((cid) => (this.customers.find((c) => c.id === cid) || { name: cid }).name)
      : [];
    const names = this.customers.filter((c) => this.selected.has(c.id)).map((c) => c.name);
    this.customerCount.textContent = names.length
      ? `${plural(names.length, "customer")} selected: ${listing(names)}.`
      : "No customer selected.";
    clear(this.moveNote);
    if (moving.length) {
      this.moveNote.append(
        h("p", { class: "note note-warning" }, `Saving moves ${plural(moving.length, "customer")} off their current ${this.words.lower} policy: ${listing(moving)}.`),
      );
    }
    if (leaving.length) {
      this.moveNote.append(
        h("p", { class: "note note-warning" }, `${listing(leaving)} will have no ${this.words.lower} policy: their ${this.words.lower} accounts will not be imported automatically.`),
      );
    }
  }

  refreshShared() {
    clear(this.sharedWarning);
    if (this.type !== "end_user") return;
    const shared = this.customers.filter((c) => this.selected.has(c.id) && sharingWith(c, this.groups).length);
    if (!shared.length) return;
    const options = this.readOptions();
    const reasons = shared.map((c) => {
      const others = sharingWith(c, this.groups).map((o) => o.name);
      return h("li", {}, `${c.name} shares ${PSA[c.psa.provider] || c.psa.provider} company ${c.psa.company_id} with ${listing(others)}.`);
    });
    this.sharedWarning.append(
      h(
        "div",
        { class: "notice notice-warning", id: "shared-psa-warning" },
        h("p", {}, h("strong", {}, `PSA contacts will not be created for ${listing(shared.map((c) => c.name))}.`)),
        h("ul", {}, reasons),
        h(
          "p",
          {},
          "When several customers map to one PSA company, the PSA cannot tell whose contact a new one " +
            "would be, so their accounts are only matched to existing contacts" +
            (options.psa && options.psa.create_if_missing
              ? `, even though ${q("Create the contact if it is missing")} is on.`
              : "."),
        ),
      ),
    );
  }

  filterCustomers() {
    const needle = this.search.value.trim().toLowerCase();
    let shown = 0;
    for (const item of this.customerList.querySelectorAll("li[data-customer-id]")) {
      const visible = !needle || item.dataset.name.includes(needle);
      item.hidden = !visible;
      if (visible) shown += 1;
    }
    this.noMatch.hidden = shown > 0 || !this.customers.length;
  }

  body() {
    const body = {
      name: this.nameInput.value,
      description: this.descriptionInput.value,
      is_default: this.defaultBox.checked,
      customer_ids: this.customers.filter((c) => this.selected.has(c.id)).map((c) => c.id),
      options: this.readOptions(),
    };
    return this.isNew ? { account_type: this.type, ...body } : body;
  }

  async save() {
    clearFieldErrors(this.form);
    clear(this.problems);
    clear(this.conflict);
    this.saveButton.disabled = true;
    this.form.setAttribute("aria-busy", "true");
    try {
      const { body } = this.isNew
        ? await api.call("POST", "/v1/import-policies", { body: this.body() })
        : await api.call("PATCH", `/v1/import-policies/${this.loaded.id}`, { body: this.body(), ifMatch: this.version });
      flashNext(`${this.isNew ? "Created" : "Saved"} ${q(body.name)}.`);
      location.hash = "#/policies";
    } catch (error) {
      if (error.status === 412) await this.explainConflict();
      else {
        if (error.status === 409 && /named/.test(error.problem.detail || "")) {
          error.problem.errors = [{ field: "name", detail: error.problem.detail }];
        }
        showIn(this.problems, problemPanel(error, { form: this.form, intro: error.status === 409 ? "Not saved: name already taken" : null }));
      }
    } finally {
      this.saveButton.disabled = false;
      this.form.removeAttribute("aria-busy");
    }
  }

  /** A 412: say who changed what, and let the user choose. Nothing is lost silently. */
  async explainConflict() {
    let latest;
    try {
      latest = await api.call("GET", `/v1/import-policies/${this.loaded.id}`);
    } catch (error) {
      showIn(
        this.conflict,
        problemPanel(error, { intro: error.status === 404 ? "This policy was deleted by someone else" : "Changed by someone else" }),
      );
      return;
    }
    const theirs = latest.body;
    const mine = this.loaded;
    const changed = [];
    if (theirs.name !== mine.name) changed.push(`the name (now ${q(theirs.name)})`);
    if (theirs.description !== mine.description) changed.push("the description");
    if (theirs.is_default !== mine.is_default) changed.push(theirs.is_default ? "made it the default" : "removed the Default flag");
    if ([...theirs.customer_ids].sort().join() !== [...mine.customer_ids].sort().join()) changed.push("the customers");
    if (JSON.stringify(theirs.options) !== JSON.stringify(mine.options)) changed.push("the options");
    const newVersion = latest.etag ?? theirs.version;
    const overwrite = h(
      "button",
      {
        type: "button",
        class: "button-primary",
        onclick: () => {
          this.loaded = theirs;
          this.version = newVersion;
          this.save();
        },
      },
      "Save my version over theirs",
    );
    const reload = h(
      "button",
      { type: "button", class: "button", onclick: () => window.dispatchEvent(new HashChangeEvent("hashchange")) },
      "Discard my changes and load theirs",
    );
    const panel = h(
      "div",
      { class: "problem conflict", role: "alert", tabindex: "-1", id: "conflict" },
      h("h2", {}, "Not saved: someone else changed this policy while you were editing it"),
      h(
        "p",
        {},
        `You started from version ${this.version}; it is now at version ${newVersion}` +
          (changed.length ? `. They changed ${listing(changed)}.` : "."),
      ),
      h("p", {}, "Your changes are still in the form. Choose what to keep:"),
      h("div", { class: "form-actions" }, overwrite, reload),
    );
    showIn(this.conflict, panel);
  }

  // -- delete -----------------------------------------------------------------------

  deleteDialog() {
    if (this.isNew || !this.editable) return null;
    const titleId = uid("delete-title");
    this.deleteProblems = h("div", {});
    const names = this.loaded.customer_ids
      .map((cid) => (this.customers.find((c) => c.id === cid) || { name: cid }).name)
      .sort();
    const words = this.words.lower;
    const confirm = h("button", { type: "button", class: "button-danger", onclick: () => this.remove() }, "Delete policy");
    const cancel = h("button", { type: "button", class: "button", autofocus: true, onclick: () => this.dialog.close() }, "Cancel");
    return h(
      "dialog",
      { class: "confirm", "aria-labelledby": titleId, id: "delete-dialog" },
      h("h2", { id: titleId }, `Delete ${q(this.loaded.name)}?`),
      names.length
        ? h(
            "p",
            {},
            `${plural(names.length, "customer")} will be left with no ${words} policy, so their ${words} accounts ` +
              "are no longer imported automatically until you assign another policy: ",
            h("strong", {}, listing(names)),
            ".",
          )
        : h("p", {}, "No customer is assigned to it."),
      this.loaded.is_default
        ? h("p", {}, `It is the default ${words} policy: customers added later will get no ${words} policy.`)
        : null,
      h("p", {}, "This cannot be undone."),
      this.deleteProblems,
      h("div", { class: "form-actions" }, cancel, confirm),
    );
  }

  confirmDelete() {
    clear(this.deleteProblems);
    this.dialog.showModal();
  }

  async remove() {
    try {
      await api.call("DELETE", `/v1/import-policies/${this.loaded.id}`);
    } catch (error) {
      showIn(this.deleteProblems, problemPanel(error));
      return;
    }
    this.dialog.close();
    const left = this.loaded.customer_ids.length;
    flashNext(
      `Deleted ${q(this.loaded.name)}.` +
        (left ? ` ${plural(left, "customer")} now ${left === 1 ? "has" : "have"} no ${this.words.lower} policy.` : ""),
    );
    location.hash = "#/policies";
  }
}
