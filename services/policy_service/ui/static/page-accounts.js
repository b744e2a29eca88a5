// Accounts: every account the import worker decided, what was done for it and how it went.
// Live: while the page is open it asks again every few seconds.

import * as api from "./api.js";
import { h, append, clear, field, plural, q, announce } from "./dom.js";
import {
  ACCOUNT_TYPES,
  ACCOUNT_TYPE,
  ACCOUNT_STATUSES,
  ACCOUNT_STATUS,
  COMMAND_STATUS,
  DIRECTORY,
  INTEGRATION_REASONS,
  commandTitle,
  outcomeText,
  reasonText,
  when,
  byName,
} from "./vocab.js";
import { providerName } from "./integrations-vocab.js";
import { breadcrumb, pageHeading, problemPanel, statusChip, notesList } from "./widgets.js";

export const POLL_MS = 3000;
const PAGE_SIZE = 50;
const DEBOUNCE_MS = 300;

const STATUS_KIND = { done: "ok", pending: "pending", attention: "failing", no_policy: "none" };
const COMMAND_KIND = { succeeded: "ok", pending: "pending", failed: "failing" };

export function accountStatusChip(status, attrs = {}) {
  const words = ACCOUNT_STATUS[status] || { label: status };
  return statusChip(words.label, STATUS_KIND[status] || "none", attrs);
}

/** ``#/accounts/<key>``: the route of one account (its key URL-encoded). */
export function accountHref(key) {
  return `#/accounts/${encodeURIComponent(key)}`;
}

/** ``#/accounts?customer=…&status=…``: the list with those filters. */
export function accountsHref(filters = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
  const query = params.toString();
  return `#/accounts${query ? `?${query}` : ""}`;
}

/** Every status with its count (0 for those the API left out). */
export function allCounts(counts) {
  const out = {};
  for (const s of ACCOUNT_STATUSES) out[s] = (counts && counts[s]) || 0;
  return out;
}

/** The counts as links to the list filtered by each status (and ``filters``). */
export function countLinks(counts, filters = {}, attrs = {}) {
  const all = allCounts(counts);
  return h(
    "ul",
    { class: "count-chips count-links", ...attrs },
    ACCOUNT_STATUSES.map((s) =>
      h(
        "li",
        {},
        h(
          "a",
          { href: accountsHref({ ...filters, status: s }), class: `count-chip status-${STATUS_KIND[s]}`, dataset: { status: s } },
          h("span", { class: "status-dot", "aria-hidden": "true" }),
          h("span", { class: "count-label" }, ACCOUNT_STATUS[s].label),
          " ",
          h("span", { class: "count-number" }, String(all[s])),
        ),
      ),
    ),
  );
}

/**
 * Ask ``tick`` again every ``POLL_MS`` while the page that started it is shown: stopped
 * when it is left (``onLeave``, the router's). Never two asks at once; none while the
 * tab is hidden.
 */
function poll({ isCurrent, onLeave }, tick) {
  let timer = null;
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  const next = () => {
    if (stopped) return;
    timer = setTimeout(async () => {
      if (stopped || !isCurrent()) return stop();
      if (!document.hidden) {
        try {
          await tick();
        } catch {
          // tick shows its own problem; keep asking
        }
      }
      next();
    }, POLL_MS);
  };
  onLeave(stop);
  next();
  return stop;
}

export async function accountsPage({ params, isCurrent, onLeave }) {
  const customers = (await api.customers()).sort(byName);
  const view = new AccountsList(customers, params, { isCurrent, onLeave });
  await view.loadFirst();
  return view.render();
}

// -- the list ------------------------------------------------------------------------

class AccountsList {
  constructor(customers, params, router) {
    this.customers = customers;
    this.customerById = new Map(customers.map((c) => [c.id, c]));
    this.router = router;
    const status = params.get("status");
    const type = params.get("type");
    this.filters = {
      customer: this.customerById.has(params.get("customer")) ? params.get("customer") : "",
      type: ACCOUNT_TYPE[type] ? type : "",
      status: ACCOUNT_STATUS[status] ? status : "",
      q: params.get("q") || "",
    };
    this.items = [];
    this.cursor = null;
    this.counts = allCounts({});
    this.paging = false; // a "Load more" happened: polling then refreshes the counts only
    this.seq = 0;
  }

