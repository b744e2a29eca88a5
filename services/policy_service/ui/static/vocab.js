// Words for the contract's values: account types, providers, options, commands, notes.

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
