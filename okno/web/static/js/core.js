// okno staff pages: what every page shares — texts, the JSON API with CSRF, the event
// socket with catch-up, and small DOM helpers. Plain ES module, no build step.
// All user text goes into the page with textContent (via h()), never as markup.

export const BOOT = JSON.parse(document.getElementById("okno-boot")?.textContent || "{}");
const TEXTS = BOOT.texts || {};
export const LANG = BOOT.lang || "ru";
export const ME = BOOT.me || null;
/** Whether the signed-in user holds a permission (okno.security.permissions): what the
 * page offers follows it; the API decides anyway. */
export const can = (permission) => Boolean(ME && (ME.permissions || []).includes(permission));
const LOCALE = LANG === "en" ? "en-GB" : "ru-RU";

/** A UI text in the page's language; {name} placeholders are filled from vars. */
export function t(key, vars) {
  let s = TEXTS[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export const $ = (name, root = document) => root.querySelector(`[data-okno="${name}"]`);
export const $$ = (name, root = document) => [...root.querySelectorAll(`[data-okno="${name}"]`)];

/** Build an element: attrs (text → textContent, on* → listeners, data-* as attributes). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0")).join("");
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const time = d.toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString()
    ? time
    : d.toLocaleDateString(LOCALE, { day: "numeric", month: "short" }) + " " + time;
}

export function fmtDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleDateString(LOCALE, { day: "numeric", month: "long", year: "numeric" });
}

export function fmtDay(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleDateString(LOCALE, { day: "numeric", month: "long" });
}

/** 42 с · 3 мин · 1 ч 5 мин · 2 д */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} ${t("time.s")}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${t("time.m")}`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)} ${t("time.h")}` + (m ? ` ${m} ${t("time.m")}` : "");
  }
  return `${Math.floor(s / 86400)} ${t("time.d")}`;
}

export const secondsSince = (iso) => (iso ? (Date.now() - new Date(iso).getTime()) / 1000 : 0);

export function toast(text, kind = "") {
  const box = $("toasts") || document.body;
  const el = h("div", { class: `toast ${kind}`, role: "status", text });
  box.append(el);
  setTimeout(() => el.remove(), 4000);
}

// ------------------------------------------------------------------ API