  url({ cursor = null, limit = PAGE_SIZE, withStatus = true } = {}) {
    const params = new URLSearchParams();
    if (this.filters.customer) params.set("customer_id", this.filters.customer);
    if (this.filters.type) params.set("account_type", this.filters.type);
    if (withStatus && this.filters.status) params.set("status", this.filters.status);
    if (this.filters.q.trim()) params.set("q", this.filters.q.trim());
    params.set("limit", String(limit));
    if (cursor) params.set("cursor", cursor);
    return `/v1/accounts?${params}`;
  }

  async loadFirst() {
    const seq = ++this.seq;
    const { body } = await api.call("GET", this.url());
    if (seq !== this.seq) return false;
    this.items = body.items;
    this.cursor = body.next_cursor;
    this.counts = allCounts(body.counts);
    this.paging = false;
    return true;
  }

  render() {
    this.countsHolder = h("div", { class: "count-chips", role: "group", "aria-label": "Status: show only", id: "account-counts" });
    this.problem = h("div", { class: "refresh-problem", "aria-live": "polite" });
    this.tableHolder = h("div", { id: "accounts-results" });
    this.more = h("div", { class: "load-more" });
    this.summary = h("p", { class: "count", id: "accounts-summary", "aria-live": "polite" });
    this.renderCounts();
    this.renderTable();

    const customer = h(
      "select",
      { id: "accounts-customer" },
      h("option", { value: "" }, "All customers"),
      this.customers.map((c) => h("option", { value: c.id, selected: c.id === this.filters.customer }, c.name)),
    );
    const type = h(
      "select",
      { id: "accounts-type" },
      h("option", { value: "" }, "All account types"),
      ACCOUNT_TYPES.map((t) => h("option", { value: t, selected: t === this.filters.type }, ACCOUNT_TYPE[t].one)),
    );
    const search = h("input", {
      type: "search",
      id: "accounts-q",
      autocomplete: "off",
      value: this.filters.q,
      "aria-controls": "accounts-results",
    });
    customer.addEventListener("change", () => this.setFilter("customer", customer.value));
    type.addEventListener("change", () => this.setFilter("type", type.value));
    let debounce = null;
    search.addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.setFilter("q", search.value), DEBOUNCE_MS);
    });

    const filters = h(
      "form",
      { class: "card filters", role: "search", "aria-label": "Filter the accounts", onsubmit: (e) => e.preventDefault() },
      field({ label: "Customer", control: customer }),
      field({ label: "Account type", control: type }),
      field({ label: "Search", control: search, hint: "Username, display name or email." }),
    );

    poll(this.router, () => this.refresh());
    return h(
      "div",
      {},
      breadcrumb(["Customers", "#/customers"], "Accounts"),
      pageHeading("Accounts"),
      h(
        "p",
        { class: "lead" },
        "Every account discovery found at your customers, what its policy did with it, and how each " +
          "step went in your tools. This page refreshes by itself every few seconds.",
      ),
      this.countsHolder,
      filters,
      this.problem,
      this.summary,
      this.tableHolder,
      this.more,
    );
  }

  /** A filter changed: the first page again, with it; the URL says it too. */
  async setFilter(name, value) {
    if (this.filters[name] === value) return;
    this.filters[name] = value;
    history.replaceState(null, "", accountsHref(this.filters));
    this.tableHolder.setAttribute("aria-busy", "true");
    try {
      if (!(await this.loadFirst())) return;
      clear(this.problem);
      this.renderCounts();
      this.renderTable();
    } catch (error) {
      showProblem(this.problem, error, "The accounts could not be loaded");
    } finally {
      this.tableHolder.removeAttribute("aria-busy");
    }
  }

  async refresh() {
    try {
      if (this.paging) {
        const { body } = await api.call("GET", this.url({ limit: 1 }));
        this.counts = allCounts(body.counts);
      } else {
        const before = rowsSignature(this.items, this.cursor);
        if (!(await this.loadFirst())) return;
        if (rowsSignature(this.items, this.cursor) !== before) this.renderTable();
      }
      clear(this.problem);
      this.renderCounts();
    } catch (error) {
      if (error.status === 401) return;
      showProblem(this.problem, error, "Could not refresh: trying again in a few seconds");
      throw error;
    }
  }

  renderCounts() {
    const active = document.activeElement;
    const focused = active && this.countsHolder.contains(active) ? active.dataset.status : undefined;
    const total = ACCOUNT_STATUSES.reduce((sum, s) => sum + this.counts[s], 0);
    const chip = (status, label, count, kind) => {
      const pressed = this.filters.status === status;
      return h(
        "button",
        {
          type: "button",
          class: `count-chip status-${kind}`,
          "aria-pressed": String(pressed),
          dataset: { status: status || "all" },
          onclick: () => this.setFilter("status", status),
        },
        kind === "all" ? null : h("span", { class: "status-dot", "aria-hidden": "true" }),
        h("span", { class: "count-label" }, label),
        " ",
        h("span", { class: "count-number" }, String(count)),
      );
    };
    append(clear(this.countsHolder), [
      chip("", "All", total, "all"),
      ACCOUNT_STATUSES.map((s) => chip(s, ACCOUNT_STATUS[s].label, this.counts[s], STATUS_KIND[s])),
    ]);
    if (focused) {
      const again = this.countsHolder.querySelector(`[data-status="${focused}"]`);
      if (again) again.focus();
    }
  }

  renderTable() {
    const focusedKey = focusedRowKey(this.tableHolder);
    clear(this.tableHolder);
    clear(this.more);
    const filtered = this.filters.status || this.filters.q.trim() || this.filters.customer || this.filters.type;
    this.summary.textContent = this.items.length
      ? `${plural(this.items.length, "account")} shown${this.cursor ? ", newest first; more below" : ", newest first"}.`
      : "";
    if (!this.items.length) {
      this.tableHolder.append(
        h(
          "p",
          { class: "empty", id: "accounts-empty" },
          filtered
            ? "No account matches these filters."
            : "No account yet: accounts appear here as discovery finds them at your customers.",
        ),
      );
      return;
    }
    this.tableHolder.append(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "accounts", id: "accounts-table" },
          h("caption", { class: "visually-hidden" }, "Accounts, newest first"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Account"),
              h("th", { scope: "col" }, "Customer"),
              h("th", { scope: "col" }, "Type"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Decided"),
            ),
          ),
          (this.tbody = h("tbody", {}, this.items.map((a) => this.row(a)))),
        ),
      ),
    );
    if (this.cursor) {
      this.more.append(
        h("button", { type: "button", class: "button", id: "load-more", onclick: (e) => this.loadMore(e.currentTarget) }, "Load more accounts"),
      );
    }
    if (focusedKey) {
      const again = this.tableHolder.querySelector(`tr[data-key="${CSS.escape(focusedKey)}"] a`);
      if (again) again.focus();
    }
  }

  row(account) {
    const customer = this.customerById.get(account.customer_id);
    const name = account.display_name && account.display_name !== account.username ? account.display_name : null;
    return h(
      "tr",
      { dataset: { key: account.key, status: account.status } },
      h(
        "th",
        { scope: "row" },
        h("a", { href: accountHref(account.key), class: "account-name" }, account.username),
        name || account.email
          ? h("span", { class: "account-detail" }, [name, account.email].filter(Boolean).join(" \u00b7 "))
          : null,
      ),
      h("td", {}, customer ? customer.name : h("span", { class: "muted" }, "Removed customer")),
      h("td", {}, (ACCOUNT_TYPE[account.account_type] || { one: account.account_type }).one),
      h("td", {}, accountStatusChip(account.status)),
      h("td", {}, h("time", { datetime: account.decision.decided_at }, when(account.decision.decided_at))),
    );
  }

  async loadMore(button) {
    button.disabled = true;
    try {
      const { body } = await api.call("GET", this.url({ cursor: this.cursor }));
      this.paging = true;
      const first = this.items.length;
      this.items.push(...body.items);
      this.cursor = body.next_cursor;
      this.counts = allCounts(body.counts || this.counts);
      for (const a of body.items) this.tbody.append(this.row(a));
      this.summary.textContent = `${plural(this.items.length, "account")} shown${this.cursor ? ", newest first; more below" : ", newest first"}.`;
      if (!this.cursor) {
        clear(this.more);
        const link = this.tbody.rows[first] && this.tbody.rows[first].querySelector("a");
        if (link) link.focus();
      }
      announce(`${plural(body.items.length, "more account")} shown.`);
    } catch (error) {
      showProblem(this.problem, error, "More accounts could not be loaded");
    } finally {
      button.disabled = false;
    }
  }
}

