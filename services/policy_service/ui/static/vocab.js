// Words for the contract's values: account types, providers, options, commands, notes,
// accounts and their commands' results.

import { listing } from "./dom.js";
import { providerName } from "./integrations-vocab.js";

export const ACCOUNT_TYPES = ["end_user", "administrator"];

export const ACCOUNT_TYPE = {
  end_user: {
    title: "End-user Accounts",
    one: "End-user",
    lower: "end-user",
    about: "People's everyday accounts in the customer's directory.",
  },
  administrator: {
    title: "Administrator Accounts",
    one: "Administrator",
    lower: "administrator",
    about: "Privileged accounts: domain admins, local administrators, service admins.",
  },
};

export const PSA = { connectwise: "ConnectWise", autotask: "Autotask", halo: "Halo" };
export const DOCS = { itglue: "IT Glue", hudu: "Hudu" };
export const DIRECTORY = {
  active_directory: "Active Directory",
  entra_id: "Entra ID",
  local: "Local",
};

const DOC_MATCH = {
  label: "Match the account in IT Glue or Hudu",
  help:
    "Links the account to its password entry in the customer's IT Glue or Hudu " +
    "organisation, and syncs password changes back. Customers with no documentation " +
    "organisation are skipped.",
};
const DOC_CREATE = {
  label: "Create it in IT Glue or Hudu if it is missing",
  help: "When no entry matches, a new password entry is created in the organisation.",
};

/**
 * The options of each account type, in the order the worker applies them.
 * A group has a "match" and a "create if missing" box; the latter needs the former.
 */
export const OPTIONS = {
  end_user: [
    { group: "documentation", legend: "Documentation: IT Glue or Hudu", match: DOC_MATCH, create: DOC_CREATE },
    {
      group: "psa",
      legend: "PSA contact: ConnectWise, Autotask or Halo",
      match: {
        label: "Match the user to a contact in the PSA",
        help:
          "Links the account to a contact of the customer's company in ConnectWise, Autotask " +
          "or Halo. Customers with no PSA company are skipped.",
      },
      create: {
        label: "Create the contact if it is missing",
        help:
          "Never done for customers that share their PSA company with another customer: " +
          "the PSA could not tell whose contact it is. Those are matched only.",
      },
    },
    {
      key: "send_welcome_email",
      label: "Send a welcome email",
      help:
        "Sent once per account, to its email address; without one, to the email of the " +
        "linked PSA contact.",
    },
    {
      key: "enable_self_serve_reset",
      label: "Enable self-serve password reset",
      help: "Users can reset their own password without calling the service desk.",
    },
    {
      key: "sync_password_to_m365",
      label: "Sync AD / local passwords to Microsoft 365",
      help:
        "For Active Directory and local accounts. Entra ID accounts already live in " +
        "Microsoft 365 and are left alone.",
    },
  ],
  administrator: [
    {
      key: "save_password_in_vault",
      label: "Save the password in the vault if not using IT Glue or Hudu",
      help:
        "When the password is linked in IT Glue or Hudu (below), it is kept there instead; " +
        "otherwise it is stored in the vault.",
    },
    { group: "documentation", legend: "Documentation: IT Glue or Hudu", match: DOC_MATCH, create: DOC_CREATE },
    {
      key: "enable_password_rotation",
      label: "Enable password rotation",
      help: "Enrols the account in scheduled password rotation.",
    },
  ],
};

/** Options with every box off, for a new policy of ``type``. */
export function emptyOptions(type) {
  const options = {};
  for (const option of OPTIONS[type]) {
    if (option.group) options[option.group] = { match: false, create_if_missing: false };
    else options[option.key] = false;
  }
  return options;
}

/** Short names of the options that are on, for the list at a glance. */
export function optionsOn(type, options) {
  const on = [];
  const groupName = { documentation: "IT Glue / Hudu", psa: "PSA contact" };
  for (const option of OPTIONS[type]) {
    if (option.group) {
      const value = options[option.group] || {};
      if (value.match) {
        on.push(`${groupName[option.group]}: match${value.create_if_missing ? " or create" : ""}`);
      }
    } else if (options[option.key]) {
      on.push(SHORT[option.key]);
    }
  }
  return on;
}

