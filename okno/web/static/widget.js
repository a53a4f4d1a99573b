/*
 * okno web widget: the customer chat a bank page embeds with one tag:
 *
 *   <script src="https://okno.example/widget.js" data-widget-key="demo" async></script>
 *
 * Optional attributes: data-lang="en" (default Russian), data-api-base="https://..."
 * (default: the directory the script was loaded from).
 *
 * Plain JavaScript, no dependencies, no build step. Everything is rendered inside an open
 * Shadow DOM on <div id="okno-widget">, so the page's CSS cannot break it. All text that
 * comes from people (customers, operators, the bot, file names) is inserted with
 * textContent / text nodes only, never as HTML.
 *
 * Reliability: every message gets a client_msg_id before it is sent; until the server
 * acknowledges it the message sits in an outbox (kept in localStorage, so a reload
 * retries it) and is re-sent with the same id, with backoff, on network errors and 5xx.
 * Realtime events arrive over a WebSocket that reconnects with catch-up from the last
 * seen event number; messages are de-duplicated by id and kept sorted by seq.
 *
 * What the widget reports back: while the customer types (box not empty) a
 * {"type":"typing"} frame on the socket, at most one every 2.5 s; and, while the panel is
 * open and the tab visible, POST /api/v1/widget/read {"up_to_seq"} with the newest
 * operator/bot message shown, at most once a second. It shows "оператор печатает…" for
 * 5 s after a typing.started event from staff, or until the staff message arrives.
 *
 * While the dialog waits for an operator, a line above the text box shows the customer's
 * place in line and the expected wait, or when a closed queue will answer (GET
 * /api/v1/widget/queue: a moment after the message is accepted, then every 15 s, until the
 * conversation.assigned or conversation.closed event).
 *
 * With the bot on for this widget (config "bot": true), while the dialog is with the bot (or
 * there is none yet) the widget suggests up to five questions once the customer has typed
 * 3+ letters (GET /api/v1/bot/suggest, 150 ms after the last key; an older answer never
 * replaces a newer one). Picking one (click, or arrows + Enter; Esc closes the list) sends
 * its title as the customer's message with its article_id, which the bot answers at once.
 * Under the newest bot message a "talk to a person" button POSTs /api/v1/widget/handoff.
 * Whether a person has the dialog comes from the conversation.* events (handed_off,
 * assigned, closed carry the dialog's status), the place-in-line answer, and the history
 * (an operator's or a system message).
 */
