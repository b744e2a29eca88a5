// The signed-in user: the bearer token in sessionStorage and what its claims say.
// The claims are only read for display; the API checks the signature on every call.

const KEY = "msp-import.token";

export const ROLE_LABELS = {
  super: "Super administrator",
  primary: "Primary administrator",
  manager: "Manager",
  technician: "Technician",
  read_only: "Read-only",
};

const WRITERS = new Set(["super", "primary", "manager"]);

function base64UrlDecode(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a JWT, or throws an Error saying why it is not one. */
export function readClaims(token) {
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("This is not a JWT: it must have three dot-separated parts.");
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error("This is not a JWT: its payload cannot be read.");
  }
  for (const claim of ["sub", "partner_id", "role", "exp"]) {
    if (!(claim in claims)) throw new Error(`The token has no ${claim} claim.`);
  }
  return claims;
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** The signed-in user, or null (no token, or one that cannot be read or has expired). */
export function user() {
  const value = token();
  if (!value) return null;
  try {
    const claims = readClaims(value);
    if (claims.exp * 1000 <= Date.now()) return null;
    return {
      sub: String(claims.sub),
      partnerId: String(claims.partner_id),
      role: String(claims.role),
      roleLabel: ROLE_LABELS[claims.role] || `unknown role \u201c${claims.role}\u201d`,
      expires: new Date(claims.exp * 1000),
      canWrite: WRITERS.has(claims.role),
    };
  } catch {
    return null;
  }
}

/** Why the user may only look, or null when they may change things. */
export function readOnlyReason(what = "the import policies and customers") {
  const who = user();
  if (!who || who.canWrite) return null;
  return (
    `You are signed in as ${who.roleLabel}: you can see ${what}, ` +
    "but only a Manager, a Primary or a Super administrator can change them."
  );
}
