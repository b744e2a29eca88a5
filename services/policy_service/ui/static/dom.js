// Small DOM helpers: element creation, field errors, the status line.

/**
 * h("p", {class: "hint", id: "x"}, "text", child, [more, children])
 * Attributes: class, for, on<event> (a function), boolean true/false, others as strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let counter = 0;
/** A document-unique id with a readable prefix. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** "A", "A and B", "A, B and C". */
export function listing(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** “Name” in typographic quotes. */
export function q(text) {
  return `\u201c${text}\u201d`;
}

// -- field errors ----------------------------------------------------------------

/**
 * A labelled control with a hint and an error slot. The wrapper carries
 * data-field (the API's field path) so problem JSON errors find their place.
 */
export function field({ label, control, hint, field: path, className = "field" }) {
  const id = control.id || uid("f");
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  describe(control, hintEl && hintEl.id);
  return h(
    "div",
    { class: className, dataset: path ? { field: path } : undefined },
    h("label", { for: id }, label),
    hintEl,
    control,
    errorEl,
  );
}

/** Add ids to a control's aria-describedby. */
export function describe(control, ...ids) {
  const have = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  for (const id of ids) if (id && !have.includes(id)) have.push(id);
  if (have.length) control.setAttribute("aria-describedby", have.join(" "));
}

export function clearFieldErrors(root) {
  for (const el of root.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of root.querySelectorAll(".has-error")) el.classList.remove("has-error");
}

/** The element of ``root`` that shows errors of ``path`` (a.b.0 → a.b → a), or null. */
function holderFor(root, path) {
  const parts = String(path).split(".");
  while (parts.length) {
    const key = parts.join(".");
    const holder = root.querySelector(`[data-field="${CSS.escape(key)}"]`);
    if (holder) return holder;
    parts.pop();
  }
  return null;
}

/**
 * Show each ``{field, detail}`` next to its control; return the ones that
 * have no place in ``root`` (to be listed in the form's summary).
 */
export function showFieldErrors(root, errors) {
  const unplaced = [];
  const placed = [];
  for (const error of errors || []) {
    const holder = holderFor(root, error.field || "");
    const slot = holder && holder.querySelector(":scope > .field-error, :scope > * > .field-error");
    if (!slot) {
      unplaced.push(error);
      continue;
    }
    slot.textContent = slot.hidden ? error.detail : `${slot.textContent} ${error.detail}`;
    slot.hidden = false;
    holder.classList.add("has-error");
    const control = holder.querySelector("input, select, textarea");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      describe(control, slot.id);
    }
    placed.push({ error, control, holder });
  }
  return { placed, unplaced };
}

// -- status line ------------------------------------------------------------------

let flash = null;

/** A message for the next page shown (e.g. after a redirect). */
export function flashNext(message) {
  flash = message;
}

export function takeFlash() {
  const message = flash;
  flash = null;
  return message;
}

/** Announce ``message`` politely in the page's status line. */
export function announce(message) {
  const region = document.getElementById("status");
  if (!region) return;
  region.textContent = "";
  region.hidden = !message;
  if (message) {
    region.append(h("span", {}, message));
  }
}
