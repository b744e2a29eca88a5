// Global Settings › Integrations: the tools the handlers call, one card per provider.
// Credentials are write-only: the API only says which fields are set, never a value.

import * as api from "./api.js";
import { h, append, clear, field, listing, q, announce, clearFieldErrors } from "./dom.js";
import { PROVIDERS, PROVIDER_GROUPS, fieldLabel, integrationStatus } from "./integrations-vocab.js";
import { when } from "./vocab.js";
import { breadcrumb, pageHeading, readOnlyNotice, problemPanel, showIn, statusChip, badge, confirmDialog } from "./widgets.js";

export async function integrationsPage({ user }) {
  const { body } = await api.call("GET", "/v1/integrations");
  return new IntegrationsView(user, body.items).render();
}

class IntegrationsView {
  constructor(user, items) {
    this.user = user;
    this.items = new Map(items.map((i) => [i.provider, i]));
    this.cards = new Map();
  }

  render() {
    const groups = PROVIDER_GROUPS.map((group) => {
      const headingId = `integrations-${group.id}`;
      return h(
        "section",
        { class: "integration-group", "aria-labelledby": headingId },
        h("div", { class: "section-heading" }, h("h2", { id: headingId }, group.title)),
        h(
          "div",
          { class: "integration-cards" },
          PROVIDERS.filter((p) => p.group === group.id).map((spec) => {
            const card = h("section", {
              class: "card integration",
              id: `integration-${spec.id}`,
              dataset: { provider: spec.id },
              "aria-labelledby": `integration-${spec.id}-title`,
            });
            this.cards.set(spec.id, card);
            this.renderCard(spec);
            return card;
          }),
        ),
      );
    });
    return h(
      "div",
      {},
      breadcrumb("Global Settings", "Integrations"),
      pageHeading("Integrations"),
      h(
        "p",
        { class: "lead" },
        "The tools the handlers work in for your customers: PSA, documentation, email and Microsoft 365. " +
          "Credentials are write-only: once saved they are never shown again, only which of them are set.",
      ),
      readOnlyNotice("the integrations"),
      groups,
    );
  }

  // -- a provider's card ----------------------------------------------------------

  renderCard(spec, { focus = false } = {}) {
    const card = clear(this.cards.get(spec.id));
    const integration = this.items.get(spec.id) || null;
    const status = integrationStatus(integration);
    const formId = `integration-${spec.id}-form`;
    const holder = h("div", { id: formId, hidden: true });
    let toggle = null;
    if (this.user.canWrite) {
      toggle = h(
        "button",
        { type: "button", class: "button", "aria-expanded": "false", "aria-controls": formId, id: `integration-${spec.id}-edit` },
        integration ? `Edit ${spec.name}` : `Set up ${spec.name}`,
      );
      toggle.addEventListener("click", () => this.toggleForm(spec, toggle, holder));
    }
    append(card, [
      h(
        "div",
        { class: "integration-head" },
        h("h3", { id: `integration-${spec.id}-title` }, spec.name),
        h(
          "div",
          { class: "integration-badges" },
          statusChip(status.text, status.kind, { class: `status-chip status-${status.kind} integration-status` }),
          integration && !integration.enabled ? badge("Disabled", "badge-muted") : null,
        ),
      ),
      h("p", { class: "hint" }, spec.uses),
      this.statusText(spec, integration),
      integration ? this.facts(spec, integration) : null,
      toggle ? h("div", { class: "form-actions integration-actions" }, toggle) : null,
      holder,
    ]);
    if (focus && toggle) toggle.focus();
  }

  statusText(spec, integration) {
    if (!integration) {
      return h("p", { class: "integration-note" }, `Not set up: commands that need ${spec.name} fail until it is.`);
    }
    const checked = integration.status.checked_at
      ? h("span", { class: "muted" }, " Last checked ", h("time", { datetime: integration.status.checked_at }, when(integration.status.checked_at)), ".")
      : null;
    switch (integration.status.state) {
      case "failing":
        return h(
          "div",
          { class: "integration-problem", role: "note" },
          h("p", {}, h("strong", {}, `The last call to ${spec.name} failed. `), `${spec.name} said: `, h("q", { class: "vendor-message" }, integration.status.detail || "nothing")),
          h("p", {}, "Check the address and the credentials.", checked),
        );
      case "ok":
        return h("p", { class: "integration-note" }, `${spec.name} answered the last call.`, checked);
      default:
        return h(
          "p",
          { class: "integration-note" },
          "Not checked yet: the first command that uses it tells whether it works.",
        );
    }
  }

