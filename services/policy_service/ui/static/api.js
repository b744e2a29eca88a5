// The public /v1 API, with the signed-in user's bearer token.

import * as session from "./session.js";

/** A non-2xx answer; ``problem`` is its RFC 9457 body (or one made up for it). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  get errors() {
    return this.problem.errors || [];
  }
}

/** Called on any 401: the token is missing, expired or no longer accepted. */
let onUnauthenticated = () => {};
export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

/**
 * Call the API. Returns {status, body, etag}; throws ApiError for 4xx/5xx and
 * when the service cannot be reached.
 */
export async function call(method, path, { body, ifMatch, token } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  const bearer = token || session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, {
      title: "Service unreachable",
      detail: `The policy service did not answer (${error.message}). Check that it is running.`,
    });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { title: response.statusText, detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    const problem = parsed && typeof parsed === "object" ? parsed : {};
    problem.title ||= response.statusText || `HTTP ${response.status}`;
    problem.detail ||= problem.title;
    const error = new ApiError(response.status, problem);
    if (response.status === 401 && !token) onUnauthenticated(error);
    throw error;
  }
  const etag = response.headers.get("ETag");
  return {
    status: response.status,
    body: parsed,
    etag: etag ? Number(etag.replace(/^W\//, "").replace(/"/g, "")) : null,
  };
}

/** Every item of a paginated list, following next_cursor. */
export async function listAll(path) {
  const items = [];
  const join = path.includes("?") ? "&" : "?";
  let cursor = null;
  for (let page = 0; page < 200; page += 1) {
    const url = `${path}${join}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const { body } = await call("GET", url);
    items.push(...body.items);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return items;
}

export const policies = () => listAll("/v1/import-policies");
export const customers = () => listAll("/v1/customers");
