// Tessera's management page. The admin API key lives in the `apiKey` variable only: never in storage, cookies or
// the URL. Every request goes to this same origin, as the page's Content-Security-Policy requires.
"use strict";

let apiKey = null;
/** A rate limit as the API takes it: 1 to 10000000 per 1 to 86400 seconds (the OpenAPI `TokenRateLimit` pattern). */
const RATE_LIMIT_PATTERN = "([1-9][0-9]{0,6}|10000000)/([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s";
let listState = { userId: null, status: "all", cursor: null };

const $ = (id) => document.getElementById(id);

/** Shows `text` in the alert region; `kind` "info" for good news. */
function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
}

/** Turns an RFC 9457 problem body into one readable sentence, naming each failing field. */
function describeProblem(status, body) {
  if (!body || typeof body !== "object") return `The request failed (HTTP ${status}).`;
  let text = body.detail || body.title || `The request failed (HTTP ${status}).`;
  if (Array.isArray(body.errors) && body.errors.length > 0) {
    text += " " + body.errors.map((e) => `${e.field} ${e.message}.`).join(" ");
  }
  if (status === 401) text += " Check the API key in step 1.";
  if (status === 429) text += " Wait a moment and try again.";
  return text;
}

/** Calls the API with the key; returns the parsed body, or throws an Error whose message is for people. */
async function api(method, path, body) {
  if (!apiKey) throw new Error("Enter an admin API key in step 1 first.");
  const headers = { "X-API-Key": apiKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (error) {
    throw new Error("Tessera could not be reached. Is the server running?");
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
  if (!response.ok) throw new Error(describeProblem(response.status, parsed));
  return parsed;
}

/**
 * A query string that carries each value exactly: everything but unreserved characters is percent-encoded, so a
 * space is %20 and a plus sign %2B (URLSearchParams would write a space as "+", which the API reads as a plus).
 */
function queryString(parameters) {
  return Object.entries(parameters)
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join("&");
}

function formatDate(value) {
  return value ? new Date(value).toLocaleString() : "never";
}

function parseScopes(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter((s) => s.length > 0);
}

function showSecret(token, prefix) {
  const panel = $("secret-panel");
  $("secret-value").value = token;
  $("copy-status").textContent = "";
  panel.hidden = false;
  panel.focus();
  $("secret-heading").textContent = `Your new token (${prefix}…)`;
}

function hideSecret() {
  $("secret-value").value = "";
  $("secret-panel").hidden = true;
}

async function copySecret() {
  const field = $("secret-value");
  try {
    await navigator.clipboard.writeText(field.value);
    $("copy-status").textContent = "Copied to the clipboard.";
  } catch (_) {
    field.focus();
    field.select();
    $("copy-status").textContent = "Copying was not allowed here: the token is selected, press Ctrl+C (or ⌘C) to copy it.";
  }
}

function renderTokens(tokens, append) {
  const rows = $("token-rows");
  if (!append) rows.replaceChildren();
  for (const token of tokens) {
    const row = document.createElement("tr");
    const paused = token.status === "active" && token.enabled === false;
    const cells = [
      token.prefix + "…",
      token.name ?? "—",
      token.scopes.length ? token.scopes.join(" ") : "—",
      paused ? "paused" : token.status,
      formatDate(token.createdAt),
      formatDate(token.expiresAt),
      formatDate(token.lastUsedAt),
    ];
    cells.forEach((text, index) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (index === 3) cell.className = paused ? "status-paused" : `status-${token.status}`;
      row.appendChild(cell);
    });
    const actions = document.createElement("td");
    actions.className = "actions";
    if (token.status === "active") {
      const action = (text, onClick, className) => {
        const button = document.createElement("button");
        button.type = "button";
        if (className) button.className = className;
        button.textContent = text;
        button.setAttribute("aria-label", `${text} token ${token.prefix}`);
        button.addEventListener("click", onClick);
        return button;
      };
      actions.append(
        action("Rotate", () => askRotate(token)),
        action("Edit", () => askEdit(token)),
        action(paused ? "Resume" : "Pause", () => setEnabled(token, paused)),
        action("Revoke", () => revokeToken(token), "danger"),
      );
    } else {
      actions.textContent = "—";
    }
    row.appendChild(actions);
    rows.appendChild(row);
  }
  const table = $("token-table");
  table.hidden = rows.children.length === 0 && !append;
  $("token-caption").textContent = `Tokens of ${listState.userId} (${listState.status})`;
  if (rows.children.length === 0) say(`No ${listState.status === "all" ? "" : listState.status + " "}tokens for ${listState.userId}.`, "info");
}

async function loadTokens(append) {
  const cursor = append ? listState.cursor : null;
  const page = await api("GET", `/api/tokens?${queryString({ userId: listState.userId, status: listState.status, limit: "50", cursor })}`);
  listState.cursor = page.nextCursor;
  renderTokens(page.tokens, append);
  $("more-tokens").hidden = !page.nextCursor;
  $("revoke-all").hidden = false;
}

async function revokeAllTokens() {
  const userId = listState.userId;
  if (!userId) return;
  if (!window.confirm(`Revoke every active token of ${userId}? Anything using them stops working at once.`)) return;
  clearMessage();
  try {
    const result = await api("POST", "/api/tokens/revoke", { userId });
    await refreshList();
    say(`Revoked ${result.revoked} active token${result.revoked === 1 ? "" : "s"} of ${userId}.`, "info");
  } catch (error) {
    say(error.message);
  }
}

async function refreshList() {
  if (listState.userId) await loadTokens(false);
}

async function loadAudit(userId) {
  const page = await api("GET", `/api/audit?${queryString({ userId, limit: "50" })}`);
  const rows = $("audit-rows");
  rows.replaceChildren();
  for (const event of page.events) {
    const row = document.createElement("tr");
    const details = Object.entries(event.details ?? {}).map(([name, value]) => `${name}: ${value}`).join(", ") || "—";
    for (const text of [formatDate(event.occurredAt), event.action, event.actor, event.userId ?? "—", event.tokenId ?? "—", details]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    rows.appendChild(row);
  }
  $("audit-caption").textContent = userId ? `Latest audit events for ${userId}` : "Latest audit events";
  $("audit-table").hidden = page.events.length === 0;
  if (page.events.length === 0) say(userId ? `No audit events for ${userId}.` : "No audit events.", "info");
}

/** The refill chosen in the `<prefix>-refill-every` and `-amount` fields, `null` for none, or an Error for people. */
function readRefill(prefix) {
  const every = $(`${prefix}-refill-every`).value;
  const amount = $(`${prefix}-refill-amount`).value.trim();
  if (!every) return null;
  if (!amount) return new Error("Say how many uses each refill gives back.");
  return { amount: Number.parseInt(amount, 10), every };
}

/** `date` as a `datetime-local` value in this browser's time zone, to the second. */
function localDateTime(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}

/** Opens the edit dialog for `token`, and on Save sends only the fields that changed. */
function askEdit(token) {
  const dialog = $("edit-dialog");
  $("edit-prefix").textContent = `${token.prefix}…`;
  const before = {
    name: token.name ?? "",
    audiences: (token.audiences ?? []).join(" "),
    cidrs: (token.allowedCidrs ?? []).join(" "),
    meta: token.meta ? JSON.stringify(token.meta) : "",
    scopes: token.scopes.join(" "),
    expires: localDateTime(new Date(token.expiresAt)),
    maxUses: token.maxUses ? String(token.maxUses) : "",
    refillEvery: token.refill ? token.refill.every : "",
    refillAmount: token.refill ? String(token.refill.amount) : "",
    rateLimit: token.rateLimit ?? "",
  };
  $("edit-name").value = before.name;
  $("edit-audiences").value = before.audiences;
  $("edit-cidrs").value = before.cidrs;
  $("edit-meta").value = before.meta;
  $("edit-scopes").value = before.scopes;
  $("edit-expires").value = before.expires;
  $("edit-max-uses").value = before.maxUses;
  $("edit-refill-every").value = before.refillEvery;
  $("edit-refill-amount").value = before.refillAmount;
  $("edit-rate-limit").value = before.rateLimit;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "save") return;
    clearMessage();
    const body = {};
    const name = $("edit-name").value.trim();
    if (name !== before.name) body.name = name || null;
    const audiences = $("edit-audiences").value.trim();
    if (audiences !== before.audiences) body.audiences = audiences ? parseScopes(audiences) : null;
    const cidrs = $("edit-cidrs").value.trim();
    if (cidrs !== before.cidrs) body.allowedCidrs = cidrs ? parseScopes(cidrs) : null;
    const meta = $("edit-meta").value.trim();
    if (meta !== before.meta) {
      try {
        body.meta = meta ? JSON.parse(meta) : null;
      } catch (_) {
        say("The data is not valid JSON; write an object such as {\"plan\": \"pro\"}.");
        return;
      }
    }
    const scopes = $("edit-scopes").value.trim();
    if (scopes !== before.scopes) body.scopes = parseScopes(scopes);
    const expires = $("edit-expires").value;
    if (expires && expires !== before.expires) body.expiresAt = new Date(expires).toISOString().replace(/\.\d{3}Z$/, "Z");
    const maxUses = $("edit-max-uses").value.trim();
    if (maxUses !== before.maxUses) body.maxUses = maxUses ? Number.parseInt(maxUses, 10) : null;
    if ($("edit-refill-every").value !== before.refillEvery || $("edit-refill-amount").value.trim() !== before.refillAmount) {
      const refill = readRefill("edit");
      if (refill instanceof Error) {
        say(refill.message);
        return;
      }
      body.refill = refill;
    }
    const rateLimit = $("edit-rate-limit").value.trim();
    if (rateLimit !== before.rateLimit) body.rateLimit = rateLimit || null;
    if (Object.keys(body).length === 0) return;
    try {
      await api("PATCH", `/api/tokens/${token.id}`, body);
      say(`Token ${token.prefix}… is updated.`, "info");
      await refreshList();
    } catch (error) {
      say(error.message);
    }
  };
  dialog.showModal();
}

