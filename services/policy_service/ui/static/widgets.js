// Pieces every page uses: breadcrumb, page heading, read-only notice, problem panel,
// status chips, a decision's notes, a confirmation dialog.

import { h, clear, uid, showFieldErrors, clearFieldErrors } from "./dom.js";
import { readOnlyReason } from "./session.js";
import { noteText, optionLabel } from "./vocab.js";

/** Global Settings › Automatic Imports › …; each item a string or [text, href]. */
export function breadcrumb(...items) {
  const list = h("ol");
  items.forEach((item, index) => {
    const [text, href] = Array.isArray(item) ? item : [item, null];
    const last = index === items.length - 1;
    list.append(
      h("li", {}, href && !last ? h("a", { href }, text) : h("span", { "aria-current": last ? "page" : false }, text)),
    );
  });
  return h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, list);
}

export function pageHeading(title, ...actions) {
  return h(
    "div",
    { class: "page-heading" },
    h("h1", { tabindex: "-1" }, title),
    actions.length ? h("div", { class: "actions" }, actions) : null,
  );
}

/** The notice shown to Technician and Read-only users, or null for writers. */
export function readOnlyNotice(what) {
  const reason = readOnlyReason(what);
  if (!reason) return null;
  return h(
    "div",
    { class: "notice notice-readonly", role: "note", id: "read-only-notice" },
    h("strong", {}, "Read-only. "),
    reason,
  );
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

/**
 * A status in a chip: the words always, the colour (``kind``: ok, pending, failing,
 * unknown, none) only as a second cue.
 */
export function statusChip(text, kind, attrs = {}) {
  return h("span", { class: `status-chip status-${kind}`, ...attrs }, h("span", { class: "status-dot", "aria-hidden": "true" }), text);
}

/**
 * A decision's notes (options that were on but not acted upon) in plain words, each
 * with the option it is about; ``context`` is what :func:`noteText` needs.
 */
export function notesList(notes, context, attrs = {}) {
  return h(
    "ul",
    { class: "notes", ...attrs },
    notes.map((n) =>
      h(
        "li",
        { dataset: { reason: n.reason } },
        h("span", { class: "note-text" }, noteText(n, context)),
        " ",
        h("span", { class: "note-option" }, `Option: ${optionLabel(n.option)}`),
      ),
    ),
  );
}

const TITLES = {
  0: "The policy service did not answer",
  400: "The request was not understood",
  401: "You are not signed in",
  403: "Not allowed",
  404: "Not found",
  409: "Conflict",
  412: "Changed by someone else",
  413: "Too large",
  415: "Unsupported request",
  422: "Some fields need attention",
};

/**
 * An alert box for an API problem. Field errors are listed with links to the
 * fields (those shown next to a field in ``form`` are linked; the others are
 * only listed here).
 */
export function problemPanel(error, { form = null, intro = null } = {}) {
  const problem = error.problem || { detail: String(error.message || error) };
  const panel = h("div", { class: "problem", role: "alert", tabindex: "-1" });
  panel.append(h("h2", {}, intro || TITLES[error.status] || problem.title || "Something went wrong"));
  if (problem.detail && !(problem.errors && problem.errors.length && error.status === 422)) {
    panel.append(h("p", {}, problem.detail));
  }
  if (problem.errors && problem.errors.length) {
    const { placed, unplaced } = form ? showFieldErrors(form, problem.errors) : { placed: [], unplaced: problem.errors };
    const list = h("ul");
    for (const { error: e, control } of placed) {
      const label = control && control.labels && control.labels[0] ? control.labels[0].textContent : e.field;
      list.append(
        h(
          "li",
          {},
          control ? h("a", { href: `#${control.id}`, onclick: focusControl(control) }, label) : e.field,
          `: ${e.detail}`,
        ),
      );
    }
    for (const e of unplaced) list.append(h("li", {}, e.field ? `${e.field}: ${e.detail}` : e.detail));
    panel.append(list);
  }
  return panel;
}

function focusControl(control) {
  return (event) => {
    event.preventDefault();
    control.focus();
  };
}

/** Put ``panel`` (or nothing) in ``slot``, focusing it so screen readers and keyboards land there. */
export function showIn(slot, panel) {
  clear(slot);
  if (panel) {
    slot.append(panel);
    panel.focus();
  }
}

export function resetErrors(form, slot) {
  clearFieldErrors(form);
  clear(slot);
}

export function loading(text = "Loading\u2026") {
  return h("p", { class: "loading", role: "status" }, text);
}

/**
 * A modal confirmation: ``confirmLabel`` does ``onConfirm``; Cancel (and Escape) close it.
 * ``afterConfirm`` runs once it is closed after a confirm (focus can move out then).
 */
export function confirmDialog({ id, title, body, confirmLabel, onConfirm, afterConfirm = () => {} }) {
  const titleId = uid("confirm-title");
  const problems = h("div", {});
  const cancel = h("button", { type: "button", class: "button", autofocus: true }, "Cancel");
  const confirm = h("button", { type: "button", class: "button-danger" }, confirmLabel);
  const dialog = h(
    "dialog",
    { class: "confirm", "aria-labelledby": titleId, id },
    h("h2", { id: titleId }, title),
    body,
    problems,
    h("div", { class: "form-actions" }, cancel, confirm),
  );
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", async () => {
    clear(problems);
    confirm.disabled = true;
    try {
      await onConfirm();
      dialog.close();
      dialog.remove();
      afterConfirm();
    } catch (error) {
      showIn(problems, problemPanel(error));
    } finally {
      confirm.disabled = false;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