function rowsSignature(items, cursor) {
  return JSON.stringify([cursor, items.map((a) => [a.key, a.status, a.decision.decided_at, a.display_name, a.email])]);
}

function focusedRowKey(holder) {
  const active = document.activeElement;
  if (!active || !holder.contains(active)) return null;
  const row = active.closest("tr[data-key]");
  return row ? row.dataset.key : null;
}

function showProblem(slot, error, intro) {
  clear(slot).append(problemPanel(error, { intro }));
}

// -- one account ---------------------------------------------------------------------

/** ``#/accounts/<key>``: one account, its decision and each command's result. */
export async function accountPage({ id, isCurrent, onLeave }) {
  const key = decodeURIComponent(id);
  const path = `/v1/accounts/${encodeURIComponent(key)}`;
  const [customers, policies, first] = await Promise.all([api.customers(), api.policies(), api.call("GET", path)]);
  const context = { customers, policies: new Map(policies.map((p) => [p.id, p])) };
  let account = first.body;
  const body = h("div", {});
  const problem = h("div", { class: "refresh-problem", "aria-live": "polite" });
  const chip = h("span", { class: "heading-status" });
  const lead = h("p", { class: "lead" });
  const renderAll = () => {
    clear(chip).append(accountStatusChip(account.status, { id: "account-status" }));
    const words = ACCOUNT_STATUS[account.status];
    lead.textContent = words ? `${words.label}: ${words.about}.` : "";
    append(clear(body), [accountSections(account, context)]);
  };
  renderAll();
  poll({ isCurrent, onLeave }, async () => {
    try {
      const { body: latest } = await api.call("GET", path);
      clear(problem);
      if (JSON.stringify(latest) === JSON.stringify(account)) return;
      const was = account.status;
      account = latest;
      renderAll();
      if (was !== account.status) announce(`Now ${ACCOUNT_STATUS[account.status].label.toLowerCase()}.`);
    } catch (error) {
      if (error.status === 401) return;
      showProblem(problem, error, "Could not refresh: trying again in a few seconds");
      throw error;
    }
  });
  return h(
    "div",
    {},
    breadcrumb(["Accounts", "#/accounts"], account.username),
    pageHeading(account.display_name || account.username, chip),
    lead,
    problem,
    body,
  );
}

