// okno: minimal operator page (login, open dialogs, one dialog, reply, close, transfer).
// Plain ES module, no build step. All user text goes in with textContent.

const API = (() => {
  // The API lives at the site root this script was served from ("/static/operator.js").
  const u = new URL(import.meta.url);
  const path = u.pathname.replace(/[^/]*$/, "").replace(/\/static\/$/, "/");
  return (u.origin + path).replace(/\/+$/, "");
})();
const WS_API = API.replace(/^http/i, "ws");
const TOKEN_KEY = "okno:staff:token";

const STATUS_TEXT = { waiting: "ждёт ответа", assigned: "в работе", closed: "закрыт" };
const CONN_TEXT = { online: "в сети", offline: "нет связи", connecting: "подключение…" };
const KIND_TEXT = {
  widget: "веб-чат", api: "API", telegram: "Telegram", viber: "Viber", vk: "ВКонтакте",
  whatsapp: "WhatsApp", facebook: "Facebook", apple: "Apple", email: "e-mail", phone: "телефон",
};

// Server error codes in Russian; the server's English `detail` is the fallback.
const ERRORS = {
  bad_credentials: "Неверный логин или пароль",
  account_disabled: "Учётная запись отключена",
  already_assigned: "Диалог уже взял другой оператор",
  conversation_closed: "Диалог закрыт",
  not_assignee: "Это может сделать только ответственный оператор или супервизор",
  same_assignee: "Диалог уже у этого оператора",
  forbidden_role: "Недостаточно прав",
  team_not_found: "Команда не найдена",
  user_not_found: "Сотрудник не найден",
  empty_message: "Пустое сообщение",
  text_too_long: "Сообщение слишком длинное",
  too_many_requests: "Слишком много запросов, подождите немного",
  forbidden: "Недостаточно прав",
  not_found: "Не найдено",
};
const errorText = (j, status) =>
  (j && ERRORS[j.code]) || (j && typeof j.detail === "string" && j.detail) || `Ошибка ${status}`;

const $ = (sel) => document.querySelector(`[data-okno="${sel}"]`);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  convs: new Map(), // id -> Conversation
  unread: new Set(),
  selected: null, // conversation id
  messages: new Map(), // id -> Message (selected conversation only)
  pending: new Map(), // client_msg_id -> {text, internal, error}
  lastSeq: null,
  users: [],
  teams: [],
  me: null, // {id, login, name, role, team_id}
  needsList: true, // (re)load the list once the stream is ready
};
window.oknoOperator = { state };

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c != null && c !== false) el.append(c);
  return el;
}

function uuid() {
  if (crypto.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      /* insecure context */
    }
  }
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0")).join("");
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const t = d.toLocaleTimeString("ru-RU", { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString()
    ? t
    : d.toLocaleDateString("ru-RU", { day: "numeric", month: "short" }) + " " + t;
}

function toast(text) {
  const el = h("div", { class: "toast", role: "status", text });
  document.body.append(el);
  setTimeout(() => el.remove(), 3500);
}

class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) {
    logout("Сессия истекла, войдите снова");
    throw new ApiError(401, "unauthorized", "unauthorized");
  }
  if (!res.ok) {
    let detail = `Ошибка ${res.status}`;
    let code = "";
    try {
      const j = await res.json();
      detail = Array.isArray(j.detail) ? j.detail.map((d) => d.msg).join("; ") : errorText(j, res.status);
      code = j.code || "";
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, detail, code);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

// ------------------------------------------------------------------ login

function showLogin(message) {
  $("login").closest("#login-view").hidden = false;
  document.getElementById("app-view").hidden = true;
  $("login-error").textContent = message || "";
  $("login").elements.login.focus();
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const btn = form.querySelector("button[type=submit]");
  btn.disabled = true;
  $("login-error").textContent = "";
  try {
    const res = await fetch(API + "/api/v1/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login: form.elements.login.value.trim(), password: form.elements.password.value }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      $("login-error").textContent = errorText(data, res.status);
      return;
    }
    state.token = data.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    form.elements.password.value = "";
    startApp();
  } catch {
    $("login-error").textContent = "Сервер недоступен";
  } finally {
    btn.disabled = false;
  }
});

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  stopWs();
  state.convs.clear();
  state.messages.clear();
  state.pending.clear();
  state.selected = null;
  state.lastSeq = null;
  showLogin(message);
}

$("logout").addEventListener("click", () => logout(""));

// ------------------------------------------------------------------ app

