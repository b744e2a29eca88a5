// Sign in by pasting a bearer token (the same JWT the API takes).

import * as api from "./api.js";
import * as session from "./session.js";
import { h, field, flashNext } from "./dom.js";
import { problemPanel, showIn } from "./widgets.js";

export async function signInPage() {
  const input = h("textarea", {
    id: "token",
    name: "token",
    rows: "5",
    spellcheck: "false",
    autocomplete: "off",
    class: "mono",
  });
  const errors = h("div", { class: "form-problems" });
  const form = h(
    "form",
    { class: "card sign-in", novalidate: true },
    errors,
    field({
      label: "Bearer token (JWT)",
      control: input,
      field: "token",
      hint:
        "The UI uses the same token as the API: an HS256 JWT with your user (sub), " +
        "your partner (partner_id), your role and an expiry. It is kept in this browser tab only.",
    }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button-primary" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    const fail = (detail) =>
      showIn(errors, problemPanel({ status: 401, problem: { detail, errors: [{ field: "token", detail }] } }, { form }));
    let claims;
    try {
      claims = session.readClaims(value);
    } catch (error) {
      fail(error.message);
      return;
    }
    if (claims.exp * 1000 <= Date.now()) {
      fail(`This token expired on ${new Date(claims.exp * 1000).toLocaleString()}.`);
      return;
    }
    try {
      await api.call("GET", "/v1/import-policies?limit=1", { token: value });
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        fail(`The policy service refused this token: ${error.problem.detail}.`);
      } else {
        showIn(errors, problemPanel(error));
      }
      return;
    }
    session.signIn(value);
    flashNext(`Signed in as ${claims.sub} (${session.ROLE_LABELS[claims.role] || claims.role}).`);
    location.hash = "#/policies";
  });

  return h(
    "div",
    { class: "narrow" },
    h("h1", { tabindex: "-1" }, "Sign in"),
    h(
      "p",
      { class: "lead" },
      "Paste a token issued for your user to manage your partner's automatic import policies.",
    ),
    form,
    h(
      "p",
      { class: "hint" },
      "Running the development stack (",
      h("code", {}, "make run"),
      ")? It prints a sign-in link that opens this page as a manager of the demo partner.",
    ),
  );
}