function accountSections(account, { customers, policies }) {
  const customer = customers.find((c) => c.id === account.customer_id) || null;
  const type = ACCOUNT_TYPE[account.account_type] || { one: account.account_type, lower: account.account_type };
  const decision = account.decision;
  const policy = decision.policy_id ? policies.get(decision.policy_id) : null;

  const about = h(
    "section",
    { class: "card", "aria-labelledby": "account-title" },
    h("h2", { id: "account-title" }, "Account"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Username"),
      h("dd", {}, account.username),
      h("dt", {}, "Display name"),
      h("dd", {}, account.display_name || h("span", { class: "muted" }, "None")),
      h("dt", {}, "Email"),
      h("dd", {}, account.email || h("span", { class: "muted" }, "None")),
      h("dt", {}, "Customer"),
      h("dd", {}, customer ? h("a", { href: `#/customers/${customer.id}` }, customer.name) : h("span", { class: "muted" }, "Removed customer")),
      h("dt", {}, "Account type"),
      h("dd", {}, type.one),
      h("dt", {}, "Directory"),
      h("dd", {}, DIRECTORY[account.directory] || account.directory),
    ),
  );

  const decided = h("time", { datetime: decision.decided_at }, when(decision.decided_at));
  const decisionText =
    decision.outcome === "no_policy"
      ? h(
          "p",
          { id: "account-decision" },
          `Not imported: ${customer ? customer.name : "its customer"} had no ${type.lower} policy when it was decided, `,
          decided,
          ". It is decided again the next time discovery finds it, so assigning a policy still imports it.",
        )
      : h(
          "p",
          { id: "account-decision" },
          "Imported under ",
          decision.policy_id
            ? h("a", { href: `#/policies/${decision.policy_id}`, id: "account-policy" }, policy ? q(policy.name) : "a policy since deleted")
            : "a policy",
          decision.policy_version ? ` (version ${decision.policy_version})` : "",
          ", ",
          decided,
          ".",
        );
  const notes = decision.notes || [];
  const decisionSection = h(
    "section",
    { class: "card", "aria-labelledby": "decision-title" },
    h("h2", { id: "decision-title" }, "Decision"),
    decisionText,
    notes.length ? h("h3", {}, "Options on but not acted upon") : null,
    notes.length ? notesList(notes, { customer, customers }, { id: "account-notes" }) : null,
  );

  const commands = account.commands || [];
  const commandsSection =
    decision.outcome === "no_policy"
      ? null
      : h(
          "section",
          { class: "card", "aria-labelledby": "commands-title" },
          h("h2", { id: "commands-title" }, "What was done"),
          commands.length
            ? h("ol", { class: "command-results", id: "account-commands" }, commands.map(commandItem))
            : h("p", { class: "hint" }, "Nothing: the policy has no option on for this account."),
        );
  return [about, decisionSection, commandsSection];
}