const SHORT = {
  send_welcome_email: "Welcome email",
  enable_self_serve_reset: "Self-serve reset",
  sync_password_to_m365: "Sync to Microsoft 365",
  save_password_in_vault: "Vault (no IT Glue / Hudu)",
  enable_password_rotation: "Password rotation",
};

/** The label of an option path such as ``psa.create_if_missing``. */
export function optionLabel(path) {
  const [head, tail] = path.split(".");
  for (const type of ACCOUNT_TYPES) {
    for (const option of OPTIONS[type]) {
      if (option.key === head) return option.label;
      if (option.group === head) {
        if (tail === "create_if_missing") return option.create.label;
        return option.match.label;
      }
    }
  }
  return path;
}

/** What a command of the preview will do, in words. */
export function describeCommand(command) {
  const data = command.data || {};
  switch (command.type) {
    case "documentation.password.link":
      return (
        `Link the password entry in ${DOCS[data.provider] || data.provider} organisation ` +
        `${data.organization_id}${data.create_if_missing ? ", creating it if missing" : " (match only)"}; ` +
        "password changes sync back"
      );
    case "psa.contact.link":
      return (
        `Link the contact in ${PSA[data.provider] || data.provider} company ${data.company_id}` +
        (data.create_if_missing ? ", creating it if missing" : " (match only: no contact is created)")
      );
    case "notification.welcome_email.send":
      return data.email
        ? `Send the welcome email to ${data.email}`
        : "Send the welcome email to the linked PSA contact's address";
    case "identity.self_service_reset.enable":
      return "Enable self-serve password reset";
    case "identity.m365_password_sync.enable":
      return "Sync the password to Microsoft 365";
    case "vault.password.store":
      return "Store the password in the vault";
    case "rotation.enroll":
      return "Enrol the account in password rotation";
    default:
      return command.type;
  }
}

export function psaText(psa) {
  return psa ? `${PSA[psa.provider] || psa.provider} \u00b7 company ${psa.company_id}` : null;
}

export function docsText(docs) {
  return docs ? `${DOCS[docs.provider] || docs.provider} \u00b7 organisation ${docs.organization_id}` : null;
}