async function startApp() {
  document.getElementById("login-view").hidden = true;
  document.getElementById("app-view").hidden = false;
  renderList();
  renderDialog();
  // The socket first: without after_seq it streams everything from "now", and the list
  // is loaded once it reports stream.ready, so nothing falls between the two.
  state.needsList = true;
  connectWs();
  try {
    state.me = await api("/api/v1/me");
    $("me").textContent = state.me.name || state.me.login;
  } catch {
    /* 401 already handled */
  }
  loadDirectory();
}

async function loadConversations() {
  const data = await api("/api/v1/conversations?status=open&limit=500");
  const seen = new Set();
  for (const c of data.conversations || []) {
    seen.add(c.id);
    const old = state.convs.get(c.id);
    // An event may have arrived while the list was loading: keep the newer preview.
    if (old && old.last_message_at && c.last_message_at && old.last_message_at > c.last_message_at) {
      c.last_message_at = old.last_message_at;
      c.last_message_preview = old.last_message_preview;
    }
    state.convs.set(c.id, c);
  }
  for (const id of [...state.convs.keys()]) if (!seen.has(id) && id !== state.selected) state.convs.delete(id);
  renderList();
}

async function loadDirectory() {
  const [users, teams] = await Promise.all([
    api("/api/v1/users").catch(() => ({ users: [] })),
    api("/api/v1/teams").catch(() => ({ teams: [] })),
  ]);
  state.users = users.users || [];
  state.teams = teams.teams || [];
  renderTransferOptions();
}

function upsertConv(c) {
  if (!c || c.id == null) return;
  const old = state.convs.get(c.id) || {};
  state.convs.set(c.id, { ...old, ...c });
}

function sortedConvs() {
  const key = (c) => c.last_message_at || c.created_at || "";
  return [...state.convs.values()]
    .filter((c) => c.status !== "closed" || c.id === state.selected)
    .sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : b.id - a.id));
}

function renderList() {
  const ul = $("convs");
  const list = sortedConvs();
  ul.textContent = "";
  for (const c of list) {
    const li = h(
      "li",
      {
        class: "conv" + (c.id === state.selected ? " selected" : "") + (state.unread.has(c.id) ? " unread" : ""),
        "data-okno": "conv",
        "data-id": c.id,
        "data-status": c.status,
        tabindex: "0",
        onclick: () => selectConv(c.id),
        onkeydown: (e) => {
          if (e.key === "Enter") selectConv(c.id);
        },
      },
      h("div", { class: "cname", text: (c.customer && c.customer.name) || `Клиент #${c.customer ? c.customer.id : "?"}` }),
      h("div", { class: "ctime", text: fmtTime(c.last_message_at || c.created_at) }),
      h("div", { class: "cprev", text: c.last_message_preview || "" }),
      h(
        "div",
        { class: "cmeta" },
        h("span", { class: `pill ${c.status}`, text: STATUS_TEXT[c.status] || c.status }),
        h("span", { text: channelLabel(c) }),
        c.assignee ? h("span", { text: "· " + c.assignee.name }) : null,
        c.topic ? h("span", { text: "· " + c.topic }) : null,
      ),
    );
    ul.append(li);
  }
  $("conv-count").textContent = String(list.filter((c) => c.status !== "closed").length);
  $("convs-empty").hidden = list.length > 0;
}

function channelLabel(c) {
  if (!c.channel) return "";
  const kind = KIND_TEXT[c.channel.kind] || c.channel.kind || "";
  return c.channel.name && c.channel.name !== kind ? `${kind} · ${c.channel.name}` : kind;
}

// ------------------------------------------------------------------ dialog

async function selectConv(id) {
  if (state.selected !== id) {
    state.selected = id;
    state.messages.clear();
    state.pending.clear();
    $("reply").value = "";
    $("reply-error").textContent = "";
  }
  state.unread.delete(id);
  renderList();
  renderDialog();
  try {
    const [conv, msgs] = await Promise.all([
      api(`/api/v1/conversations/${id}`).catch(() => null),
      api(`/api/v1/conversations/${id}/messages?after_seq=0&limit=500`),
    ]);
    if (state.selected !== id) return;
    if (conv) upsertConv(conv.conversation || conv);
    for (const m of msgs.messages || []) state.messages.set(m.id, m);
    renderList();
    renderDialog();
    $("reply").focus();
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  }
}