/** Pauses a token (it answers DISABLED until resumed) or resumes it. */
async function setEnabled(token, enabled) {
  clearMessage();
  try {
    await api("PATCH", `/api/tokens/${token.id}`, { enabled });
    say(`Token ${token.prefix}… is ${enabled ? "resumed" : "paused"}.`, "info");
    await refreshList();
  } catch (error) {
    say(error.message);
  }
}

async function revokeToken(token) {
  if (!window.confirm(`Revoke ${token.prefix}…? Anything using it, or a token it replaced or that replaced it, stops working at once.`)) return;
  clearMessage();
  try {
    await api("DELETE", `/api/tokens/${token.id}`);
    say(`Token ${token.prefix}… is revoked.`, "info");
    await refreshList();
  } catch (error) {
    say(error.message);
  }
}

function askRotate(token) {
  const dialog = $("rotate-dialog");
  $("rotate-prefix").textContent = `${token.prefix}…`;
  $("rotate-grace").value = "0";
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "rotate") return;
    clearMessage();
    try {
      const grace = Number.parseInt($("rotate-grace").value, 10);
      const created = await api("POST", `/api/tokens/${token.id}/rotate`, { graceSeconds: grace });
      showSecret(created.token, created.prefix);
      say(`Token ${token.prefix}… was rotated; the old one stops working in ${grace} seconds.`, "info");
      await refreshList();
    } catch (error) {
      say(error.message);
    }
  };
  dialog.showModal();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["create-rate-limit", "edit-rate-limit"]) $(id).pattern = RATE_LIMIT_PATTERN;
  // The edit dialog offers the same refill periods as the create form.
  for (const option of $("create-refill-every").options) $("edit-refill-every").append(option.cloneNode(true));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("api-key").value.trim();
    $("api-key").value = "";
    if (!value) return;
    apiKey = value;
    $("key-status").textContent = "A key is in use for this page (held in memory only).";
    clearMessage();
  });
  $("forget-key").addEventListener("click", () => {
    apiKey = null;
    $("key-status").textContent = "No key entered.";
  });

  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage();
    const name = $("create-name").value.trim();
    const body = {
      userId: $("create-user").value,
      scopes: parseScopes($("create-scopes").value),
      expiresInMinutes: Number.parseInt($("create-minutes").value, 10),
    };
    if (name) body.name = name;
    const audiences = parseScopes($("create-audiences").value);
    if (audiences.length > 0) body.audiences = audiences;
    const networks = parseScopes($("create-cidrs").value);
    if (networks.length > 0) body.allowedCidrs = networks;
    const maxUses = $("create-max-uses").value.trim();
    if (maxUses) body.maxUses = Number.parseInt(maxUses, 10);
    const refill = readRefill("create");
    if (refill instanceof Error) {
      say(refill.message);
      return;
    }
    if (refill) body.refill = refill;
    const rateLimit = $("create-rate-limit").value.trim();
    if (rateLimit) body.rateLimit = rateLimit;
    const meta = $("create-meta").value.trim();
    if (meta) {
      try {
        body.meta = JSON.parse(meta);
      } catch (_) {
        say("The data is not valid JSON; write an object such as {\"plan\": \"pro\"}.");
        return;
      }
    }
    try {
      const created = await api("POST", "/api/tokens", body);
      showSecret(created.token, created.prefix);
      if (listState.userId === created.userId) await refreshList();
    } catch (error) {
      say(error.message);
    }
  });

  $("copy-secret").addEventListener("click", copySecret);
  $("dismiss-secret").addEventListener("click", hideSecret);

  $("list-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage();
    listState = { userId: $("list-user").value, status: $("list-status").value, cursor: null };
    try {
      await loadTokens(false);
    } catch (error) {
      say(error.message);
    }
  });
  $("revoke-all").addEventListener("click", revokeAllTokens);
  $("audit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage();
    try {
      await loadAudit($("audit-user").value);
    } catch (error) {
      say(error.message);
    }
  });
  $("more-tokens").addEventListener("click", async () => {
    try {
      await loadTokens(true);
    } catch (error) {
      say(error.message);
    }
  });
});