export class ApiError extends Error {
  constructor(status, body) {
    super((body && typeof body.detail === "string" && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "";
    this.fields = (body && body.fields) || {};
  }
  /** A sentence for a person: our translation of the code, else the server's detail. */
  get text() {
    const key = `error.${this.code}`;
    if (this.code && TEXTS[key]) return t(key, this.fields);
    return this.message || t("error.generic", { status: this.status });
  }
  /** {field: problem} for forms: pydantic's list, or a service error naming one field. */
  get byField() {
    const out = {};
    for (const e of this.fields.errors || []) {
      const name = String(e.field || "").split(".").pop();
      const key = `invalid.${e.type}`;
      if (name) out[name] = TEXTS[key] ? t(key, e) : e.problem;
    }
    if (this.fields.field) out[this.fields.field] = this.text;
    return out;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)okno_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

/** Stream error codes that mean this sign-in is over (expired, revoked, switched off). */
const SESSION_OVER = ["unauthorized", "session_expired", "account_disabled", "token_expired", "token_invalid", "token_revoked"];

export function toLogin(reason = "expired") {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}&reason=${reason}`);
}

/** Call the JSON API with the session cookie and CSRF header; throws ApiError. */
export async function api(path, { method = "GET", body, form } = {}) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (res.status === 401) {
    toLogin("expired");
    throw new ApiError(401, { code: "unauthorized" });
  }
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, data);
  }
  return res.status === 204 ? null : res.json();
}

/** Drafts hold what customers told us: they do not outlive the session on this computer. */
export function forgetDrafts() {
  for (const key of Object.keys(localStorage)) if (key.startsWith("okno:draft:")) localStorage.removeItem(key);
}

export async function logout() {
  forgetDrafts();
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } finally {
    location.assign("/login?reason=signed_out");
  }
}

/** Show an API error next to the form's fields (elements [data-error-for=name]). */
export function showFieldErrors(form, err) {
  for (const el of form.querySelectorAll("[data-error-for]")) {
    el.textContent = "";
    el.closest(".field")?.classList.remove("invalid");
  }
  const general = form.querySelector("[data-okno=form-error]");
  if (general) general.textContent = "";
  if (!err) return;
  const byField = err.byField || {};
  let placed = false;
  for (const [name, problem] of Object.entries(byField)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = problem;
      slot.closest(".field")?.classList.add("invalid");
      placed = true;
    }
  }
  if (!placed && general) general.textContent = err.text || String(err);
  else if (!placed) toast(err.text || String(err), "error");
}

// ------------------------------------------------------------------ event stream

/**
 * The staff event socket: catch-up from the last seq seen, then live; reconnects with
 * backoff and resumes where it stopped, so a dropped connection never loses an event.
 * onEvent(ev) gets every event once; onReady(first) after each (re)connect's catch-up;
 * onReset() when the server says the gap is too old to catch up (reload your lists).
 */
export class Stream {
  constructor({ onEvent, onReady, onReset, onState }) {
    Object.assign(this, { onEvent, onReady, onReset, onState });
    this.lastSeq = null;
    this.ws = null;
    this.attempt = 0;
    this.closed = false;
    this.first = true;
  }

  start() {
    this.closed = false;
    this.connect();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.ws) this.connect();
    });
  }

  connect() {
    if (this.closed) return;
    this.onState?.("connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.lastSeq != null ? `?after_seq=${this.lastSeq}` : "";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws${after}`);
    this.ws = ws;
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      if (ev.type === "stream.ready") {
        this.attempt = 0;
        if (this.lastSeq == null) this.lastSeq = ev.payload.last_seq;
        this.onState?.("online");
        const first = this.first;
        this.first = false;
        this.onReady?.(first);
        return;
      }
      if (ev.type === "stream.error") {
        const code = ev.payload && ev.payload.code;
        if (code === "events_pruned") {
          this.lastSeq = null;
          this.onReset?.();
        } else if (SESSION_OVER.includes(code)) {
          // reconnecting would only be refused again: sign in anew
          this.closed = true;
          toLogin(code === "token_revoked" ? "token_revoked" : "expired");
        }
        return;
      }
      if (ev.seq != null) {
        if (this.lastSeq != null && ev.seq <= this.lastSeq) return; // already seen
        this.lastSeq = ev.seq;
      }
      try {
        this.onEvent(ev);
      } catch (e) {
        console.error("okno: event handler failed", e);
      }
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      if (this.closed) return;
      this.onState?.("offline");
      const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    };
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }
}

/**
 * The session ends after BOOT.idle_minutes without the person touching the page (an
 * unattended workstation in a bank must lock), and stays alive while they work even when
 * their work is only reading: activity renews the cookie every few minutes.
 */
function watchIdle() {
  const idleMs = (BOOT.idle_minutes || 30) * 60_000;
  let lastActivity = Date.now();
  let lastRenew = Date.now();
  const touch = () => {
    lastActivity = Date.now();
    if (lastActivity - lastRenew > Math.min(5 * 60_000, idleMs / 3)) {
      lastRenew = lastActivity;
      api("/api/v1/me").catch(() => {});
    }
  };
  for (const kind of ["keydown", "mousedown", "mousemove", "wheel", "touchstart"]) {
    document.addEventListener(kind, touch, { passive: true, capture: true });
  }
  setInterval(async () => {
    if (Date.now() - lastActivity < idleMs) return;
    forgetDrafts();
    try {
      await fetch("/api/v1/auth/logout", { method: "POST", headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" });
    } finally {
      toLogin("expired");
    }
  }, Math.min(30_000, idleMs / 4));
}

/** Wire the parts of the top bar every staff page has. */
export function initFrame() {
  $("logout")?.addEventListener("click", logout);
  if (ME) watchIdle();
}

export function setConnState(state) {
  const el = $("conn");
  if (!el) return;
  el.dataset.state = state;
  el.textContent = t(`conn.${state}`);
}

export function channelLabel(kind) {
  return t(`channel.${kind}`);
}

/** The round channel badge in lists: two letters on the channel's colour. */
export function channelBadge(kind) {
  const short = { widget: "W", telegram: "TG", viber: "V", vk: "VK", whatsapp: "WA", facebook: "FB", apple: "A", email: "@", api: "M", phone: "☎" };
  return h("span", { class: "chan", "data-kind": kind, title: channelLabel(kind), text: short[kind] || "?" });
}