(() => {
  "use strict";

  const SCRIPT = document.currentScript || document.querySelector("script[data-widget-key]");
  if (!SCRIPT) return;
  if (window.okno && window.okno._state) return; // included twice: keep the first one

  const KEY = SCRIPT.getAttribute("data-widget-key") || "";
  const LANG = /^en/i.test(SCRIPT.getAttribute("data-lang") || "") ? "en" : "ru";
  const BASE = computeBase(SCRIPT);
  const WS_BASE = BASE.replace(/^http/i, "ws");
  const NS = "okno:" + KEY + ":";
  const HISTORY_PAGE = 200;
  // What okno accepts (it decides by content): pictures, PDF, voice messages, MP4 video.
  const ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf,.ogg,.oga,.opus,.mp3,.m4a,.mp4";

  function computeBase(script) {
    const explicit = script.getAttribute("data-api-base");
    if (explicit) return new URL(explicit, location.href).href.replace(/\/+$/, "");
    const u = new URL(script.src || location.href, location.href);
    let path = u.pathname.replace(/[^/]*$/, ""); // drop the file name
    path = path.replace(/\/static\/$/, "/"); // also served as /static/widget.js
    return (u.origin + path).replace(/\/+$/, "");
  }

  // ---------------------------------------------------------------- texts

  const TEXTS = {
    ru: {
      open: "Открыть чат",
      close: "Закрыть чат",
      title: "Чат с банком",
      placeholder: "Напишите сообщение…",
      send: "Отправить",
      attach: "Прикрепить файл",
      online: "в сети",
      offline: "нет связи",
      connecting: "подключение…",
      sending: "отправляется…",
      retrying: "нет связи, повторим…",
      sent: "отправлено",
      failed: "не отправлено",
      you: "Вы",
      operator: "Оператор",
      bot: "Бот",
      rateQ: "Оцените, пожалуйста, как мы вам помогли",
      rated: "Спасибо за оценку!",
      star: (n) => "Оценка " + n + " из 5",
      assigned: (n) => (n ? "Вам отвечает " + n : "К диалогу подключился специалист"),
      transferred: (n) =>
        n ? "Диалог передан, вам отвечает " + n : "Диалог передан другому специалисту",
      unread: (n) => "Непрочитанных сообщений: " + n,
      download: "Скачать",
      fileBlocked: "Файл не принят: антивирус обнаружил угрозу",
      fileChecking: "Файл проверяется антивирусом…",
      fileUnchecked: "Файл не удалось проверить, пришлите его, пожалуйста, ещё раз",
      unavailable: "Чат временно недоступен. Попробуйте позже.",
      sessionRetry: "Не удаётся подключиться к чату, повторяем попытку…",
      ratingFailed: "Не удалось отправить оценку",
      closeImage: "Закрыть изображение",
      messages: "Сообщения",
      staffTyping: "Оператор печатает…",
      suggestions: "Возможно, вы спрашиваете",
      shareLocation: "📍 Отправить местоположение",
      locating: "Определяем местоположение…",
      locationFailed: "Не удалось определить местоположение — напишите, пожалуйста, город или адрес",
      myLocation: "📍 Моё местоположение",
      meters: (n) => n + " м",
      km: (x) => x.toFixed(1).replace(".", ",") + " км",
      handoff: "Позвать оператора",
      handoffFailed: "Не удалось позвать оператора, попробуйте ещё раз",
      queuePlace: (n) => "Вы в очереди: " + n + "-й",
      queueWait: (s) =>
        s < 60 ? "ожидание меньше минуты"
          : s < 5400 ? "ожидание около " + Math.round(s / 60) + " мин"
            : "ожидание около " + Math.round(s / 3600) + " ч",
      queueOpens: (when) => "Ответим " + when,
      today: "сегодня",
      tomorrow: "завтра",
      on: "",
      at: " в ",
      kb: "КБ",
      mb: "МБ",
      // Server error codes (the English `detail` is the fallback for unknown ones).
      errors: {
        attachment_empty: () => "Файл пустой",
        attachment_too_large: (f) =>
          f && f.max_bytes ? "Файл больше " + fmtLimit(f.max_bytes) : "Файл слишком большой",
        request_too_large: () => "Файл слишком большой",
        attachment_type_not_allowed: () =>
          "Такой тип файла не принимается. Можно отправить изображение (PNG, JPEG, GIF, WebP), " +
          "PDF, голосовое сообщение (Ogg, MP3, M4A) или видео MP4",
        attachment_type_mismatch: () => "Содержимое файла не соответствует его расширению",
        empty_message: () => "Пустое сообщение",
        text_too_long: (f) =>
          f && f.max_chars
            ? "Сообщение длиннее " + f.max_chars + " символов"
            : "Сообщение слишком длинное",
        not_closed: () => "Оценить можно после завершения диалога",
        origin_not_allowed: () => "Чат недоступен на этом сайте",
        widget_disabled: () => "Чат временно отключён",
        too_many_requests: () => "Слишком много сообщений, подождите немного",
      },
    },
    en: {
      open: "Open chat",
      close: "Close chat",
      title: "Chat with the bank",
      placeholder: "Type a message…",
      send: "Send",
      attach: "Attach a file",
      online: "online",
      offline: "offline",
      connecting: "connecting…",
      sending: "sending…",
      retrying: "no connection, will retry…",
      sent: "sent",
      failed: "not sent",
      you: "You",
      operator: "Agent",
      bot: "Bot",
      rateQ: "Please rate how we helped you",
      rated: "Thank you for your rating!",
      star: (n) => "Rating " + n + " of 5",
      assigned: (n) => (n ? n + " is now helping you" : "An agent has joined"),
      transferred: (n) =>
        n ? "Transferred: " + n + " is now helping you" : "Transferred to another agent",
      unread: (n) => "Unread messages: " + n,
      download: "Download",
      fileBlocked: "File not accepted: the antivirus found a threat",
      fileChecking: "The file is being checked by the antivirus…",
      fileUnchecked: "The file could not be checked, please send it again",
      unavailable: "Chat is temporarily unavailable. Please try later.",
      sessionRetry: "Cannot connect to the chat, retrying…",
      ratingFailed: "Could not send the rating",
      closeImage: "Close image",
      messages: "Messages",
      staffTyping: "Agent is typing…",
      suggestions: "Maybe you are asking",
      shareLocation: "📍 Share my location",
      locating: "Finding your location…",
      locationFailed: "Could not get your location — please type your city or address",
      myLocation: "📍 My location",
      meters: (n) => n + " m",
      km: (x) => x.toFixed(1) + " km",
      handoff: "Talk to a person",
      handoffFailed: "Could not reach a person, please try again",
      queuePlace: (n) => "You are " + n + ordinal(n) + " in line",
      queueWait: (s) =>
        s < 60 ? "under a minute"
          : s < 5400 ? "about " + Math.round(s / 60) + " min"
            : "about " + Math.round(s / 3600) + " h",
      queueOpens: (when) => "We will answer " + when,
      today: "today",
      tomorrow: "tomorrow",
      on: "on ",
      at: " at ",
      kb: "KB",
      mb: "MB",
      errors: {},
    },
  };
  const T = TEXTS[LANG];

  function ordinal(n) {
    const tens = n % 100;
    if (tens >= 11 && tens <= 13) return "th";
    return { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  }

  // ---------------------------------------------------------------- storage

  const memStore = {};
  const store = {
    get(k) {
      try {
        return window.localStorage.getItem(NS + k);
      } catch (e) {
        return k in memStore ? memStore[k] : null;
      }
    },
    set(k, v) {
      try {
        window.localStorage.setItem(NS + k, v);
      } catch (e) {
        memStore[k] = v;
      }
    },
    del(k) {
      try {
        window.localStorage.removeItem(NS + k);
      } catch (e) {
        /* ignore */
      }
      delete memStore[k];
    },
    getJSON(k, dflt) {
      const v = store.get(k);
      if (v == null) return dflt;
      try {
        return JSON.parse(v);
      } catch (e) {
        return dflt;
      }
    },
    setJSON(k, v) {
      store.set(k, JSON.stringify(v));
    },
  };
  // ---------------------------------------------------------------- helpers

  function uuid() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === "function") {
        return window.crypto.randomUUID();
      }
    } catch (e) {
      /* insecure context */
    }
    const b = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  /** Create an element. Strings among the children become text nodes (never HTML). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.startsWith("on") && typeof v === "function") {
          el.addEventListener(k.slice(2), v);
        } else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) if (c != null && c !== false) el.append(c);
    return el;
  }

  /** Static icon markup (constants only, never user data). */
  function icon(svg) {
    const span = document.createElement("span");
    span.className = "icon";
    span.setAttribute("aria-hidden", "true");
    span.innerHTML = svg;
    return span;
  }
  const ICONS = {
    chat:
      '<svg viewBox="0 0 24 24" width="28" height="28" fill="currentColor"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>',
    close:
      '<svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"><path d="M6 6l12 12M18 6L6 18"/></svg>',
    send:
      '<svg viewBox="0 0 24 24" width="20" height="20" fill="currentColor"><path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg>',
    clip:
      '<svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9"/></svg>',
    file:
      '<svg viewBox="0 0 24 24" width="22" height="22" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"><path d="M14 3H6a1 1 0 0 0-1 1v16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8z"/><path d="M14 3v5h5"/></svg>',
  };

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    const now = new Date();
    const opts = { hour: "2-digit", minute: "2-digit" };
    const locale = LANG === "en" ? "en-GB" : "ru-RU";
    if (d.toDateString() !== now.toDateString()) {
      return d.toLocaleDateString(locale, { day: "numeric", month: "short" }) + ", " +
        d.toLocaleTimeString(locale, opts);
    }
    return d.toLocaleTimeString(locale, opts);
  }

  function fmtSize(n) {
    if (typeof n !== "number" || !isFinite(n)) return "";
    if (n < 1024 * 1024) return Math.max(1, Math.round(n / 1024)) + " " + T.kb;
    return (n / 1024 / 1024).toFixed(1).replace(/\.0$/, "") + " " + T.mb;
  }

  /** A size limit: never rounded up past what is allowed ("Файл больше 512 КБ", "… 1,5 МБ"). */
  function fmtLimit(n) {
    if (typeof n !== "number" || !isFinite(n) || n <= 0) return "";
    if (n < 1024 * 1024) return Math.max(1, Math.floor(n / 1024)) + " " + T.kb;
    const mb = Math.floor((n / 1024 / 1024) * 10) / 10;
    return String(mb).replace(".", LANG === "ru" ? "," : ".") + " " + T.mb;
  }

  function safeColor(c) {
    if (typeof c !== "string" || !c.trim()) return null;
    try {
      if (window.CSS && CSS.supports && !CSS.supports("color", c)) return null;
    } catch (e) {
      return null;
    }
    return /^[#a-zA-Z0-9(),.%\s-]+$/.test(c) ? c.trim() : null;
  }

  /** Black or white text, whichever reads better on the brand colour (hex colours only). */
  function contrastText(c) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c || "");
    if (!m) return "#ffffff";
    let hex = m[1];
    if (hex.length === 3) hex = hex.replace(/./g, "$&$&");
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map(
      (v) => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)),
    );
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return lum > 0.45 ? "#111827" : "#ffffff";
  }

  class HttpError extends Error {
    constructor(status, detail, code) {
      super(detail || "HTTP " + status);
      this.status = status;
      this.detail = detail;
      this.code = code;
    }
  }

  /** The reason from an error response: {"detail": str|list, "code", "fields"}. */
  async function readError(res) {
    let detail = "";
    let code = "";
    try {
      const body = await res.json();
      code = body && body.code ? String(body.code) : "";
      const local = code && T.errors[code];
      if (local) detail = local(body.fields || {});
      else if (body && typeof body.detail === "string") detail = body.detail;
      else if (body && Array.isArray(body.detail)) {
        detail = body.detail.map((d) => (d && d.msg) || "").filter(Boolean).join("; ");
      }
    } catch (e) {
      /* not JSON */
    }
    return { detail: detail || T.failed + " (" + res.status + ")", code };
  }

  // ---------------------------------------------------------------- who the customer is

  /** A token the bank's site signed for a signed-in customer (window.OknoWidget =
   *  { customerToken }): the session is then verified and follows the customer across
   *  devices. Read when a session opens, so a page may set it late. */
  function customerToken() {
    const cfg = window.OknoWidget;
    return cfg && typeof cfg.customerToken === "string" && cfg.customerToken ? cfg.customerToken : null;
  }

  /** Who the token names (its `sub`), to tell a stored session of someone else. */
  function tokenSubject(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(decodeURIComponent(escape(atob(part))));
      return claims && claims.sub != null ? String(claims.sub) : null;
    } catch (e) {
      return null;
    }
  }

  {
    // A stored session opened for nobody, or for another customer, is not this one's.
    const named = customerToken() ? tokenSubject(customerToken()) : null;
    if ((store.get("bank") || null) !== named) {
      store.del("token");
      if (named || store.get("bank")) store.del("visitor");
    }
  }

  // ---------------------------------------------------------------- state

  const state = {
    key: KEY,
    base: BASE,
    lang: LANG,
    token: store.get("token"),
    visitorId: store.get("visitor"),
    conversationId: null,
    widget: { name: "", greeting: "", info_message: "", color: "", bot: false },
    lastSeq: 0,
    historyLoaded: false,
    isOpen: false,
    status: "offline",
    unread: 0,
    items: new Map(), // key -> item (messages, pending messages, notices, rating blocks)
    byCmid: new Map(), // client_msg_id -> item
    fatal: "", // session cannot be created (unknown widget key, ...)
  };
  let orderCounter = 0;
  let ws = null;
  let wsTimer = null;
  let wsBackoff = 500;
  let wsFailures = 0;
  let resyncNeeded = false;
  let sessionPromise = null;
  let historyPromise = null;
  let startPromise = null;
  let startTimer = null;
  let startDelay = 1000;
  let pumping = false;
  let pumpTimer = null;
  let pumpDelay = 1000;
  const blobCache = new Map();
  // Typing signals sent, read marks sent, the staff typing indicator.
  const TYPING_EVERY = 2500; // ms; the server drops signals closer than 2 s apart
  const STAFF_TYPING_SHOWN = 5000; // ms the indicator stays after the last staff signal
  const READ_EVERY = 1000; // ms between read marks at most
  let typingSentAt = 0;
  let typingTimer = null;
  let staffTypingTimer = null;
  let readSent = 0;
  let readBusy = false;
  let readTimer = null;
  let readSentAt = 0;
  let readDelay = READ_EVERY;
  const rated = new Set(store.getJSON("rated", []).map(String));

  // ---------------------------------------------------------------- network

  function absUrl(path) {
    return /^https?:/i.test(path) ? path : BASE + (path.startsWith("/") ? "" : "/") + path;
  }

  /** fetch with the session bearer token; a 401 renews the session once and retries. */
  async function api(path, init) {
    init = init || {};
    for (let attempt = 0; ; attempt++) {
      await ensureSession();
      const token = state.token;
      const headers = new Headers(init.headers || {});
      headers.set("Authorization", "Bearer " + token);
      const res = await fetch(absUrl(path), Object.assign({}, init, { headers, credentials: "omit" }));
      if (res.status === 401 && attempt === 0) {
        await renewSession(token);
        continue;
      }
      return res;
    }
  }

  function ensureSession() {
    if (state.token) return Promise.resolve();
    if (!sessionPromise) {
      sessionPromise = createSession().finally(() => {
        sessionPromise = null;
      });
    }
    return sessionPromise;
  }

  async function createSession() {
    let res;
    let bankToken = customerToken();
    for (let attempt = 0; ; attempt++) {
      const body = { widget_key: KEY };
      if (state.visitorId) body.visitor = { id: state.visitorId };
      if (bankToken) body.customer_token = bankToken;
      res = await fetch(BASE + "/api/v1/widget/sessions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
      });
      if (res.ok) break;
      const err = await readError(res);
      if (bankToken && /^customer_token/.test(err.code || "")) {
        // the bank's token expired or is refused: chat on as an anonymous visitor
        bankToken = null;
        continue;
      }
      const clientError = res.status >= 400 && res.status < 500 &&
        res.status !== 408 && res.status !== 429;
      if (clientError && state.visitorId && attempt === 0 &&
          res.status !== 404 && res.status !== 403) {
        // The stored visitor id is not accepted any more: start as a new visitor.
        state.visitorId = null;
        store.del("visitor");
        continue;
      }
      if (clientError) {
        // unknown or disabled widget key, or a site the widget is not allowed on
        state.fatal = err.code && T.errors[err.code] ? err.detail : T.unavailable;
        renderBanner();
      }
      throw new HttpError(res.status, err.detail, err.code);
    }
    const data = await res.json();
    state.token = data.session_token;
    store.set("token", state.token);
    const named = bankToken ? tokenSubject(bankToken) : null;
    if (named) store.set("bank", named);
    else store.del("bank");
    if (data.visitor_id != null) {
      state.visitorId = String(data.visitor_id);
      store.set("visitor", state.visitorId);
    }
    if (data.conversation_id != null) state.conversationId = data.conversation_id;
    if (data.widget) applyWidget(data.widget);
    state.fatal = "";
    renderBanner();
    // A socket opened with an older token is stale now.
    if (ws) closeWs();
  }

  /** The server rejected `oldToken`: forget it and open a new session for the same visitor. */
  async function renewSession(oldToken) {
    if (state.token === oldToken) {
      state.token = null;
      store.del("token");
      // Same visitor, so the server returns the same customer; reload history to be sure.
      state.historyLoaded = false;
      resyncNeeded = true;
    }
    await ensureSession();
  }

  async function loadConfig() {
    try {
      const res = await fetch(
        BASE + "/api/v1/widget/config?key=" + encodeURIComponent(KEY),
        { credentials: "omit" },
      );
      if (res.ok) applyWidget(await res.json());
      else if (res.status === 404) {
        state.fatal = T.unavailable;
        renderBanner();
      }
    } catch (e) {
      /* offline: defaults stay */
    }
  }

  function loadHistory() {
    if (!historyPromise) {
      historyPromise = doLoadHistory().finally(() => {
        historyPromise = null;
      });
    }
    return historyPromise;
  }

  async function doLoadHistory() {
    let after = 0;
    let headSeq = 0;
    for (let guard = 0; guard < 1000; guard++) {
      const res = await api(
        "/api/v1/widget/messages?after_seq=" + after + "&limit=" + HISTORY_PAGE,
      );
      if (!res.ok) {
        const err = await readError(res);
        throw new HttpError(res.status, err.detail, err.code);
      }
      const data = await res.json();
      const msgs = Array.isArray(data.messages) ? data.messages : [];
      let advanced = false;
      for (const m of msgs) {
        upsertMessage(m, false);
        if (typeof m.seq === "number" && m.seq > after) {
          after = m.seq;
          advanced = true;
        }
      }
      if (typeof data.last_seq === "number" && data.last_seq > headSeq) headSeq = data.last_seq;
      if (msgs.length < HISTORY_PAGE || !advanced) break;
    }
    state.lastSeq = Math.max(state.lastSeq, after, headSeq);
    state.historyLoaded = true;
    render();
  }

  // ---------------------------------------------------------------- bring-up

  /** Session → history → realtime → outbox. Idempotent; retries itself on failure. */
  function start() {
    if (!startPromise) {
      startPromise = doStart().finally(() => {
        startPromise = null;
      });
    }
    return startPromise;
  }

  async function doStart() {
    clearTimeout(startTimer);
    startTimer = null;
    if (state.status !== "online") setStatus("connecting");
    try {
      await ensureSession();
      if (!state.historyLoaded) await loadHistory();
      startDelay = 1000;
      connectWs();
      pump();
      if (!line.checkedOnStart) {
        // Back on the page while the dialog waits: show the place in line again.
        line.checkedOnStart = true;
        if (hasCustomerMessages()) watchQueue(0);
      }
    } catch (e) {
      setStatus("offline");
      if (state.fatal) return; // unknown widget or site not allowed: nothing to retry
      startTimer = setTimeout(start, startDelay);
      startDelay = Math.min(startDelay * 2, 30000);
    }
  }

  function hasCustomerMessages() {
    for (const item of state.items.values()) {
      if (item.kind === "message" && item.msg && item.msg.author_kind === "customer") return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- realtime

  function setStatus(s) {
    state.status = s;
    if (!ui) return;
    ui.status.setAttribute("data-state", s);
    ui.statusText.textContent = T[s] || s;
  }

  function closeWs(delay) {
    if (!ws) return;
    const old = ws;
    ws = null;
    try {
      old.close(1000); // its onclose sees it is no longer current and only cleans up
    } catch (e) {
      /* ignore */
    }
    setStatus("offline");
    scheduleWs(delay || 0);
  }

  function scheduleWs(delay) {
    if (wsTimer) return;
    wsTimer = setTimeout(() => {
      wsTimer = null;
      connectWs();
    }, delay);
  }

  async function connectWs() {
    if (ws || !state.token) return;
    if (wsTimer) {
      clearTimeout(wsTimer);
      wsTimer = null;
    }
    if (resyncNeeded || !state.historyLoaded) {
      // Events were pruned or the session changed: the history is the truth, start from it.
      resyncNeeded = false;
      try {
        await loadHistory();
      } catch (e) {
        resyncNeeded = true;
        setStatus("offline");
        scheduleWs(nextWsDelay());
        return;
      }
      if (ws) return;
    }
    setStatus("connecting");
    const token = state.token;
    // Ask from a little before the newest event seen: live events can arrive out of order
    // (they are numbered at commit, published after it), so one just below the newest may
    // still be missing. What comes twice is dropped by seq in handleEnvelope.
    const url = WS_BASE + "/api/v1/widget/ws?token=" + encodeURIComponent(token) +
      "&after_seq=" + Math.max(0, state.lastSeq - LOOKBACK);
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      setStatus("offline");
      scheduleWs(nextWsDelay());
      return;
    }
    ws = sock;
    let opened = false;
    let pongTimer = null;
    const pinger = setInterval(() => {
      if (sock.readyState !== 1) return;
      try {
        sock.send("ping");
      } catch (e) {
        return;
      }
      clearTimeout(pongTimer);
      // A half-open connection never answers: drop it and reconnect with catch-up.
      pongTimer = setTimeout(() => {
        try {
          sock.close(4000, "no pong");
        } catch (e) {
          /* ignore */
        }
      }, 10000);
    }, 25000);
    sock.onopen = () => {
      opened = true;
      wsFailures = 0;
      wsBackoff = 500;
      pumpNow();
    };
    sock.onmessage = (ev) => {
      clearTimeout(pongTimer);
      let env;
      try {
        env = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (env && typeof env === "object") handleEnvelope(env, token);
    };
    sock.onerror = () => {
      /* onclose follows */
    };
    sock.onclose = (ev) => {
      clearInterval(pinger);
      clearTimeout(pongTimer);
      if (ws !== sock) return;
      ws = null;
      setStatus("offline");
      if (!opened) wsFailures++;
      if (ev.code === 4401 || ev.code === 4001 || ev.code === 4003 || wsFailures >= 3) {
        // Maybe the token is no longer valid: a cheap authenticated request finds out and
        // renews the session on 401.
        wsFailures = 0;
        resyncNeeded = true;
        state.historyLoaded = false;
      }
      scheduleWs(nextWsDelay());
    };
  }

  const LOOKBACK = 200;
  const seenSeqs = new Set();

  function nextWsDelay() {
    const d = wsBackoff;
    wsBackoff = Math.min(wsBackoff * 2, 10000);
    return d + Math.floor(Math.random() * 200);
  }

  function handleEnvelope(env, token) {
    if (typeof env.seq === "number") {
      if (seenSeqs.has(env.seq)) return;
      seenSeqs.add(env.seq);
      if (seenSeqs.size > 4 * LOOKBACK) seenSeqs.delete(seenSeqs.values().next().value);
      if (env.seq > state.lastSeq) state.lastSeq = env.seq;
    }
    const p = env.payload || {};
    if (typeof env.type === "string" && env.type.indexOf("conversation.") === 0 &&
        p.conversation && typeof p.conversation.status === "string") {
      // handed_off, assigned, closed, ...: they carry the dialog's status
      const conv = p.conversation.id != null ? p.conversation.id : env.conversation_id;
      noteDialog(conv, p.conversation.status, env.seq);
    }
    switch (env.type) {
      case "message.created":
        if (p.message) {
          upsertMessage(p.message, true);
          if (p.message.author_kind && p.message.author_kind !== "customer") hideStaffTyping();
        }
        break;
      case "attachment.scanned": {
        // the antivirus decided on a file shown as "being checked"
        const item = state.items.get("m:" + p.message_id);
        if (item && item.msg && Array.isArray(item.msg.attachments) && Array.isArray(p.attachments)) {
          const verdicts = new Map(p.attachments.map((a) => [a.id, a]));
          item.msg = {
            ...item.msg,
            attachments: item.msg.attachments.map((a) => (verdicts.has(a.id) ? { ...a, ...verdicts.get(a.id) } : a)),
          };
          item.dirty = true;
        }
        break;
      }
      case "typing.started":
        // Only staff typing reaches the widget; never show the customer's own.
        if (p.who !== "customer") showStaffTyping();
        return; // nothing in the list changed
      case "conversation.closed": {
        hideStaffTyping();
        const conv = p.conversation || {};
        queueEnded(conv.id != null ? conv.id : env.conversation_id, false);
        showRating(conv.id != null ? conv.id : env.conversation_id, env.seq);
        break;
      }
      case "conversation.assigned":
      case "conversation.transferred": {
        const conv = p.conversation || {};
        const who = conv.assignee && conv.assignee.name ? conv.assignee.name : "";
        if (env.type === "conversation.assigned") {
          queueEnded(conv.id != null ? conv.id : env.conversation_id, true);
        }
        if (env.type === "conversation.assigned" && !who) break;
        addNotice(env.seq, env.type === "conversation.assigned" ? T.assigned(who) : T.transferred(who));
        break;
      }
      case "conversation.handed_off": {
        // The bot gave the dialog to a person: show the place in line.
        const conv = p.conversation || {};
        const id = conv.id != null ? conv.id : env.conversation_id;
        if (id != null && id === currentConversation()) watchQueue();
        break;
      }
      case "widget.updated":
        // The bank changed the greeting, info message, name or colour: show it at once.
        applyWidget(p.widget);
        break;
      case "stream.ready":
        if (typeof p.last_seq === "number" && p.last_seq > state.lastSeq) state.lastSeq = p.last_seq;
        setStatus("online");
        break;
      case "stream.error":
        if (p.code === "events_pruned") {
          resyncNeeded = true;
          closeWs(nextWsDelay());
        } else if (p.code === "unauthorized" || p.code === "token_invalid" || p.code === "token_expired") {
          const old = ws;
          ws = null;
          try {
            if (old) old.close(1000);
          } catch (e) {
            /* ignore */
          }
          renewSession(token).then(
            () => connectWs(),
            () => scheduleWs(nextWsDelay()),
          );
        }
        break;
      default:
        break;
    }
    render();
  }

  // ---------------------------------------------------------------- messages

  function messageSortSeq(m) {
    if (typeof m.seq === "number") return m.seq;
    return 1e15 + (typeof m.id === "number" ? m.id : 0);
  }

  /** Add or update a server message; merges with a pending one of the same client_msg_id. */
  function upsertMessage(m, live) {
    if (!m || m.internal === true || m.id == null) return null;
    const key = "m:" + m.id;
    let item = state.items.get(key);
    const pend = m.client_msg_id ? state.byCmid.get(m.client_msg_id) : null;
    if (pend && pend !== item && pend.pending) {
      if (item) {
        // Already shown (from the socket); drop the pending copy.
        removeItem(pend);
      } else {
        state.items.delete(pend.key);
        pend.key = key;
        item = pend;
        state.items.set(key, item);
      }
      outboxRemove(m.client_msg_id);
    }
    const isNew = !item;
    if (!item) {
      item = { key, kind: "message", order: ++orderCounter };
      state.items.set(key, item);
    }
    item.msg = m;
    item.pending = false;
    item.error = null;
    item.file = null;
    item.sortSeq = messageSortSeq(m);
    item.dirty = true;
    if (m.client_msg_id) state.byCmid.set(m.client_msg_id, item);
    if (isNew && live && m.author_kind !== "customer") {
      if (!state.isOpen || document.hidden) {
        state.unread++;
        renderUnread();
      }
      item.scrollTo = true;
    }
    return item;
  }

  function removeItem(item) {
    state.items.delete(item.key);
    if (item.el && item.el.parentNode) item.el.parentNode.removeChild(item.el);
  }

  function addNotice(seq, text) {
    const key = "n:" + (seq != null ? seq : ++orderCounter);
    if (state.items.has(key)) return;
    state.items.set(key, {
      key,
      kind: "notice",
      text,
      sortSeq: typeof seq === "number" ? seq : state.lastSeq + 0.5,
      order: ++orderCounter,
      dirty: true,
    });
  }

  function showRating(convId, seq) {
    if (convId == null || rated.has(String(convId))) return;
    const key = "r:" + convId;
    if (state.items.has(key)) return;
    const sortSeq = typeof seq === "number" ? seq : state.lastSeq + 0.5;
    state.items.set(key, {
      key,
      kind: "rating",
      convId,
      sortSeq,
      order: ++orderCounter,
      dirty: true,
      scrollTo: true,
    });
    store.setJSON("rate", { conversation_id: convId, seq: sortSeq });
  }

  async function submitRating(item, score) {
    if (item.busy || item.done) return;
    item.busy = true;
    item.score = score;
    item.ratingError = "";
    item.dirty = true;
    render();
    try {
      const res = await api("/api/v1/widget/rating", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ conversation_id: item.convId, score }),
      });
      const err = res.ok ? null : await readError(res);
      if (res.ok || (err && err.code === "already_rated")) {
        item.done = true;
        rated.add(String(item.convId));
        store.setJSON("rated", Array.from(rated).slice(-50));
        store.del("rate");
      } else {
        item.ratingError = err.detail;
      }
    } catch (e) {
      item.ratingError = T.ratingFailed;
    }
    item.busy = false;
    item.dirty = true;
    render();
  }

  // ---------------------------------------------------------------- sending (outbox)

  function outboxLoad() {
    const list = store.getJSON("outbox", []);
    return Array.isArray(list) ? list : [];
  }

  function outboxSave() {
    const list = [];
    for (const item of sortedItems()) {
      if (item.kind === "message" && item.pending && !item.error && !item.file) {
        const o = { client_msg_id: item.cmid, text: item.text, created_at: item.createdAt };
        if (item.extra) o.extra = item.extra;
        list.push(o);
      }
    }
    if (list.length) store.setJSON("outbox", list);
    else store.del("outbox");
  }

  function outboxRemove(cmid) {
    const list = outboxLoad();
    const rest = list.filter((x) => x.client_msg_id !== cmid);
    if (rest.length !== list.length) {
      if (rest.length) store.setJSON("outbox", rest);
      else store.del("outbox");
    }
  }

  /** extra: what the bot needs besides the text ({article_id} of a picked suggestion,
   *  {suggested} when suggestions were on screen, {button} pressed, {location} shared). */
  function addPending(cmid, text, file, createdAt, extra) {
    const key = "p:" + cmid;
    const item = {
      key,
      kind: "message",
      pending: true,
      cmid,
      text: text || "",
      file: file || null,
      extra: extra && Object.keys(extra).length ? extra : null,
      createdAt: createdAt || new Date().toISOString(),
      order: ++orderCounter,
      sortSeq: Infinity,
      attempts: 0,
      dirty: true,
      scrollTo: true,
    };
    state.items.set(key, item);
    state.byCmid.set(cmid, item);
    return item;
  }

  function sendText(text, extra) {
    text = (text || "").replace(/\s+$/, "").replace(/^\s*\n/, "");
    if (!text.trim()) return null;
    const item = addPending(uuid(), text, null, null, extra);
    outboxSave();
    render();
    pumpNow();
    return item;
  }

  function sendFile(file, caption) {
    if (!file) return null;
    const item = addPending(uuid(), caption || "", file);
    render();
    pumpNow();
    return item;
  }

  function pumpNow() {
    clearTimeout(pumpTimer);
    pumpTimer = null;
    pumpDelay = 1000;
    pump();
  }

  function nextPending() {
    for (const item of sortedItems()) {
      if (item.kind === "message" && item.pending && !item.error) return item;
    }
    return null;
  }

  /** Deliver pending messages one at a time, in order, each with its own client_msg_id. */
  async function pump() {
    if (pumping || pumpTimer) return;
    pumping = true;
    let retryIn = 0;
    try {
      for (;;) {
        const item = nextPending();
        if (!item) break;
        let res;
        try {
          res = await deliver(item);
        } catch (e) {
          // Network error (or no session could be opened): retry with the same id later.
          if (state.fatal) break; // the widget itself is unavailable; keep the outbox
          item.attempts++;
          item.dirty = true;
          retryIn = pumpDelay;
          break;
        }
        if (res.ok) {
          let data = null;
          try {
            data = await res.json();
          } catch (e) {
            /* empty body */
          }
          const m = data && (data.message || (data.id != null ? data : null));
          if (m) {
            if (!m.client_msg_id) m.client_msg_id = item.cmid;
            upsertMessage(m, false);
          }
          if (item.pending) {
            // Acknowledged but no message in the body: keep it as sent.
            item.pending = false;
            item.dirty = true;
            outboxRemove(item.cmid);
          }
          watchQueue(); // the dialog may be waiting for an operator now
          pumpDelay = 1000;
          render();
          continue;
        }
        if (res.status >= 500 || res.status === 408 || res.status === 429) {
          item.attempts++;
          item.dirty = true;
          const ra = parseInt(res.headers.get("Retry-After") || "", 10);
          retryIn = isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 60000) : pumpDelay;
          break;
        }
        failItem(item, (await readError(res)).detail);
      }
    } finally {
      pumping = false;
    }
    render();
    if (retryIn) {
      pumpTimer = setTimeout(() => {
        pumpTimer = null;
        pump();
      }, retryIn);
      pumpDelay = Math.min(pumpDelay * 2, 30000);
    }
  }

  function failItem(item, detail) {
    item.error = detail || T.failed;
    item.dirty = true;
    outboxRemove(item.cmid);
    render();
  }

  function deliver(item) {
    if (item.file) {
      const form = new FormData();
      form.append("file", item.file, item.file.name || "file");
      form.append("client_msg_id", item.cmid);
      if (item.text) form.append("text", item.text);
      return api("/api/v1/widget/attachments", { method: "POST", body: form });
    }
    const body = Object.assign({}, item.extra || {}, { client_msg_id: item.cmid, text: item.text });
    return api("/api/v1/widget/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // ---------------------------------------------------------------- typing and read marks

  /** The customer typed: tell staff over the socket, throttled, never for an empty box.
   *  A signal due while the throttle holds is sent when it ends, if the box still has text. */
  function noteTyping() {
    if (!ui.input.value.trim() || typingTimer) return; // a pending signal covers this key
    const wait = typingSentAt + TYPING_EVERY - Date.now();
    if (wait <= 0) sendTyping();
    else {
      typingTimer = setTimeout(() => {
        typingTimer = null;
        if (ui.input.value.trim()) sendTyping();
      }, wait);
    }
  }

  function sendTyping() {
    if (!ws || ws.readyState !== 1) return; // only a hint: nothing is queued for later
    try {
      ws.send('{"type":"typing"}');
      typingSentAt = Date.now();
    } catch (e) {
      /* the socket is closing; onclose reconnects */
    }
  }

  function showStaffTyping() {
    if (!ui) return;
    ui.typing.hidden = false;
    clearTimeout(staffTypingTimer);
    staffTypingTimer = setTimeout(hideStaffTyping, STAFF_TYPING_SHOWN);
  }

  function hideStaffTyping() {
    clearTimeout(staffTypingTimer);
    staffTypingTimer = null;
    if (ui) ui.typing.hidden = true;
  }

  function pageVisible() {
    return document.visibilityState === "visible";
  }

  /** The newest seq of a staff (operator, bot, system) message in the newest dialog shown.
   *  The server marks the open dialog, so messages of earlier dialogs do not count. */
  function readCandidate() {
    let newest = -1;
    let conv;
    for (const item of state.items.values()) {
      const m = item.msg;
      if (item.kind === "message" && m && typeof m.seq === "number" && m.seq > newest) {
        newest = m.seq;
        conv = m.conversation_id;
      }
    }
    let best = 0;
    for (const item of state.items.values()) {
      const m = item.msg;
      if (item.kind !== "message" || !m || typeof m.seq !== "number" || !item.el) continue;
      if (m.author_kind === "customer" || m.conversation_id !== conv) continue;
      if (m.seq > best) best = m.seq;
    }
    return best;
  }

  /** Send a read mark when the customer can see something newer than the last one sent:
   *  the panel open, the tab visible, at most once per READ_EVERY. */
  function scheduleRead() {
    if (!ui || !state.isOpen || !pageVisible() || readBusy || readTimer) return;
    const seq = readCandidate();
    if (seq <= readSent) return;
    const wait = readSentAt + readDelay - Date.now();
    if (wait > 0) {
      readTimer = setTimeout(() => {
        readTimer = null;
        scheduleRead();
      }, wait);
      return;
    }
    sendRead(seq);
  }

  async function sendRead(seq) {
    readBusy = true;
    readSentAt = Date.now();
    try {
      const res = await api("/api/v1/widget/read", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ up_to_seq: seq }),
      });
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      if (!retry) {
        // Done (or refused for good: asking again would not help).
        readSent = Math.max(readSent, seq);
        readDelay = READ_EVERY;
      } else readDelay = Math.min(readDelay * 2, 30000);
    } catch (e) {
      readDelay = Math.min(readDelay * 2, 30000); // offline: try again later
    }
    readBusy = false;
    scheduleRead();
  }

  // ---------------------------------------------------------------- place in line

  // While the customer's dialog waits for an operator the widget shows their place in line
  // and the expected wait (or, when the queue is closed, when the answer will come). It asks
  // GET /api/v1/widget/queue a moment after a message of theirs is accepted (routing places
  // a new dialog right after it is stored), then every 15 s; it stops when the dialog is
  // assigned or closed (events), or when the server says three times in a row that nothing
  // of theirs is waiting (the dialog was already with an operator).
  const QUEUE_FIRST = 1000;
  const QUEUE_EVERY = 15000;
  const QUEUE_RECHECK = 3000;
  const QUEUE_MISSES = 3;
  const line = {
    active: false, timer: null, busy: false, misses: 0, info: null,
    served: null, // the dialog an operator took (its events need no more polling)
    checkedOnStart: false,
  };

  /** The dialog the customer is in now: the one of the newest message. */
  function currentConversation() {
    let newest = -1;
    let conv = state.conversationId;
    for (const item of state.items.values()) {
      const m = item.msg;
      if (item.kind === "message" && m && typeof m.seq === "number" && m.seq > newest) {
        newest = m.seq;
        conv = m.conversation_id;
      }
    }
    return conv;
  }

  function watchQueue(delay) {
    if (line.active) return;
    if (line.served != null && line.served === currentConversation()) return;
    line.active = true;
    line.misses = 0;
    scheduleQueue(delay == null ? QUEUE_FIRST : delay);
  }

  function scheduleQueue(delay) {
    clearTimeout(line.timer);
    line.timer = setTimeout(checkQueue, delay);
  }

  function stopQueue() {
    line.active = false;
    clearTimeout(line.timer);
    line.timer = null;
    line.info = null;
    renderQueue();
  }

  /** An event says this dialog has an operator now, or is over: no line any more. */
  function queueEnded(convId, served) {
    const current = currentConversation();
    if (convId != null && current != null && convId !== current) return; // an older dialog
    line.served = served ? (convId != null ? convId : current) : null;
    stopQueue();
  }

  async function checkQueue() {
    line.timer = null;
    if (!line.active || line.busy) return;
    line.busy = true;
    let info = null;
    let ok = false;
    try {
      const res = await api("/api/v1/widget/queue");
      if (res.ok) {
        info = await res.json();
        ok = true;
      }
    } catch (e) {
      /* offline: ask again later */
    }
    line.busy = false;
    if (!line.active) return; // assigned or closed meanwhile
    if (!ok) {
      scheduleQueue(QUEUE_EVERY);
      return;
    }
    const waiting = !!info && (info.position != null || !!info.opens_at);
    if (waiting) noteDialog(currentConversation(), "waiting");
    line.info = waiting ? info : null;
    renderQueue();
    if (waiting) line.misses = 0;
    else if (++line.misses >= QUEUE_MISSES) {
      stopQueue();
      return;
    }
    scheduleQueue(waiting ? QUEUE_EVERY : QUEUE_RECHECK);
  }

  /** "сегодня в 09:00", "завтра в 09:00", "12 января в 09:00" in the customer's time. */
  function fmtWhen(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    const locale = LANG === "en" ? "en-GB" : "ru-RU";
    const time = d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    const midnight = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const days = Math.round((midnight(d) - midnight(new Date())) / 86400000);
    if (days <= 0) return T.today + T.at + time;
    if (days === 1) return T.tomorrow + T.at + time;
    return T.on + d.toLocaleDateString(locale, { day: "numeric", month: "long" }) + T.at + time;
  }

  function renderQueue() {
    if (!ui) return;
    const info = line.info;
    let text = "";
    const when = info && info.opens_at ? fmtWhen(info.opens_at) : "";
    if (when) text = T.queueOpens(when);
    if (!text && info && info.position != null) {
      text = T.queuePlace(info.position);
      if (info.expected_wait_seconds != null) text += " · " + T.queueWait(info.expected_wait_seconds);
    }
    ui.queue.textContent = text;
    ui.queue.hidden = !text;
    if (info && info.position != null) ui.queue.setAttribute("data-position", String(info.position));
    else ui.queue.removeAttribute("data-position");
    if (info && info.opens_at) ui.queue.setAttribute("data-closed", "1");
    else ui.queue.removeAttribute("data-closed");
  }

  // ---------------------------------------------------------------- the bot

  // Whether the customer's current dialog is with the bot. The widget's config says whether
  // the bot serves new dialogs at all; conversation.* events carry the dialog's status; the
  // place-in-line answer says it waits for a person; and in the history an operator's or a
  // system message (the bot's "passing you to a specialist", out-of-hours) means a person
  // has it or it waits for one. When nothing says otherwise the bot is assumed.
  const dialog = { known: new Map() }; // conversation id -> {status, seq}

  function noteDialog(convId, status, seq) {
    if (convId == null || typeof status !== "string") return;
    const at = typeof seq === "number" ? seq : state.lastSeq + 0.5;
    const prev = dialog.known.get(convId);
    if (prev && prev.seq > at) return; // an older event replayed after a newer one
    dialog.known.set(convId, { status, seq: at });
  }

  /** "none" (no dialog yet, or the last one is over: the next message starts a new one with
   *  the bot), "bot", or "person" (an operator has it or it waits for one). */
  function dialogStatus() {
    const conv = currentConversation();
    if (conv == null) return "none";
    // Closed (the rating was offered; a rated dialog was closed for good).
    const rating = state.items.get("r:" + conv);
    const closedSeq = rated.has(String(conv)) ? Infinity : rating ? rating.sortSeq : -1;
    let personSeq = -1;
    for (const item of state.items.values()) {
      const m = item.msg;
      if (item.kind !== "message" || !m || m.conversation_id !== conv) continue;
      if ((m.author_kind === "operator" || m.author_kind === "system") && typeof m.seq === "number") {
        personSeq = Math.max(personSeq, m.seq);
      }
    }
    const known = dialog.known.get(conv);
    if (closedSeq >= 0 && closedSeq >= personSeq && (!known || closedSeq >= known.seq)) {
      return "none"; // the next message starts a new dialog (staff may reopen this one)
    }
    if (known && known.seq >= personSeq) {
      if (known.status === "closed") return "none";
      return known.status === "bot" ? "bot" : "person";
    }
    return personSeq >= 0 ? "person" : "bot";
  }

  /** The bot would answer what the customer writes now. */
  function botServes() {
    return !!state.widget.bot && dialogStatus() !== "person";
  }

  /** The newest bot message of the current dialog while the bot has it (the hand-off button
   *  goes under it), else null. */
  function handoffTarget() {
    if (!state.widget.bot || dialogStatus() !== "bot") return null;
    const conv = currentConversation();
    let best = null;
    for (const item of state.items.values()) {
      const m = item.msg;
      if (item.kind !== "message" || !m || m.author_kind !== "bot" || m.conversation_id !== conv) continue;
      if (typeof m.seq === "number" && (!best || m.seq > best.msg.seq)) best = item;
    }
    return best;
  }

  const handoff = { busy: false, error: "" };

  function renderBot() {
    if (!ui) return;
    const target = handoffTarget();
    const box = ui.handoffBox;
    if (target && target.el) {
      if (box.parentNode !== target.el) {
        handoff.error = "";
        target.el.append(box);
      }
      ui.handoff.disabled = handoff.busy;
      ui.handoffError.textContent = handoff.error;
      ui.handoffError.hidden = !handoff.error;
    } else if (box.parentNode) {
      box.parentNode.removeChild(box);
    }
    if (!botServes()) hideSuggestions();
  }

  /** "Talk to a person": the dialog leaves the bot for an operator's queue. */
  async function askForPerson() {
    if (handoff.busy) return;
    const conv = currentConversation();
    handoff.busy = true;
    handoff.error = "";
    renderBot();
    try {
      const res = await api("/api/v1/widget/handoff", { method: "POST" });
      if (res.ok) {
        noteDialog(conv, "waiting");
        watchQueue();
      } else handoff.error = T.handoffFailed;
    } catch (e) {
      handoff.error = T.handoffFailed;
    }
    handoff.busy = false;
    render();
  }

  // Question suggestions while the customer types: after 3+ letters and 150 ms without a
  // key, GET /api/v1/bot/suggest; each request gets a number and only the answer to the
  // newest one is shown. No session, a 401 or any failure: quietly no list.
  const SUGGEST_MIN_LETTERS = 3;
  const SUGGEST_DELAY = 150;
  const SUGGEST_LIMIT = 5;
  const sug = { timer: null, req: 0, ctrl: null, items: [], active: -1 };
  let LETTER = /[a-zа-яё]/gi;
  try {
    LETTER = new RegExp("\\p{L}", "gu");
  } catch (e) {
    /* an old browser: Latin and Cyrillic letters */
  }

  function letterCount(text) {
    const m = text.match(LETTER);
    return m ? m.length : 0;
  }

  function suggestionsOpen() {
    return !!ui && !ui.suggest.hidden && sug.items.length > 0;
  }

  /** Forget the list and anything asked for it (an answer still on its way is dropped). */
  function hideSuggestions() {
    clearTimeout(sug.timer);
    sug.timer = null;
    sug.req++;
    if (sug.ctrl) {
      try {
        sug.ctrl.abort();
      } catch (e) {
        /* ignore */
      }
      sug.ctrl = null;
    }
    if (!ui || (ui.suggest.hidden && !sug.items.length)) return;
    sug.items = [];
    sug.active = -1;
    ui.suggestList.textContent = "";
    ui.suggest.hidden = true;
    ui.input.setAttribute("aria-expanded", "false");
    ui.input.removeAttribute("aria-activedescendant");
  }

  /** The text in the box changed. */
  function noteInputForSuggestions() {
    const q = ui.input.value.trim();
    if (!botServes() || letterCount(q) < SUGGEST_MIN_LETTERS) {
      hideSuggestions();
      return;
    }
    clearTimeout(sug.timer);
    sug.req++; // what was asked for the older text is stale now (the old list stays shown)
    sug.timer = setTimeout(() => {
      sug.timer = null;
      fetchSuggestions(q);
    }, SUGGEST_DELAY);
  }

  async function fetchSuggestions(q) {
    let id = ++sug.req;
    if (!state.token && sessionPromise) {
      // the session the widget opens with the window is on its way
      try {
        await sessionPromise;
      } catch (e) {
        /* no session: no list */
      }
      if (id !== sug.req) return;
      id = ++sug.req;
    }
    const token = state.token;
    if (!token) {
      hideSuggestions();
      return;
    }
    if (sug.ctrl) {
      try {
        sug.ctrl.abort();
      } catch (e) {
        /* ignore */
      }
    }
    let ctrl = null;
    try {
      ctrl = new AbortController();
    } catch (e) {
      /* no AbortController: the request number alone drops stale answers */
    }
    sug.ctrl = ctrl;
    let list = null;
    try {
      const res = await fetch(
        absUrl("/api/v1/bot/suggest?q=" + encodeURIComponent(q) + "&limit=" + SUGGEST_LIMIT),
        {
          headers: { Authorization: "Bearer " + token },
          credentials: "omit",
          signal: ctrl ? ctrl.signal : undefined,
        },
      );
      if (res.ok) {
        const data = await res.json();
        list = data && Array.isArray(data.suggestions) ? data.suggestions : [];
      }
    } catch (e) {
      /* offline or aborted */
    }
    if (id !== sug.req) return; // a newer request was made (or the list was closed)
    if (sug.ctrl === ctrl) sug.ctrl = null;
    if (!list || !botServes()) {
      hideSuggestions();
      return;
    }
    showSuggestions(
      list
        .filter((s) => s && typeof s.title === "string" && s.title && typeof s.article_id === "string")
        .slice(0, SUGGEST_LIMIT),
    );
  }

  function showSuggestions(list) {
    if (!ui) return;
    if (!list.length) {
      hideSuggestions();
      return;
    }
    sug.items = list;
    sug.active = -1;
    ui.suggestList.textContent = "";
    list.forEach((s, i) => {
      const li = h("li", {
        class: "sug",
        role: "option",
        id: "okno-sug-" + i,
        "data-okno": "suggestion",
        "data-article-id": s.article_id,
        "aria-selected": "false",
      }, s.title); // a text node: a title is never HTML
      li.addEventListener("mousedown", (e) => e.preventDefault()); // the box keeps the focus
      li.addEventListener("click", () => pickSuggestion(i));
      ui.suggestList.append(li);
    });
    ui.suggest.hidden = false;
    ui.input.setAttribute("aria-expanded", "true");
    ui.input.removeAttribute("aria-activedescendant");
  }

  function setActiveSuggestion(i) {
    const n = sug.items.length;
    if (!n) return;
    sug.active = ((i % n) + n) % n;
    const options = ui.suggestList.children;
    for (let k = 0; k < options.length; k++) {
      options[k].setAttribute("aria-selected", k === sug.active ? "true" : "false");
    }
    const el = options[sug.active];
    if (el) {
      ui.input.setAttribute("aria-activedescendant", el.id);
      if (el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
    }
  }

  /** The customer picked a suggested question: it goes as their message, the bot answers
   *  the article at once. */
  function pickSuggestion(i) {
    const s = sug.items[i];
    if (!s) return;
    hideSuggestions();
    ui.input.value = "";
    autoGrow();
    ui.send.disabled = true;
    sendText(s.title, { article_id: s.article_id, suggested: true });
    ui.input.focus();
  }

  /** Keys in the text box while the list is open; true when the key was used here. */
  function suggestionKey(e) {
    if (!suggestionsOpen() || e.isComposing) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActiveSuggestion(sug.active < 0 ? (step > 0 ? 0 : -1) : sug.active + step);
      return true;
    }
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // closes the list, not the chat window
      hideSuggestions();
      return true;
    }
    if (e.key === "Enter" && !e.shiftKey && sug.active >= 0) {
      e.preventDefault();
      pickSuggestion(sug.active);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- attachments

  function blobUrl(url) {
    if (!blobCache.has(url)) {
      const p = api(url).then((res) => {
        if (!res.ok) throw new HttpError(res.status);
        return res.blob();
      }).then((b) => URL.createObjectURL(b));
      p.catch(() => blobCache.delete(url));
      blobCache.set(url, p);
    }
    return blobCache.get(url);
  }

  function renderAttachment(att, localFile) {
    const note = { blocked: T.fileBlocked, failed: T.fileUnchecked, pending: T.fileChecking }[att.scan_status];
    if (note) {
      // never offered for download: okno refuses it until (unless) the antivirus clears it
      return h(
        "div",
        { class: "att-file att-held", "data-okno": "attachment", "data-kind": att.scan_status },
        icon(ICONS.file),
        h("span", { class: "att-name", text: att.filename || "file" }),
        h("span", { class: "att-note", text: note }),
      );
    }
    const isImage = /^image\//i.test(att.content_type || (localFile && localFile.type) || "");
    const name = att.filename || (localFile && localFile.name) || "file";
    if (isImage) {
      const img = h("img", { alt: name, class: "att-img", loading: "lazy" });
      const btn = h("button", {
        type: "button",
        class: "att-thumb",
        "data-okno": "attachment",
        "data-kind": "image",
        title: name,
      }, img);
      let full = null;
      if (localFile) {
        full = URL.createObjectURL(localFile);
        img.src = full;
      } else if (att.url) {
        blobUrl(att.url).then((u) => {
          full = u;
          img.src = u;
        }, () => {
          btn.classList.add("att-broken");
          btn.append(name);
        });
      }
      btn.addEventListener("click", () => {
        if (full) openLightbox(full, name);
      });
      return btn;
    }
    const link = h(
      "a",
      {
        class: "att-file",
        href: "#",
        "data-okno": "attachment",
        "data-kind": "file",
        download: name,
        title: T.download,
      },
      icon(ICONS.file),
      h("span", { class: "att-name", text: name }),
      h("span", { class: "att-size", text: fmtSize(att.size != null ? att.size : localFile && localFile.size) }),
    );
    link.addEventListener("click", (ev) => {
      if (link.getAttribute("href") !== "#") return; // already resolved: let it download
      ev.preventDefault();
      const p = localFile ? Promise.resolve(URL.createObjectURL(localFile)) : att.url ? blobUrl(att.url) : null;
      if (!p) return;
      p.then((u) => {
        link.setAttribute("href", u);
        link.click();
      }, () => link.classList.add("att-broken"));
    });
    return link;
  }

  function openLightbox(src, name) {
    const img = h("img", { src, alt: name });
    const box = h(
      "div",
      { class: "lightbox", "data-okno": "lightbox", role: "dialog", "aria-label": name },
      img,
      h("button", { type: "button", class: "lightbox-close", "aria-label": T.closeImage }, icon(ICONS.close)),
    );
    const close = () => {
      box.remove();
      document.removeEventListener("keydown", onKey, true);
    };
    const onKey = (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        close();
      }
    };
    box.addEventListener("click", close);
    document.addEventListener("keydown", onKey, true);
    ui.root.append(box);
  }

  // ---------------------------------------------------------------- UI

  const CSS_TEXT = `
:host { all: initial; }
* { box-sizing: border-box; }
.root {
  --okno-color: #0b57d0; --okno-on-color: #ffffff;
  font: 14px/1.4 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328;
}
.icon { display: inline-flex; align-items: center; justify-content: center; line-height: 0; }
button { font: inherit; cursor: pointer; }
.bubble {
  position: fixed; right: 24px; bottom: 24px; z-index: 2147483000;
  width: 60px; height: 60px; border-radius: 50%; border: 0;
  background: var(--okno-color); color: var(--okno-on-color);
  box-shadow: 0 6px 20px rgba(0,0,0,.25); display: flex; align-items: center; justify-content: center;
  transition: transform .15s ease;
}
.bubble:hover { transform: scale(1.06); }
.bubble:focus-visible { outline: 3px solid #93c5fd; outline-offset: 3px; }
.badge {
  position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #e11d48; color: #fff; font-size: 12px; font-weight: 600;
  line-height: 20px; text-align: center; box-shadow: 0 0 0 2px #fff;
}
.badge[hidden] { display: none; }
.window {
  position: fixed; right: 24px; bottom: 96px; z-index: 2147483001;
  width: 370px; height: 580px; max-height: calc(100vh - 120px);
  display: flex; flex-direction: column; background: #fff; border-radius: 16px; overflow: hidden;
  box-shadow: 0 12px 40px rgba(0,0,0,.22), 0 2px 8px rgba(0,0,0,.08);
  animation: okno-in .16s ease-out;
}
.window[hidden] { display: none; }
@keyframes okno-in { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }
.header {
  display: flex; align-items: center; gap: 10px; padding: 14px 12px 14px 16px;
  background: var(--okno-color); color: var(--okno-on-color);
}
.avatar {
  width: 36px; height: 36px; border-radius: 50%; flex: none; display: flex; align-items: center;
  justify-content: center; background: rgba(255,255,255,.22); font-weight: 700; font-size: 16px;
}
.titles { flex: 1; min-width: 0; }
.title { font-weight: 600; font-size: 15px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.status { display: flex; align-items: center; gap: 6px; font-size: 12px; opacity: .9; }
.status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; }
.status[data-state="online"]::before { background: #22c55e; }
.status[data-state="connecting"]::before { background: #f59e0b; }
.close {
  width: 36px; height: 36px; border: 0; border-radius: 8px; background: transparent; color: inherit;
  display: flex; align-items: center; justify-content: center;
}
.close:hover { background: rgba(255,255,255,.18); }
.info {
  padding: 10px 14px; background: #fff7d1; border-bottom: 1px solid #f3e3a0; color: #5c4a00;
  font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere;
}
.info[hidden], .banner[hidden] { display: none; }
.banner { padding: 8px 14px; background: #fdecec; color: #8a1c1c; font-size: 13px; }
.messages {
  flex: 1; overflow-y: auto; padding: 14px 12px 8px; background: #f4f5f7;
  display: flex; flex-direction: column; gap: 8px; overscroll-behavior: contain;
}
.msg { display: flex; flex-direction: column; max-width: 82%; align-self: flex-start; }
.msg[data-author="customer"] { align-self: flex-end; align-items: flex-end; }
.msg .name { font-size: 12px; color: #6b7280; margin: 0 4px 2px; }
.msg .body {
  padding: 8px 12px; border-radius: 14px; border-bottom-left-radius: 4px; background: #fff;
  box-shadow: 0 1px 1px rgba(0,0,0,.06); white-space: pre-wrap; overflow-wrap: anywhere;
  word-break: break-word;
}
.msg[data-author="customer"] .body {
  background: var(--okno-color); color: var(--okno-on-color);
  border-bottom-left-radius: 14px; border-bottom-right-radius: 4px;
}
.msg[data-author="bot"] .body { background: #eef2ff; }
.msg .extra[hidden] { display: none; }
.msg .text a { color: inherit; text-decoration: underline; overflow-wrap: anywhere; }
.msg .extra .buttons { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; }
.botbtn {
  font: inherit; font-size: 14px; padding: 6px 12px; border-radius: 16px; cursor: pointer;
  border: 1px solid var(--okno-color); background: #fff; color: #1f2937;
}
.botbtn:hover:not(:disabled) { background: #eff6ff; }
.botbtn:focus-visible { outline: 3px solid #93c5fd; outline-offset: 2px; }
.botbtn:disabled { opacity: .55; cursor: default; }
.botbtn.loc { margin-top: 6px; }
.places { margin: 6px 0 0; padding: 0 0 0 18px; }
.place { margin: 0 0 6px; }
.place .pname { font-weight: 600; }
.place .paddr, .place .phours { font-size: 13px; color: #4b5563; }
.msg[data-author="bot"] .name {
  align-self: flex-start; padding: 0 6px; border-radius: 8px; background: #e0e7ff; color: #3730a3;
  font-size: 11px; font-weight: 600; line-height: 16px;
}
.msg .name[hidden] { display: none; }
.msg[data-author="system"], .notice {
  align-self: center; max-width: 90%; text-align: center;
}
.msg[data-author="system"] .body, .notice {
  background: transparent; box-shadow: none; color: #6b7280; font-size: 12px; padding: 2px 8px;
}
.msg[data-pending] .body { opacity: .75; }
.msg[data-failed] .body { opacity: 1; box-shadow: 0 0 0 1px #e11d48 inset; }
.meta { font-size: 11px; color: #8b929c; margin: 2px 4px 0; }
.error { font-size: 12px; color: #c0152f; margin: 2px 4px 0; max-width: 100%; text-align: right; }
.text:empty { display: none; }
.atts { display: flex; flex-direction: column; gap: 6px; }
.text + .atts:not(:empty) { margin-top: 6px; }
.att-thumb { border: 0; padding: 0; background: transparent; border-radius: 10px; overflow: hidden; display: block; }
.att-img { display: block; max-width: 220px; max-height: 200px; min-width: 40px; min-height: 30px; object-fit: cover; background: rgba(0,0,0,.06); }
.att-file {
  display: flex; align-items: center; gap: 8px; padding: 8px 10px; border-radius: 10px;
  background: rgba(0,0,0,.06); color: inherit; text-decoration: none; max-width: 240px;
}
.msg[data-author="customer"] .att-file { background: rgba(255,255,255,.2); }
.att-name { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 500; }
.att-size { font-size: 11px; opacity: .75; white-space: nowrap; }
.att-broken { opacity: .6; }
.att-held { flex-wrap: wrap; }
.att-note { flex-basis: 100%; font-size: 12px; }
.att-held[data-kind="blocked"] .att-note, .att-held[data-kind="failed"] .att-note { color: #c0152f; }
.msg[data-author="customer"] .att-held[data-kind="blocked"] .att-note,
.msg[data-author="customer"] .att-held[data-kind="failed"] .att-note { color: inherit; font-weight: 600; }
.greeting { align-self: flex-start; max-width: 82%; }
.greeting .body { background: #fff; }
.greeting[hidden] { display: none; }
.rating {
  align-self: stretch; background: #fff; border-radius: 12px; padding: 12px; text-align: center;
  box-shadow: 0 1px 2px rgba(0,0,0,.08);
}
.rating .q { font-size: 13px; margin-bottom: 6px; }
.stars { display: flex; justify-content: center; gap: 4px; }
.star {
  border: 0; background: transparent; font-size: 28px; line-height: 1; color: #d1d5db; padding: 2px 3px;
  border-radius: 6px;
}
.star.on, .stars:not([aria-disabled]) .star:hover { color: #f59e0b; }
.stars:not([aria-disabled]) .star:has(~ .star:hover) { color: #f59e0b; }
.star:focus-visible { outline: 2px solid var(--okno-color); }
.rated { color: #15803d; font-weight: 500; }
.typing {
  padding: 2px 16px 6px; background: #f4f5f7; color: #6b7280; font-size: 12px; font-style: italic;
}
.typing[hidden] { display: none; }
.queue {
  display: flex; align-items: center; gap: 8px; padding: 7px 14px; background: #f4f5f7;
  border-top: 1px solid #e5e7eb; color: #374151; font-size: 12.5px;
}
.queue::before {
  content: ""; width: 8px; height: 8px; flex: none; border-radius: 50%; background: var(--okno-color);
  animation: okno-pulse 1.6s ease-in-out infinite;
}
.queue[data-closed]::before { background: #9ca3af; animation: none; }
.queue[hidden] { display: none; }
@keyframes okno-pulse { 0%, 100% { opacity: 1; } 50% { opacity: .35; } }
.composer { position: relative; display: flex; align-items: flex-end; gap: 6px; padding: 8px; border-top: 1px solid #e5e7eb; background: #fff; }
.suggest {
  position: absolute; left: 8px; right: 8px; bottom: calc(100% + 6px); z-index: 2;
  background: #fff; border: 1px solid #e5e7eb; border-radius: 12px; padding: 4px;
  box-shadow: 0 8px 24px rgba(0,0,0,.14), 0 1px 3px rgba(0,0,0,.06);
}
.suggest[hidden] { display: none; }
.sug-head { padding: 4px 8px 2px; font-size: 11px; color: #8b929c; text-transform: uppercase; letter-spacing: .03em; }
.sug-list { list-style: none; margin: 0; padding: 0; max-height: 196px; overflow-y: auto; }
.sug {
  padding: 7px 8px; border-radius: 8px; cursor: pointer; font-size: 13.5px; line-height: 1.3;
  overflow-wrap: anywhere; display: flex; gap: 8px; align-items: baseline;
}
.sug::before { content: "?"; flex: none; width: 16px; height: 16px; border-radius: 50%; background: #eef2ff; color: var(--okno-color); font-size: 11px; font-weight: 700; line-height: 16px; text-align: center; }
.sug:hover, .sug[aria-selected="true"] { background: #eef2ff; }
.sug[aria-selected="true"] { box-shadow: 0 0 0 1px var(--okno-color) inset; }
.bot-actions { display: flex; flex-direction: column; align-items: flex-start; gap: 2px; margin: 6px 2px 0; }
.handoff {
  border: 1px solid var(--okno-color); background: #fff; color: var(--okno-color); border-radius: 16px;
  padding: 5px 12px; font-size: 13px; font-weight: 500;
}
.handoff:hover { background: #f5f7ff; }
.handoff:disabled { opacity: .6; cursor: default; }
.handoff:focus-visible { outline: 2px solid var(--okno-color); outline-offset: 2px; }
.bot-actions .error { text-align: left; }
.bot-actions .error[hidden] { display: none; }
.composer textarea {
  flex: 1; resize: none; border: 1px solid #d1d5db; border-radius: 12px; padding: 9px 12px;
  font: inherit; color: inherit; max-height: 120px; min-height: 40px; outline: none; background: #fff;
}
.composer textarea:focus { border-color: var(--okno-color); box-shadow: 0 0 0 2px rgba(11,87,208,.12); }
.iconbtn {
  width: 40px; height: 40px; flex: none; border: 0; border-radius: 50%; display: flex;
  align-items: center; justify-content: center; background: transparent; color: #6b7280;
}
.iconbtn:hover { background: #f3f4f6; }
.sendbtn { background: var(--okno-color); color: var(--okno-on-color); }
.sendbtn:hover { background: var(--okno-color); filter: brightness(1.08); }
.sendbtn:disabled { opacity: .45; cursor: default; filter: none; }
.file { display: none; }
.lightbox {
  position: fixed; inset: 0; z-index: 2147483002; background: rgba(0,0,0,.82);
  display: flex; align-items: center; justify-content: center; cursor: zoom-out;
}
.lightbox img { max-width: 94vw; max-height: 90vh; box-shadow: 0 8px 40px rgba(0,0,0,.5); background: #fff; }
.lightbox-close {
  position: absolute; top: 14px; right: 14px; width: 40px; height: 40px; border-radius: 50%;
  border: 0; background: rgba(255,255,255,.15); color: #fff; display: flex; align-items: center; justify-content: center;
}
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  .window {
    right: 0; bottom: 0; left: 0; top: 0; width: 100%; height: 100%; max-height: none; border-radius: 0;
  }
  .root.is-open .bubble { display: none; }
  .bubble { right: 16px; bottom: 16px; }
}
@media (prefers-reduced-motion: reduce) { .window, .queue::before { animation: none; } .bubble { transition: none; } }
`;

  let ui = null;

  function buildUi() {
    const host = document.createElement("div");
    host.id = "okno-widget";
    const shadow = host.attachShadow({ mode: "open" });
    // A constructed stylesheet is not an inline style: a bank page whose Content-Security-
    // Policy forbids 'unsafe-inline' styles still shows the widget. Older browsers: <style>.
    let style = null;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      shadow.adoptedStyleSheets = [sheet];
    } catch (e) {
      style = document.createElement("style");
      style.textContent = CSS_TEXT;
    }

    const badge = h("span", { class: "badge", "data-okno": "unread", hidden: true });
    const bubble = h(
      "button",
      { type: "button", class: "bubble", "data-okno": "bubble", "aria-label": T.open, "aria-expanded": "false" },
      icon(ICONS.chat),
      badge,
    );

    const avatar = h("div", { class: "avatar", "aria-hidden": "true" });
    const title = h("div", { class: "title", "data-okno": "title", text: T.title });
    const statusText = h("span", { text: T.offline });
    const status = h("div", { class: "status", "data-okno": "status", "data-state": state.status }, statusText);
    const closeBtn = h("button", { type: "button", class: "close", "data-okno": "close", "aria-label": T.close }, icon(ICONS.close));
    const header = h("div", { class: "header" }, avatar, h("div", { class: "titles" }, title, status), closeBtn);

    const info = h("div", { class: "info", "data-okno": "info", role: "note", hidden: true });
    const banner = h("div", { class: "banner", "data-okno": "banner", role: "alert", hidden: true });

    const greetingBody = h("div", { class: "body" });
    const greeting = h("div", { class: "msg greeting", "data-okno": "greeting", hidden: true }, greetingBody);
    const messages = h(
      "div",
      { class: "messages", "data-okno": "messages", role: "log", "aria-live": "polite", "aria-label": T.messages },
      greeting,
    );

    const input = h("textarea", {
      "data-okno": "input",
      rows: "1",
      placeholder: T.placeholder,
      "aria-label": T.placeholder,
      "aria-autocomplete": "list",
      "aria-controls": "okno-suggest",
      "aria-expanded": "false",
    });
    // Suggested questions while the dialog is with the bot, just above the text box.
    const suggestList = h("ul", { class: "sug-list", id: "okno-suggest", role: "listbox", "aria-label": T.suggestions });
    const suggest = h(
      "div",
      { class: "suggest", "data-okno": "suggestions", hidden: true },
      h("div", { class: "sug-head", "aria-hidden": "true", text: T.suggestions }),
      suggestList,
    );
    // "Talk to a person", moved under the newest bot message while the bot has the dialog.
    const handoffBtn = h("button", { type: "button", class: "handoff", "data-okno": "handoff" }, T.handoff);
    const handoffError = h("div", { class: "error", role: "alert", hidden: true });
    const handoffBox = h("div", { class: "bot-actions", "data-okno": "handoff-box" }, handoffBtn, handoffError);
    const file = h("input", { type: "file", class: "file", "data-okno": "file", accept: ACCEPT, tabindex: "-1" });
    const attach = h("button", { type: "button", class: "iconbtn", "data-okno": "attach", "aria-label": T.attach, title: T.attach }, icon(ICONS.clip));
    const send = h("button", { type: "button", class: "iconbtn sendbtn", "data-okno": "send", "aria-label": T.send, title: T.send, disabled: true }, icon(ICONS.send));
    const composer = h("div", { class: "composer" }, suggest, attach, file, input, send);
    const typing = h("div", {
      class: "typing",
      "data-okno": "typing",
      role: "status",
      "aria-live": "polite",
      hidden: true,
    }, T.staffTyping);
    const queue = h("div", { class: "queue", "data-okno": "queue", role: "status", "aria-live": "polite", hidden: true });

    const win = h(
      "div",
      { class: "window", "data-okno": "window", role: "dialog", "aria-label": T.title, hidden: true },
      header, info, banner, messages, typing, queue, composer,
    );
    const root = h("div", { class: "root", lang: LANG }, bubble, win);
    if (style) shadow.append(style);
    shadow.append(root);

    ui = {
      host, shadow, root, bubble, badge, win, avatar, title, status, statusText, closeBtn,
      info, banner, greeting, greetingBody, messages, typing, queue, input, file, attach, send,
      suggest, suggestList, handoff: handoffBtn, handoffError, handoffBox,
    };
    handoffBtn.addEventListener("click", () => askForPerson());

    bubble.addEventListener("click", () => (state.isOpen ? close() : open()));
    closeBtn.addEventListener("click", () => close());
    win.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !shadow.querySelector(".lightbox")) {
        e.preventDefault();
        close();
      }
    });
    input.addEventListener("keydown", (e) => {
      if (suggestionKey(e)) return;
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    });
    input.addEventListener("input", () => {
      autoGrow();
      send.disabled = !input.value.trim();
      noteTyping();
      noteInputForSuggestions();
    });
    input.addEventListener("paste", (e) => {
      const files = e.clipboardData && e.clipboardData.files;
      if (files && files.length) {
        e.preventDefault();
        for (const f of Array.from(files)) sendFile(f, "");
      }
    });
    send.addEventListener("click", () => submit());
    attach.addEventListener("click", () => file.click());
    file.addEventListener("change", () => {
      const files = Array.from(file.files || []);
      file.value = "";
      if (!files.length) return;
      const caption = input.value.trim();
      if (caption) {
        input.value = "";
        autoGrow();
        send.disabled = true;
      }
      files.forEach((f, i) => sendFile(f, i === 0 ? caption : ""));
      input.focus();
    });
    messages.addEventListener("dragover", (e) => e.preventDefault());
    messages.addEventListener("drop", (e) => {
      e.preventDefault();
      const files = e.dataTransfer && e.dataTransfer.files;
      if (files) for (const f of Array.from(files)) sendFile(f, "");
    });

    document.body.appendChild(host);
    setStatus(state.status);
    applyWidget(state.widget);
  }

  function autoGrow() {
    const el = ui.input;
    el.style.height = "auto";
    el.style.height = Math.min(el.scrollHeight + 2, 120) + "px";
  }

  function submit() {
    const text = ui.input.value;
    if (!text.trim()) return;
    const extra = suggestionsOpen() ? { suggested: true } : null; // seen but not picked
    hideSuggestions();
    ui.input.value = "";
    autoGrow();
    ui.send.disabled = true;
    sendText(text, extra);
    ui.input.focus();
  }

  function applyWidget(w) {
    if (!w || typeof w !== "object") return;
    for (const k of ["name", "greeting", "info_message", "color"]) {
      if (typeof w[k] === "string") state.widget[k] = w[k];
      else if (w[k] === null) state.widget[k] = "";
    }
    if (typeof w.bot === "boolean") state.widget.bot = w.bot;
    if (!ui) return;
    renderBot();
    const name = state.widget.name || T.title;
    ui.title.textContent = name;
    ui.win.setAttribute("aria-label", name);
    ui.avatar.textContent = (name.trim()[0] || "?").toUpperCase();
    const color = safeColor(state.widget.color);
    if (color) {
      ui.root.style.setProperty("--okno-color", color);
      ui.root.style.setProperty("--okno-on-color", contrastText(color));
    }
    ui.info.textContent = state.widget.info_message || "";
    ui.info.hidden = !state.widget.info_message;
    ui.greetingBody.textContent = state.widget.greeting || "";
    ui.greeting.hidden = !state.widget.greeting;
  }

  function renderBanner() {
    if (!ui) return;
    ui.banner.textContent = state.fatal || "";
    ui.banner.hidden = !state.fatal;
  }

  function renderUnread() {
    if (!ui) return;
    const n = state.unread;
    ui.badge.textContent = n > 99 ? "99+" : String(n);
    ui.badge.hidden = n === 0 || state.isOpen;
    ui.bubble.setAttribute("aria-label", n && !state.isOpen ? T.open + ". " + T.unread(n) : T.open);
  }

  function sortedItems() {
    return Array.from(state.items.values()).sort((a, b) => {
      if (a.sortSeq !== b.sortSeq) return a.sortSeq < b.sortSeq ? -1 : 1;
      return a.order - b.order;
    });
  }

  function authorLabel(m) {
    if (m.author_kind === "customer") return "";
    if (m.author_kind === "bot") return T.bot; // in the widget's language
    if (m.author_name) return m.author_name;
    return m.author_kind === "bot" ? T.bot : m.author_kind === "operator" ? T.operator : "";
  }

  function buildMessageEl(item) {
    const el = h("div", { class: "msg", "data-okno": "message" });
    item.el = el;
    item.nameEl = h("div", { class: "name" });
    item.textEl = h("div", { class: "text" });
    item.attsEl = h("div", { class: "atts" });
    item.metaEl = h("div", { class: "meta", "data-okno": "meta" });
    item.extraEl = h("div", { class: "extra" });
    item.errEl = null;
    el.append(item.nameEl, h("div", { class: "body" }, item.textEl, item.attsEl), item.extraEl, item.metaEl);
    item.renderedExtra = null;
    item.renderedAtt = null;
  }

  function updateMessageEl(item) {
    if (!item.el) buildMessageEl(item);
    const el = item.el;
    const m = item.msg;
    const author = m ? m.author_kind || "system" : "customer";
    el.setAttribute("data-author", author);
    if (m && typeof m.seq === "number") {
      el.setAttribute("data-seq", String(m.seq));
      el.removeAttribute("data-pending");
    } else if (item.pending && !item.error) {
      el.removeAttribute("data-seq");
      el.setAttribute("data-pending", "1");
    } else {
      // acknowledged without a seq, or rejected (4xx: marked data-failed below)
      el.removeAttribute("data-pending");
    }
    if (m && m.id != null) el.setAttribute("data-id", String(m.id));
    if (item.error) el.setAttribute("data-failed", "1");
    else el.removeAttribute("data-failed");

    const name = m ? authorLabel(m) : "";
    item.nameEl.textContent = name;
    item.nameEl.hidden = !name || author === "system";
    let shown = m ? m.text || "" : item.text;
    if (m && m.author_kind === "bot" && m.meta && Array.isArray(m.meta.places) && m.meta.places.length) {
      shown = shown.split("\n")[0]; // the cards below say what the rest of the plain text says
    }
    if (m && (m.author_kind === "bot" || m.author_kind === "operator")) setLinkedText(item.textEl, shown);
    else item.textEl.textContent = shown;

    // attachments: server ones once known, else the local file being sent
    const atts = m && Array.isArray(m.attachments) ? m.attachments : [];
    const sig = atts.length ? atts.map((a) => a.id + ":" + (a.scan_status || "")).join(",") : item.file ? "local" : "";
    if (sig !== item.renderedAtt) {
      item.attsEl.textContent = "";
      if (atts.length) {
        for (const a of atts) item.attsEl.append(renderAttachment(a, null));
      } else if (item.file) {
        item.attsEl.append(
          renderAttachment({ filename: item.file.name, content_type: item.file.type, size: item.file.size }, item.file),
        );
      }
      item.renderedAtt = sig;
    }

    renderExtra(item, null);

    let meta;
    if (item.error) meta = T.failed;
    else if (item.pending) meta = item.attempts > 0 ? T.retrying : T.sending;
    else meta = fmtTime(m && m.created_at);
    item.metaEl.textContent = meta;
    item.metaEl.hidden = !meta || author === "system";

    if (item.error) {
      if (!item.errEl) {
        item.errEl = h("div", { class: "error", "data-okno": "error", role: "alert" });
        el.append(item.errEl);
      }
      item.errEl.textContent = item.error;
    } else if (item.errEl) {
      item.errEl.remove();
      item.errEl = null;
    }
  }

  // ---------------------------------------------------------------- bot steps: buttons,
  // a location request, places found. Buttons of the newest bot message are live while the
  // bot serves the dialog; older ones stay as a record (disabled).

  function newestBotMessage() {
    let newest = null;
    for (const item of sortedItems()) {
      if (item.kind === "message" && item.msg && item.msg.author_kind === "bot") newest = item;
    }
    return newest;
  }

  function renderExtra(item, newest) {
    const m = item.msg;
    const meta = m && m.author_kind === "bot" && m.meta && typeof m.meta === "object" ? m.meta : null;
    const live = !!meta && botServes() && (newest || newestBotMessage()) === item;
    const sig = meta ? JSON.stringify(meta) + (live ? "|live" : "") + (locating ? "|loc" : "") : "";
    if (sig === item.renderedExtra) return;
    item.renderedExtra = sig;
    const box = item.extraEl;
    box.textContent = "";
    box.hidden = !meta;
    if (!meta) return;
    if (Array.isArray(meta.buttons) && meta.buttons.length) {
      const row = h("div", { class: "buttons", role: "group", "data-okno": "bot-buttons" });
      for (const b of meta.buttons) {
        if (!b || typeof b.label !== "string") continue;
        row.append(h("button", {
          type: "button",
          class: "botbtn",
          "data-okno": "bot-button",
          disabled: live ? null : true,
          onclick: () => pressButton(b),
        }, b.label)); // a text node: labels are never HTML
      }
      box.append(row);
    }
    if (meta.ask_location && live) {
      box.append(h("button", {
        type: "button",
        class: "botbtn loc",
        "data-okno": "share-location",
        disabled: locating ? true : null,
        onclick: shareLocation,
      }, locating ? T.locating : T.shareLocation));
      if (locationError) box.append(h("div", { class: "error", role: "alert", text: locationError }));
    }
    if (Array.isArray(meta.places) && meta.places.length) {
      const list = h("ol", { class: "places", "data-okno": "places" });
      for (const p of meta.places) {
        if (!p || typeof p.name !== "string") continue;
        const far = typeof p.distance_km === "number"
          ? p.distance_km < 1 ? T.meters(Math.round(p.distance_km * 1000)) : T.km(p.distance_km)
          : "";
        list.append(h("li", { class: "place", "data-okno": "place" },
          h("div", { class: "pname", text: p.name }),
          h("div", { class: "paddr", text: [p.address, far].filter(Boolean).join(" · ") }),
          p.hours ? h("div", { class: "phours", text: p.hours }) : ""));
      }
      box.append(list);
    }
  }

  function pressButton(b) {
    hideSuggestions();
    sendText(b.label, { button: typeof b.payload === "string" ? b.payload : null });
  }

  let locating = false;
  let locationError = "";

  /** The browser's location, sent as a message the bot's location step answers; if the
   *  customer says no (or there is no GPS), they are asked to type their city. */
  function shareLocation() {
    if (locating) return;
    locationError = "";
    if (!navigator.geolocation) {
      locationError = T.locationFailed;
      render();
      return;
    }
    locating = true;
    render();
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        locating = false;
        const lat = Math.round(pos.coords.latitude * 1e5) / 1e5;
        const lon = Math.round(pos.coords.longitude * 1e5) / 1e5;
        sendText(T.myLocation, { location: { lat, lon } });
      },
      () => {
        locating = false;
        locationError = T.locationFailed;
        render();
      },
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 300000 },
    );
  }

  /** The bank's own text (bot answers, operators) with its web addresses as links; the
   *  rest stays text nodes, and only http(s) addresses become links, so nothing in a
   *  message can run or navigate anywhere else. */
  const URL_RE = /https?:\/\/[^\s<>"«»]+[^\s<>"«».,;:!?)]/g;
  function setLinkedText(el, text) {
    el.textContent = "";
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      if (match.index > last) el.append(text.slice(last, match.index));
      el.append(h("a", { href: match[0], target: "_blank", rel: "noopener noreferrer", "data-okno": "link" }, match[0]));
      last = match.index + match[0].length;
    }
    if (last < text.length) el.append(text.slice(last));
  }

  function updateNoticeEl(item) {
    if (!item.el) item.el = h("div", { class: "notice", "data-okno": "notice", text: item.text });
  }

  function updateRatingEl(item) {
    if (!item.el) {
      item.el = h("div", { class: "rating", "data-okno": "rating", "data-conversation-id": String(item.convId) });
    }
    const el = item.el;
    el.textContent = "";
    if (item.done) {
      el.append(h("div", { class: "rated", "data-okno": "rated", text: T.rated }));
      return;
    }
    const stars = h("div", { class: "stars", role: "group", "aria-label": T.rateQ });
    if (item.busy) stars.setAttribute("aria-disabled", "true");
    for (let i = 1; i <= 5; i++) {
      stars.append(
        h("button", {
          type: "button",
          class: "star" + (item.score && i <= item.score ? " on" : ""),
          "data-okno": "star",
          "data-score": String(i),
          "aria-label": T.star(i),
          title: T.star(i),
          disabled: item.busy || null,
          onclick: () => submitRating(item, i),
        }, "★"),
      );
    }
    el.append(h("div", { class: "q", text: T.rateQ }), stars);
    if (item.ratingError) el.append(h("div", { class: "error", role: "alert", text: item.ratingError }));
  }

  function render() {
    if (!ui) return;
    const list = ui.messages;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    let scroll = false;
    let ref = ui.greeting.nextSibling;
    for (const item of sortedItems()) {
      if (item.dirty || !item.el) {
        if (item.kind === "message") updateMessageEl(item);
        else if (item.kind === "notice") updateNoticeEl(item);
        else if (item.kind === "rating") updateRatingEl(item);
        item.dirty = false;
      }
      if (item.scrollTo) {
        scroll = true;
        item.scrollTo = false;
      }
      if (item.el !== ref) list.insertBefore(item.el, ref);
      else ref = ref.nextSibling;
    }
    // bot buttons: only the newest bot message's are live
    const newest = newestBotMessage();
    for (const item of state.items.values()) {
      if (item.kind === "message" && item.extraEl && item.msg && item.msg.meta) renderExtra(item, newest);
    }
    // anything left after the sorted items is stale
    while (ref) {
      const next = ref.nextSibling;
      list.removeChild(ref);
      ref = next;
    }
    renderBot();
    if (state.isOpen && (nearBottom || scroll)) list.scrollTop = list.scrollHeight;
    outboxSave();
    scheduleRead();
  }

  // ---------------------------------------------------------------- open / close

  function open() {
    if (!ui) return;
    if (!state.isOpen) {
      state.isOpen = true;
      ui.win.hidden = false;
      ui.root.classList.add("is-open");
      ui.bubble.setAttribute("aria-expanded", "true");
      ui.bubble.setAttribute("aria-label", T.close);
      state.unread = 0;
      renderUnread();
      render();
      ui.messages.scrollTop = ui.messages.scrollHeight;
      setTimeout(() => ui.input.focus(), 30);
    }
    start();
  }

  function close() {
    if (!ui || !state.isOpen) return;
    state.isOpen = false;
    hideSuggestions();
    ui.win.hidden = true;
    ui.root.classList.remove("is-open");
    ui.bubble.setAttribute("aria-expanded", "false");
    renderUnread();
    ui.bubble.focus();
  }

  // ---------------------------------------------------------------- boot

  function boot() {
    if (document.getElementById("okno-widget")) return;
    buildUi();
    // Messages typed before a reload and never acknowledged: show and retry them.
    for (const o of outboxLoad()) {
      if (o && o.client_msg_id && typeof o.text === "string") {
        let extra = o.extra && typeof o.extra === "object" ? o.extra : null;
        if (!extra && typeof o.article_id === "string") extra = { article_id: o.article_id }; // older outbox
        addPending(o.client_msg_id, o.text, null, o.created_at, extra).scrollTo = false;
      }
    }
    const pendingRating = store.getJSON("rate", null);
    if (pendingRating && pendingRating.conversation_id != null) {
      showRating(pendingRating.conversation_id, pendingRating.seq);
    }
    render();
    loadConfig();
    // With a stored session, connect now: history, unread badge, outbox retries.
    if (state.token || outboxLoad().length) start();

    window.addEventListener("online", () => {
      if (!state.token || !ws) start();
      pumpNow();
      if (!ws) {
        clearTimeout(wsTimer);
        wsTimer = null;
        wsBackoff = 500;
        connectWs();
      }
    });
    window.addEventListener("offline", () => {
      // The socket may linger half-open: drop it now; "online" brings it back with catch-up.
      if (ws) {
        const old = ws;
        ws = null;
        try {
          old.close(1000);
        } catch (e) {
          /* ignore */
        }
      }
      setStatus("offline");
      scheduleWs(nextWsDelay());
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      if (state.isOpen) {
        state.unread = 0;
        renderUnread();
        scheduleRead(); // what arrived while the tab was hidden is seen now
      }
      if (state.token && !ws) {
        clearTimeout(wsTimer);
        wsTimer = null;
        wsBackoff = 500;
        connectWs();
      }
      if (nextPending()) pumpNow();
    });
  }

  // Any element of the page marked data-okno-open opens the chat, so a bank's page needs no
  // inline onclick="…" handler (which a strict Content-Security-Policy forbids).
  document.addEventListener("click", (ev) => {
    const target = ev.target instanceof Element ? ev.target.closest("[data-okno-open]") : null;
    if (!target) return;
    ev.preventDefault();
    open();
  });

  window.okno = {
    open,
    close,
    _state: state,
    send: (text) => {
      const item = sendText(text);
      return item ? item.cmid : null;
    },
  };

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot, { once: true });
})();