function renderDialog() {
  const c = state.selected != null ? state.convs.get(state.selected) : null;
  $("no-dialog").hidden = !!c;
  for (const k of ["dialog-head", "thread", "composer"]) $(k).hidden = !c;
  if (!c) return;
  $("dialog-customer").textContent = (c.customer && c.customer.name) || `Клиент #${c.customer ? c.customer.id : "?"}`;
  const sub = [channelLabel(c), STATUS_TEXT[c.status] || c.status];
  if (c.assignee) sub.push("оператор: " + c.assignee.name);
  if (c.topic) sub.push("тема: " + c.topic);
  sub.push("диалог #" + c.id);
  $("dialog-sub").textContent = sub.filter(Boolean).join(" · ");
  const closed = c.status === "closed";
  $("take").hidden = c.status !== "waiting";
  $("close-conv").disabled = closed;
  $("transfer").disabled = closed;
  $("reply-send").disabled = closed;
  $("reply").disabled = closed;
  $("reply").placeholder = closed
    ? "Диалог закрыт"
    : "Ответ клиенту… (Enter — отправить, Shift+Enter — новая строка)";
  renderThread();
}

function renderThread() {
  const thread = $("thread");
  const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  const msgs = [...state.messages.values()].sort((a, b) => (a.seq ?? 1e15) - (b.seq ?? 1e15) || a.id - b.id);
  const confirmed = new Set(msgs.map((m) => m.client_msg_id).filter(Boolean));
  thread.textContent = "";
  for (const m of msgs) thread.append(messageEl(m, false));
  for (const [cmid, p] of state.pending) {
    if (confirmed.has(cmid)) {
      state.pending.delete(cmid);
      continue;
    }
    thread.append(messageEl({ author_kind: "operator", text: p.text, internal: p.internal, client_msg_id: cmid, error: p.error }, true));
  }
  if (atBottom || thread.dataset.scrolled !== String(state.selected)) {
    thread.scrollTop = thread.scrollHeight;
    thread.dataset.scrolled = String(state.selected);
  }
}

const blobCache = new Map();
function attachmentBlob(url) {
  if (!blobCache.has(url)) {
    const p = api(url, { raw: true }).then((r) => r.blob()).then((b) => URL.createObjectURL(b));
    p.catch(() => blobCache.delete(url));
    blobCache.set(url, p);
  }
  return blobCache.get(url);
}

function messageEl(m, pending) {
  const who = {
    customer: m.author_name || "Клиент",
    operator: m.author_name || "Оператор",
    bot: m.author_name || "Бот",
    system: "",
  }[m.author_kind] ?? "";
  const atts = h("div", { class: "atts" });
  for (const a of m.attachments || []) {
    if (/^image\//.test(a.content_type)) {
      const img = h("img", { alt: a.filename, title: a.filename });
      attachmentBlob(a.url).then((u) => {
        img.src = u;
        img.onclick = () => window.open(u, "_blank");
      }, () => img.replaceWith(document.createTextNode(a.filename)));
      atts.append(img);
    } else {
      const link = h("a", { href: "#", download: a.filename, class: "file" },
        h("span", { class: "ext", text: (a.filename.split(".").pop() || "файл").slice(0, 4) }),
        h("span", { text: a.filename }));
      link.addEventListener("click", (e) => {
        if (link.getAttribute("href") !== "#") return;
        e.preventDefault();
        attachmentBlob(a.url).then((u) => {
          link.href = u;
          link.click();
        });
      });
      atts.append(link);
    }
  }
  const meta = pending
    ? m.error ? "не отправлено" : "отправляется…"
    : fmtTime(m.created_at) + (m.internal ? " · внутренняя заметка" : "");
  return h(
    "div",
    {
      class: "msg",
      "data-okno": "message",
      "data-author": m.author_kind,
      "data-id": m.id,
      "data-seq": m.seq,
      "data-pending": pending ? "1" : null,
      "data-internal": m.internal ? "1" : null,
    },
    who ? h("div", { class: "who", text: who }) : null,
    h("div", { class: "body" }, h("span", { text: m.text || "" }), atts),
    h("div", { class: "when", text: meta }),
    m.error ? h("div", { class: "err", role: "alert", text: m.error }) : null,
  );
}