function commandItem(command) {
  const titleId = `command-${command.id}-title`;
  let result;
  if (command.status === "failed") {
    result = h(
      "div",
      { class: "command-failure" },
      h("p", {}, h("strong", {}, "Why: "), h("span", { class: "reason-text" }, reasonText(command))),
      command.detail ? h("p", { class: "command-detail" }, `${command.provider ? providerName(command.provider) : "The handler"} said: `, h("q", {}, command.detail)) : null,
      INTEGRATION_REASONS.has(command.reason) ? h("p", {}, h("a", { href: "#/integrations" }, "Open Integrations")) : null,
    );
  } else if (command.status === "succeeded") {
    result = h(
      "div",
      {},
      h("p", { class: "outcome-text" }, outcomeText(command)),
      command.detail ? h("p", { class: "command-detail" }, command.detail) : null,
    );
  } else {
    result = h("p", { class: "hint" }, "Waiting for the result from the tool.");
  }
  const refs = (command.refs || []).map(refItem);
  return h(
    "li",
    { class: "command-result", dataset: { commandType: command.type || "", status: command.status }, "aria-labelledby": titleId },
    h(
      "div",
      { class: "command-head" },
      h("h3", { id: titleId }, commandTitle(command.type, command.provider)),
      statusChip(COMMAND_STATUS[command.status] || command.status, COMMAND_KIND[command.status] || "none"),
    ),
    result,
    refs.length ? h("ul", { class: "refs", "aria-label": "Records" }, refs) : null,
    h(
      "p",
      { class: "command-meta" },
      command.type ? h("code", {}, command.type) : null,
      command.provider ? ` \u00b7 ${providerName(command.provider)}` : "",
      command.updated_at ? [" \u00b7 ", h("time", { datetime: command.updated_at }, when(command.updated_at))] : null,
    ),
  );
}

const KIND = { contact: "contact", password: "password entry", message: "email", user: "user", vault: "vault entry" };

function refItem(ref) {
  const system = providerName(ref.system);
  const what = `${KIND[ref.kind] || ref.kind} ${ref.id}`;
  if (ref.url && isWebAddress(ref.url)) {
    return h(
      "li",
      {},
      h(
        "a",
        { href: ref.url, target: "_blank", rel: "noopener noreferrer", class: "vendor-link" },
        `Open ${what} in ${system}`,
        h("span", { class: "visually-hidden" }, " (opens in a new tab)"),
      ),
    );
  }
  return h("li", {}, `${system} ${what}`);
}

/** Only http(s) links from the vendors' data (never ``javascript:`` and the like). */
function isWebAddress(text) {
  try {
    const url = new URL(text);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}