  facts(spec, integration) {
    const set = integration.credential_fields.map((name) => fieldLabel(spec.id, name));
    const settings = spec.settings.map((s) => {
      const value = integration.settings[s.name];
      const shown =
        value === undefined || value === null
          ? s.default !== undefined
            ? `${s.default} (default)`
            : s.type === "tristate"
              ? "default"
              : "not set"
          : typeof value === "boolean"
            ? value
              ? "on"
              : "off"
            : String(value);
      return h("li", {}, `${s.label}: `, h("span", { class: "setting-value" }, shown));
    });
    return h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Address"),
      h("dd", {}, h("code", { class: "base-url" }, integration.base_url)),
      h("dt", {}, "Credentials"),
      h("dd", { class: "credentials-set" }, set.length ? `${listing(set)} set` : "None set", h("span", { class: "muted" }, " (never shown)")),
      h("dt", {}, "Settings"),
      h("dd", {}, h("ul", { class: "settings-list" }, settings)),
      h("dt", {}, "Changed"),
      h("dd", {}, h("time", { datetime: integration.updated_at }, when(integration.updated_at)), ` \u00b7 version ${integration.version}`),
    );
  }

  toggleForm(spec, button, holder) {
    const open = holder.hidden;
    holder.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    clear(holder);
    if (open) {
      holder.append(this.form(spec, button, holder));
      holder.querySelector("input").focus();
    }
  }

  // -- the form ---------------------------------------------------------------------

  form(spec, button, holder) {
    const integration = this.items.get(spec.id) || null;
    const stored = new Set(integration ? integration.credential_fields : []);
    const idFor = (name) => `${spec.id}-${name.replace(/_/g, "-")}`;
    const problems = h("div", { class: "form-problems" });

    const address = h("input", {
      type: "text",
      id: idFor("base-url"),
      inputmode: "url",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: spec.address.example,
      value: integration ? integration.base_url : "",
    });

    const secrets = spec.credentials.map((c) => {
      const input = h("input", { type: "password", id: idFor(`cred-${c.name}`), autocomplete: "new-password", spellcheck: "false" });
      const hint = stored.has(c.name)
        ? [badge("Set", "badge-ok badge-set"), ` Stored, never shown. ${c.hint || ""}`.trimEnd()]
        : c.hint || null;
      return { spec: c, input, holder: field({ label: c.label, control: input, field: `credentials.${c.name}`, hint }) };
    });
    const credentialsHint = integration
      ? "Leave them all empty to keep the stored ones. To change any, type all of them again: they are replaced together."
      : "Stored encrypted, and never shown again once saved.";

    const settings = spec.settings.map((s) => {
      const current = integration ? integration.settings[s.name] : undefined;
      let control;
      if (s.type === "tristate") {
        control = h(
          "select",
          { id: idFor(`set-${s.name}`) },
          h("option", { value: "", selected: current === undefined || current === null }, "Default"),
          h("option", { value: "true", selected: current === true }, "On"),
          h("option", { value: "false", selected: current === false }, "Off"),
        );
      } else {
        control = h("input", {
          type: "text",
          id: idFor(`set-${s.name}`),
          autocomplete: "off",
          inputmode: s.type === "int" ? "numeric" : s.type === "email" ? "email" : undefined,
          placeholder: s.default !== undefined ? String(s.default) : undefined,
          value: current === undefined || current === null ? "" : String(current),
        });
      }
      const hint = [s.hint, s.default !== undefined ? `Empty for the default, ${s.default}.` : null].filter(Boolean).join(" ") || null;
      return { spec: s, control, holder: field({ label: s.label, control, field: `settings.${s.name}`, hint }) };
    });

    const enabled = h("input", { type: "checkbox", id: idFor("enabled"), checked: integration ? integration.enabled : true });
    const enabledHint = `${idFor("enabled")}-hint`;
    enabled.setAttribute("aria-describedby", enabledHint);
    const submit = h("button", { type: "submit", class: "button-primary" }, `Save ${spec.name}`);
    const remove = integration
      ? h("button", { type: "button", class: "button-danger", onclick: () => this.confirmRemove(spec) }, `Remove ${spec.name}\u2026`)
      : null;

    const form = h(
      "form",
      { class: "integration-form", novalidate: true, "aria-label": `${spec.name} integration` },
      problems,
      field({
        label: "Address",
        control: address,
        field: "base_url",
        hint: `${spec.address.hint} For example ${spec.address.example}${spec.scheme === "https" ? " (https is added when left out)" : ""}.`,
      }),
      h(
        "fieldset",
        { class: "integration-fieldset", dataset: { field: "credentials" } },
        h("legend", {}, "Credentials"),
        h("p", { class: "hint" }, [credentialsHint, spec.credentialsHint].filter(Boolean).join(" ")),
        h("p", { class: "field-error", id: idFor("credentials-error"), hidden: true }),
        h("div", { class: "field-grid" }, secrets.map((s) => s.holder)),
      ),
      settings.length
        ? h(
            "fieldset",
            { class: "integration-fieldset", dataset: { field: "settings" } },
            h("legend", {}, "Settings"),
            h("p", { class: "field-error", id: idFor("settings-error"), hidden: true }),
            h("div", { class: "field-grid" }, settings.map((s) => s.holder)),
          )
        : null,
      h(
        "div",
        { class: "check", dataset: { field: "enabled" } },
        enabled,
        h("label", { for: enabled.id }, "Enabled"),
        h("p", { class: "hint", id: enabledHint }, `When off, the handlers do not call ${spec.name}: its commands fail as if it were not set up.`),
        h("p", { class: "field-error", id: idFor("enabled-error"), hidden: true }),
      ),
      h(
        "div",
        { class: "form-actions" },
        submit,
        h("button", { type: "button", class: "button", onclick: () => this.toggleForm(spec, button, holder) }, "Cancel"),
        remove,
      ),
    );

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      clear(problems);
      let url = address.value.trim();
      if (url && !url.includes("://")) {
        url = `${spec.scheme}://${url}`;
        address.value = url;
      }
      const body = { base_url: url, settings: {}, enabled: enabled.checked };
      const typed = secrets.filter((s) => s.input.value !== "");
      if (!integration || typed.length) {
        body.credentials = {};
        for (const s of secrets) {
          if (s.spec.optional && s.input.value === "") continue;
          body.credentials[s.spec.name] = s.input.value;
        }
      }
      for (const s of settings) {
        const raw = s.control.value.trim();
        if (raw === "") continue;
        if (s.spec.type === "int") body.settings[s.spec.name] = /^-?\d+$/.test(raw) ? Number(raw) : raw;
        else if (s.spec.type === "tristate") body.settings[s.spec.name] = raw === "true";
        else body.settings[s.spec.name] = raw;
      }
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        const { body: saved } = await api.call("PUT", `/v1/integrations/${spec.id}`, { body });
        this.items.set(spec.id, saved);
        this.renderCard(spec, { focus: true });
        announce(`${integration ? "Saved" : "Set up"} ${spec.name}. Credentials set: ${listing(saved.credential_fields.map((n) => fieldLabel(spec.id, n)))}.`);
      } catch (error) {
        showIn(problems, problemPanel(error, { form, intro: error.status === 422 ? `${spec.name} was not saved: some fields need attention` : null }));
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
      }
    });
    return form;
  }

  // -- remove -----------------------------------------------------------------------

  confirmRemove(spec) {
    confirmDialog({
      id: "remove-dialog",
      title: `Remove ${q(spec.name)}?`,
      body: h("p", {}, `Its stored credentials are deleted. Until you set it up again, commands that need ${spec.name} fail.`),
      confirmLabel: "Remove integration",
      onConfirm: async () => {
        await api.call("DELETE", `/v1/integrations/${spec.id}`);
        this.items.delete(spec.id);
      },
      afterConfirm: () => {
        this.renderCard(spec, { focus: true });
        announce(`Removed ${spec.name}: its credentials are deleted.`);
      },
    });
  }
}