async function sendReply() {
  const id = state.selected;
  const box = $("reply");
  const text = box.value.trim();
  if (id == null || !text) return;
  const internal = $("internal").checked;
  const cmid = uuid();
  state.pending.set(cmid, { text, internal, error: null });
  box.value = "";
  $("reply-error").textContent = "";
  renderThread();
  let delay = 1000;
  for (;;) {
    try {
      const data = await api(`/api/v1/conversations/${id}/messages`, {
        method: "POST",
        body: { client_msg_id: cmid, text, internal },
      });
      const m = data && (data.message || (data.id != null ? data : null));
      if (m && state.selected === id) state.messages.set(m.id, m);
      state.pending.delete(cmid);
      if (state.selected === id) renderThread();
      return;
    } catch (e) {
      if (e.status === 401) return;
      if (e.status && e.status < 500 && e.status !== 429) {
        const p = state.pending.get(cmid);
        if (p) p.error = e.message;
        if (state.selected === id) renderThread();
        return;
      }
      // network error / 5xx: retry with the same client_msg_id
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30000);
      if (!state.token || !state.pending.has(cmid)) return;
    }
  }
}

$("reply-send").addEventListener("click", sendReply);
$("reply").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendReply();
  }
});
$("internal").addEventListener("change", (e) => {
  $("composer").classList.toggle("internal", e.target.checked);
  $("reply").placeholder = e.target.checked ? "Заметка для коллег — клиент её не увидит" : "Ответ клиенту…";
});

$("take").addEventListener("click", async () => {
  const id = state.selected;
  if (id == null) return;
  try {
    const c = await api(`/api/v1/conversations/${id}/assign`, { method: "POST", body: {} });
    upsertConv(c);
    renderList();
    renderDialog();
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  }
});

$("close-conv").addEventListener("click", async () => {
  const id = state.selected;
  if (id == null || !confirm("Закрыть диалог?")) return;
  try {
    const data = await api(`/api/v1/conversations/${id}/close`, { method: "POST", body: { resolution: "resolved" } });
    const c = data && (data.conversation || (data.id != null ? data : null));
    upsertConv(c || { id, status: "closed" });
    renderList();
    renderDialog();
    toast("Диалог закрыт");
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  }
});

function renderTransferOptions() {
  const sel = $("transfer-to");
  sel.textContent = "";
  sel.append(h("option", { value: "", text: "Передать…" }));
  const myId = state.me ? state.me.id : null;
  const users = state.users.filter((u) => u.id !== myId);
  if (users.length) {
    const g = h("optgroup", { label: "Сотрудники" });
    for (const u of users) g.append(h("option", { value: `u:${u.id}`, text: `${u.name || u.login} (${u.role})` }));
    sel.append(g);
  }
  let teams = state.teams.map((t) => ({ id: t.id, name: t.name }));
  if (!teams.length) {
    teams = [...new Set(state.users.map((u) => u.team_id).filter((t) => t != null))]
      .map((id) => ({ id, name: `Команда #${id}` }));
  }
  if (teams.length) {
    const g = h("optgroup", { label: "Очереди команд" });
    for (const t of teams) g.append(h("option", { value: `t:${t.id}`, text: t.name }));
    sel.append(g);
  }
}

$("transfer").addEventListener("click", async () => {
  const id = state.selected;
  const v = $("transfer-to").value;
  if (id == null || !v) {
    toast("Выберите, кому передать диалог");
    return;
  }
  const [kind, target] = v.split(":");
  const body = kind === "u" ? { to_user_id: Number(target) } : { to_team_id: Number(target) };
  try {
    const data = await api(`/api/v1/conversations/${id}/transfer`, { method: "POST", body });
    const c = data && (data.conversation || (data.id != null ? data : null));
    if (c) upsertConv(c);
    renderList();
    renderDialog();
    toast("Диалог передан");
    $("transfer-to").value = "";
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  }
});

// ------------------------------------------------------------------ realtime

let ws = null;
let wsTimer = null;
let wsDelay = 500;

function setConn(s) {
  const el = $("status");
  el.dataset.state = s;
  el.firstElementChild.textContent = CONN_TEXT[s] || s;
}

function stopWs() {
  clearTimeout(wsTimer);
  wsTimer = null;
  if (ws) {
    const old = ws;
    ws = null;
    old.close(1000);
  }
  setConn("offline");
}

function scheduleWs() {
  if (wsTimer || !state.token) return;
  wsTimer = setTimeout(() => {
    wsTimer = null;
    connectWs();
  }, wsDelay + Math.random() * 200);
  wsDelay = Math.min(wsDelay * 2, 10000);
}