/** Customers grouped by PSA company: "provider/company" → [customer, ...]. */
export function psaGroups(customers) {
  const groups = new Map();
  for (const customer of customers) {
    if (!customer.psa) continue;
    const key = `${customer.psa.provider}/${customer.psa.company_id}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(customer);
  }
  return groups;
}

/** The other customers that share ``customer``'s PSA company. */
export function sharingWith(customer, groups) {
  if (!customer.psa) return [];
  const group = groups.get(`${customer.psa.provider}/${customer.psa.company_id}`) || [];
  return group.filter((c) => c.id !== customer.id);
}

export function byName(a, b) {
  return a.name.localeCompare(b.name, undefined, { sensitivity: "base" });
}

// -- decision notes ----------------------------------------------------------------

/**
 * A decision note in plain words. ``customer`` is the account's customer (or null),
 * ``customers`` every customer of the partner: a shared PSA company is told with the
 * names of the customers that share it.
 */
export function noteText(note, { customer = null, customers = [] } = {}) {
  const who = customer ? customer.name : "The customer";
  switch (note.reason) {
    case "shared_psa_company": {
      const psa = customer && customer.psa;
      if (psa) {
        const same = customers.filter(
          (c) => c.id !== customer.id && c.psa && c.psa.provider === psa.provider && c.psa.company_id === psa.company_id,
        );
        const names = [customer.name, ...same.map((c) => c.name).sort((a, b) => a.localeCompare(b))];
        const company = `${PSA[psa.provider] || psa.provider} company ${psa.company_id}`;
        return names.length > 1
          ? `No contact created: ${listing(names)} share ${company}, so the account is only matched to an existing contact.`
          : `No contact created: several customers share ${company}, so the account is only matched to an existing contact.`;
      }
      return "No contact created: several customers share this PSA company, so the account is only matched to an existing contact.";
    }
    case "no_psa_company":
      return note.option === "psa.create_if_missing"
        ? `No contact created: ${who} has no PSA company.`
        : `No PSA contact linked: ${who} has no PSA company (ConnectWise, Autotask or Halo).`;
    case "no_documentation_organization":
      return note.option === "documentation.create_if_missing"
        ? `No password entry created: ${who} has no IT Glue or Hudu organisation.`
        : `No password entry linked: ${who} has no IT Glue or Hudu organisation.`;
    case "already_in_m365":
      return "Password not synced: an Entra ID account is already in Microsoft 365, so there is nothing to sync.";
    case "password_in_documentation":
      return "Password not stored in the vault: it is kept in IT Glue or Hudu instead.";
    default:
      return note.detail || note.reason;
  }
}

// -- accounts ------------------------------------------------------------------------

/** An account's status roll-up, in the order the page lists them. */
export const ACCOUNT_STATUSES = ["done", "pending", "attention", "no_policy"];

export const ACCOUNT_STATUS = {
  done: { label: "Done", about: "every command succeeded" },
  pending: { label: "Pending", about: "waiting for a command's result" },
  attention: { label: "Needs attention", about: "a command failed" },
  no_policy: { label: "No policy", about: "its customer has no policy for its account type" },
};

export const COMMAND_STATUS = {
  pending: "Waiting for its result",
  succeeded: "Succeeded",
  failed: "Failed",
};

/** What a command of an account does, in words (its provider when known). */
export function commandTitle(type, provider = null) {
  const where = provider ? providerName(provider) : null;
  switch (type) {
    case "documentation.password.link":
      return `Link the password entry${where ? ` in ${where}` : " in IT Glue or Hudu"}`;
    case "psa.contact.link":
      return `Link the PSA contact${where ? ` in ${where}` : ""}`;
    case "notification.welcome_email.send":
      return "Send the welcome email";
    case "identity.self_service_reset.enable":
      return "Enable self-serve password reset";
    case "identity.m365_password_sync.enable":
      return "Sync the password to Microsoft 365";
    case "vault.password.store":
      return "Store the password in the vault";
    case "rotation.enroll":
      return "Enrol the account in password rotation";
    default:
      return type ? `Command ${type}` : "A command of a type this page does not know";
  }
}

const RECORD = {
  "documentation.password.link": "password entry",
  "psa.contact.link": "contact",
};

/** A succeeded command's outcome in words. */
export function outcomeText(command) {
  const record = RECORD[command.type] || "record";
  switch (command.outcome) {
    case "matched":
      return `Matched an existing ${record}.`;
    case "created":
      return `Created a new ${record}.`;
    case "updated":
      return `Updated the ${record}.`;
    case "not_found":
      return `No matching ${record} found; none was created (match only).`;
    case "deferred":
      return command.type === "documentation.password.link"
        ? "Waiting: the entry is created when the account's password is first known."
        : "Deferred: it is done later.";
    case "sent":
      return "Sent.";
    case "stored":
      return "Stored.";
    case "enrolled":
      return "Enrolled.";
    case "skipped":
      return "Skipped: there was nothing to do.";
    default:
      return command.outcome ? `Outcome ${command.outcome}.` : "Succeeded.";
  }
}

/** Why a command failed, in words, and what to do about it. */
export function reasonText(command) {
  const where = command.provider ? providerName(command.provider) : "The tool";
  switch (command.reason) {
    case "ambiguous_match":
      return (
        `Several ${RECORD[command.type] || "record"}s in ${where} match this account, so none was linked: ` +
        "remove the duplicates or link the right one by hand."
      );
    case "integration_missing":
      return command.provider
        ? `There is no working ${providerName(command.provider)} integration: set it up under Integrations.`
        : "There is no working integration for it: set it up under Integrations.";
    case "integration_auth":
      return `${where} refused the integration's credentials: check them under Integrations.`;
    case "vendor_rejected":
      return `${where} refused the request.`;
    case "no_email":
      return "There is no email address to send to: the account has none, and neither has its PSA contact.";
    case "timeout":
      return `${where} did not answer in time.`;
    default:
      return command.reason ? `Failed (${command.reason}).` : "Failed.";
  }
}

/** Reasons whose fix is on the Integrations page. */
export const INTEGRATION_REASONS = new Set(["integration_missing", "integration_auth", "timeout"]);

/** ``2024-05-01T10:00:00Z`` as the reader's date and time. */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
