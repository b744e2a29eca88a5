// Each provider's integration, in one place: its address, credential fields and settings
// (the rules are schemas/providers.py; the API refuses anything else with a 422).
//
// Addresses are written without their scheme here: ``scheme`` is put in front of an
// address typed without one.

/**
 * Settings: ``int`` (a whole number, empty = the default), ``text``, ``email`` or
 * ``tristate`` (a yes / no / default choice for a boolean that may be left unset).
 */
export const PROVIDERS = [
  {
    id: "connectwise",
    name: "ConnectWise",
    group: "psa",
    scheme: "https",
    uses: "Links (and, where a policy says so, creates) the PSA contacts of customers mapped to a ConnectWise company.",
    address: {
      hint: "The REST API address of your ConnectWise server, ending in /apis/3.0.",
      example: "api-na.myconnectwise.net/v4_6_release/apis/3.0",
    },
    credentials: [
      { name: "company_id", label: "Company id", hint: "The company id you sign in to ConnectWise with." },
      { name: "public_key", label: "Public key", hint: "Of the API member's key pair." },
      { name: "private_key", label: "Private key" },
      { name: "client_id", label: "Client id", hint: "From the ConnectWise developer portal." },
    ],
    settings: [
      { name: "requests_per_minute", label: "Requests per minute", type: "int", default: 60 },
      {
        name: "marker_custom_field_id",
        label: "Marker custom field id",
        type: "int",
        hint:
          "Optional: a contact custom field (Text) that holds the account key of the contacts created " +
          "here. Without one, a contact created earlier is recognised by its email or name only.",
      },
    ],
  },
  {
    id: "autotask",
    name: "Autotask",
    group: "psa",
    scheme: "https",
    uses: "Links (and, where a policy says so, creates) the PSA contacts of customers mapped to an Autotask company.",
    address: {
      hint: "The REST address of your Autotask zone.",
      example: "webservices5.autotask.net/atservicesrest",
    },
    credentials: [
      { name: "username", label: "API username", hint: "The API user's username (an email address)." },
      { name: "secret", label: "Secret" },
      { name: "integration_code", label: "Integration code", hint: "The API tracking identifier." },
    ],
    settings: [
      { name: "requests_per_hour", label: "Requests per hour", type: "int", default: 10000 },
      { name: "max_concurrency", label: "Requests at once", type: "int", default: 3 },
    ],
  },
  {
    id: "halo",
    name: "Halo",
    group: "psa",
    scheme: "https",
    uses: "Links (and, where a policy says so, creates) the PSA users of customers mapped to a Halo client.",
    address: { hint: "Your Halo instance.", example: "acme.halopsa.com" },
    credentials: [
      { name: "client_id", label: "Client id", hint: "Of a Client ID and Secret (Services) application." },
      { name: "client_secret", label: "Client secret" },
      { name: "tenant", label: "Tenant (optional)", optional: true, hint: "Only for hosted Halo with several tenants." },
    ],
    settings: [{ name: "requests_per_5_minutes", label: "Requests per 5 minutes", type: "int", default: 300 }],
  },
  {
    id: "itglue",
    name: "IT Glue",
    group: "documentation",
    scheme: "https",
    uses: "Links and creates the password entries of customers mapped to an IT Glue organisation.",
    address: { hint: "The IT Glue API of your region.", example: "api.itglue.com" },
    credentials: [{ name: "api_key", label: "API key", hint: "With password access." }],
    settings: [
      { name: "requests_per_5_minutes", label: "Requests per 5 minutes", type: "int", default: 3000 },
      {
        name: "password_category_id",
        label: "Password category id",
        type: "int",
        hint: "Optional: the category of the password entries created here.",
      },
    ],
  },
  {
    id: "hudu",
    name: "Hudu",
    group: "documentation",
    scheme: "https",
    uses: "Links and creates the asset passwords of customers mapped to a Hudu company.",
    address: { hint: "Your Hudu instance.", example: "acme.huducloud.com" },
    credentials: [{ name: "api_key", label: "API key" }],
    settings: [{ name: "requests_per_minute", label: "Requests per minute", type: "int", default: 300 }],
  },
  {
    id: "smtp",
    name: "Email (SMTP)",
    group: "email",
    scheme: "smtp",
    uses: "Sends the welcome emails.",
    address: {
      hint: "smtp://host:587 (STARTTLS) or smtps://host:465 (TLS).",
      example: "smtp://smtp.example.com:587",
    },
    credentialsHint: "Both may stay empty for a server that needs no sign-in.",
    mayBeEmpty: true,
    credentials: [
      { name: "username", label: "Username" },
      { name: "password", label: "Password" },
    ],
    settings: [
      { name: "from_address", label: "From address", type: "email", required: true, hint: "The sender of the welcome emails." },
      {
        name: "starttls",
        label: "STARTTLS",
        type: "tristate",
        hint: "By default on for smtp://, off for smtps:// (which is TLS from the start).",
      },
      { name: "brand", label: "Brand", type: "text", hint: "Who the welcome email says it is from. Default \u201cYour IT team\u201d." },
      { name: "portal_url", label: "Portal address", type: "text", hint: "Optional: the sign-in link of the welcome email." },
    ],
  },
  {
    id: "m365",
    name: "Microsoft 365",
    group: "identity",
    scheme: "https",
    uses: "Syncs Active Directory and local passwords to Microsoft 365 (Microsoft Graph).",
    address: { hint: "Microsoft Graph's API.", example: "graph.microsoft.com/v1.0" },
    credentials: [
      { name: "tenant_id", label: "Tenant id", hint: "The directory (tenant) id in Entra ID." },
      { name: "client_id", label: "Client id", hint: "The application (client) id of the app registration." },
      { name: "client_secret", label: "Client secret" },
    ],
    settings: [
      {
        name: "token_url",
        label: "Token address",
        type: "text",
        hint: "Optional: by default Entra ID's token endpoint of the tenant.",
      },
    ],
  },
];

export const PROVIDER = Object.fromEntries(PROVIDERS.map((p) => [p.id, p]));

export const PROVIDER_GROUPS = [
  { id: "psa", title: "PSA" },
  { id: "documentation", title: "Documentation" },
  { id: "email", title: "Email" },
  { id: "identity", title: "Microsoft 365" },
];

/** The provider's name for the refs, results and statuses that name it by id. */
export function providerName(id) {
  return (PROVIDER[id] && PROVIDER[id].name.replace(" (SMTP)", "")) || id;
}

/** The label of a credential or setting ``name`` of ``provider`` (for field errors). */
export function fieldLabel(provider, name) {
  const spec = PROVIDER[provider];
  const found = spec && [...spec.credentials, ...spec.settings].find((f) => f.name === name);
  return found ? found.label : name;
}

/** An integration's status in words: {text, kind} (kind picks the chip's colour). */
export function integrationStatus(integration) {
  if (!integration) return { text: "Not configured", kind: "none" };
  switch (integration.status.state) {
    case "ok":
      return { text: "Working", kind: "ok" };
    case "failing":
      return { text: "Failing", kind: "failing" };
    default:
      return { text: "Not checked yet", kind: "unknown" };
  }
}