function connectWs() {
  if (ws || !state.token) return;
  setConn("connecting");
  let url = `${WS_API}/api/v1/ws?token=${encodeURIComponent(state.token)}`;
  // A little before the newest seen: live events may arrive out of order (numbered at
  // commit, published after it); duplicates are dropped by seq in handleEvent.
  if (state.lastSeq != null) url += `&after_seq=${Math.max(0, state.lastSeq - LOOKBACK)}`;
  const sock = new WebSocket(url);
  ws = sock;
  let opened = false;
  let pongTimer = null;
  const ping = setInterval(() => {
    if (sock.readyState !== WebSocket.OPEN) return;
    sock.send("ping");
    clearTimeout(pongTimer);
    // A half-open connection never answers: drop it and reconnect with catch-up.
    pongTimer = setTimeout(() => sock.close(4000, "no pong"), 10000);
  }, 25000);
  sock.onopen = () => {
    opened = true;
    wsDelay = 500;
    setConn("connecting"); // until stream.ready: catching up
  };
  sock.onmessage = (ev) => {
    clearTimeout(pongTimer);
    let env;
    try {
      env = JSON.parse(ev.data);
    } catch {
      return;
    }
    handleEvent(env);
  };
  sock.onclose = () => {
    clearInterval(ping);
    clearTimeout(pongTimer);
    if (ws !== sock) return;
    ws = null;
    setConn("offline");
    if (!opened) {
      // maybe the token expired: any API call logs out on 401
      api("/api/v1/me").catch(() => {});
    }
    scheduleWs();
  };
}

function resync() {
  // Too far behind: start a fresh stream from "now" and reload everything once it is ready.
  state.lastSeq = null;
  state.needsList = true;
  if (ws) ws.close(1000);
}

const LOOKBACK = 200;
const seenSeqs = new Set();

function handleEvent(env) {
  if (typeof env.seq === "number") {
    if (seenSeqs.has(env.seq)) return;
    seenSeqs.add(env.seq);
    if (seenSeqs.size > 4 * LOOKBACK) seenSeqs.delete(seenSeqs.values().next().value);
    if (state.lastSeq == null || env.seq > state.lastSeq) state.lastSeq = env.seq;
  }
  const p = env.payload || {};
  switch (env.type) {
    case "message.created": {
      const m = p.message;
      if (!m) break;
      const cid = m.conversation_id ?? env.conversation_id;
      const c = state.convs.get(cid);
      if (c) {
        if (!m.internal) c.last_message_preview = m.text || (m.attachments && m.attachments.length ? "Файл: " + m.attachments[0].filename : "");
        c.last_message_at = m.created_at || c.last_message_at;
      } else {
        // a dialog we have not seen yet (e.g. created before we connected)
        api(`/api/v1/conversations/${cid}`).then((d) => {
          const conv = d && (d.conversation || d);
          if (conv && conv.status !== "closed") {
            upsertConv(conv);
            renderList();
          }
        }).catch(() => {});
      }
      if (cid === state.selected) {
        state.messages.set(m.id, m);
        renderThread();
      } else if (m.author_kind === "customer") {
        state.unread.add(cid);
      }
      renderList();
      break;
    }
    case "conversation.created":
    case "conversation.assigned":
    case "conversation.transferred":
    case "conversation.closed":
    case "conversation.updated": {
      const c = p.conversation;
      if (!c) break;
      upsertConv(c);
      renderList();
      if (c.id === state.selected) renderDialog();
      break;
    }
    case "stream.ready":
      if (typeof p.last_seq === "number" && (state.lastSeq == null || p.last_seq > state.lastSeq)) state.lastSeq = p.last_seq;
      setConn("online");
      if (state.needsList) {
        state.needsList = false;
        loadConversations().catch(() => {
          state.needsList = true;
        });
        if (state.selected != null) selectConv(state.selected);
      }
      break;
    case "stream.error":
      if (p.code === "events_pruned") resync();
      else if (p.code === "unauthorized") logout("Сессия истекла, войдите снова");
      break;
    default:
      break;
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.token && !ws) {
    clearTimeout(wsTimer);
    wsTimer = null;
    wsDelay = 500;
    connectWs();
  }
});
window.addEventListener("online", () => {
  if (state.token && !ws) {
    clearTimeout(wsTimer);
    wsTimer = null;
    wsDelay = 500;
    connectWs();
  }
});
window.addEventListener("offline", () => {
  // The socket may linger half-open: drop it now; "online" brings it back with catch-up.
  if (ws) {
    const old = ws;
    ws = null;
    old.close(1000);
  }
  setConn("offline");
  scheduleWs();
});

// ------------------------------------------------------------------ boot

if (state.token) startApp();
else showLogin("");
