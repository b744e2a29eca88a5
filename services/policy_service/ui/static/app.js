// The admin UI's entry point: sign-in from the URL, hash routing, header.

import * as session from "./session.js";
import { whenUnauthenticated } from "./api.js";
import { h, clear, takeFlash, announce, flashNext } from "./dom.js";
import { loading, problemPanel } from "./widgets.js";
import { policiesPage } from "./page-policies.js";
import { policyPage } from "./page-policy.js";
import { customersPage, customerPage } from "./page-customers.js";
import { previewPage } from "./page-preview.js";
import { accountsPage, accountPage } from "./page-accounts.js";
import { integrationsPage } from "./page-integrations.js";
import { signInPage } from "./page-signin.js";

/** ``/ui/#token=…`` (the dev sign-in link): keep the token, drop it from the URL. */
function takeTokenFromUrl() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return;
  session.signIn(decodeURIComponent(match[1]));
  const user = session.user();
  if (user) flashNext(`Signed in as ${user.sub} (${user.roleLabel}) of partner ${user.partnerId}.`);
  history.replaceState(null, "", `${location.pathname}${location.search}#/policies`);
}

function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

function pageFor(parts) {
  const [section, id] = parts;
  switch (section) {
    case undefined:
    case "policies":
      return id ? { section: "policies", page: policyPage, id } : { section: "policies", page: policiesPage };
    case "customers":
      return id ? { section: "customers", page: customerPage, id } : { section: "customers", page: customersPage };
    case "accounts":
      return id ? { section: "accounts", page: accountPage, id } : { section: "accounts", page: accountsPage };
    case "integrations":
      return { section: "integrations", page: integrationsPage };
    case "preview":
      return { section: "preview", page: previewPage };
    case "sign-in":
      return { section: "sign-in", page: signInPage };
    default:
      return null;
  }
}

function renderHeader(user, section) {
  const nav = document.getElementById("nav");
  nav.hidden = !user;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const who = clear(document.getElementById("who"));
  if (!user) return;
  who.append(
    h(
      "span",
      { class: "who-text" },
      h("span", { class: "who-sub" }, user.sub),
      h("span", { class: `role role-${user.role}` }, user.roleLabel),
      h("span", { class: "who-partner" }, `Partner ${user.partnerId}`),
    ),
    h(
      "button",
      {
        type: "button",
        class: "button-quiet",
        onclick: () => {
          session.signOut();
          flashNext("You are signed out.");
          location.hash = "#/sign-in";
        },
      },
      "Sign out",
    ),
  );
}

let rendering = 0;
/** What the page shown asked to be done when it is left (stop its timers). */
let leaving = [];

function leave() {
  const callbacks = leaving;
  leaving = [];
  for (const callback of callbacks) {
    try {
      callback();
    } catch (error) {
      console.error(error);
    }
  }
}

async function render() {
  const seq = ++rendering;
  leave();
  const main = document.getElementById("main");
  const { parts, params } = currentRoute();
  const user = session.user();
  if (!user && parts[0] !== "sign-in") {
    if (session.token()) {
      session.signOut();
      flashNext("Your session has expired: sign in again.");
    }
    location.replace("#/sign-in");
    return;
  }
  const found = pageFor(parts);
  if (!found) {
    location.replace("#/policies");
    return;
  }
  renderHeader(user, found.section);
  announce(takeFlash());
  main.replaceChildren(loading());
  let view;
  try {
    view = await found.page({
      id: found.id,
      params,
      user,
      isCurrent: () => seq === rendering,
      onLeave: (callback) => (seq === rendering ? leaving.push(callback) : callback()),
    });
  } catch (error) {
    view = h("div", {}, problemPanel(error, { intro: "This page could not be loaded" }));
  }
  if (seq !== rendering) return;
  main.replaceChildren(view);
  const heading = main.querySelector("h1");
  (heading || main).focus({ preventScroll: true });
  window.scrollTo(0, 0);
  document.title = `${heading ? headingText(heading) : "MSP Account Import"} \u00b7 MSP Account Import`;
}

/** The heading's words without its badges ("Default"). */
function headingText(heading) {
  const copy = heading.cloneNode(true);
  for (const badge of copy.querySelectorAll(".badge")) badge.remove();
  return copy.textContent.trim();
}

whenUnauthenticated((error) => {
  session.signOut();
  flashNext(`You were signed out: ${error.problem.detail}. Sign in again.`);
  location.hash = "#/sign-in";
});

// The skip link must not change the hash: that is the router's.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

takeTokenFromUrl();
window.addEventListener("hashchange", () => {
  takeTokenFromUrl();
  render();
});
render();
