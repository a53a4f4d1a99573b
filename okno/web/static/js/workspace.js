// The operator workspace: inbox (mine / queue), dialogs as tabs with their drafts, the
// customer card, presence, and notifications (sound + browser notification) for every
// channel alike — an event is an event, whichever adapter stored the message.
import {
  $, $$, BOOT, ME, Stream, api, channelBadge, channelLabel, fmtDate, fmtTime, h, initFrame,
  setConnState, t, toast,
} from "./core.js";
import { DialogView, waitText } from "./dialog.js";

const QUEUE_NOTICE_DELAY_MS = 2500;

const state = {
  convs: new Map(), // id -> ConversationOut (open dialogs I may see)
  filter: "mine",
  tabs: new Map(), // id -> DialogView
  order: [], // tab ids left to right
  active: null,
  sound: localStorage.getItem("okno:sound") !== "off",
  cards: new Map(), // customer id -> card element (cache while the tab is open)
  links: new Map(), // customer id -> the card's "link with another customer" control
  notifications: 0,
  created: new Map(), // id -> when its conversation.created arrived
  acted: new Map(), // id -> when I last acted on it (my own take is no news to me)
};
window.oknoWorkspace = state; // for the browser tests and for support staff poking around

const stream = new Stream({
  onEvent: handleEvent,
  onReady: () => {
    loadInbox();
    loadPresence(); // after the socket is up: opening it may have brought us online
  },
  onReset: () => loadInbox(),
  onState: setConnState,
});

// ------------------------------------------------------------------ inbox

function mine(c) {
  return c.status === "assigned" && c.assignee && c.assignee.id === ME.id;
}

function inQueue(c) {
  return c.status === "waiting";
}

async function loadInbox() {
  const [open] = await Promise.all([api("/api/v1/conversations?status=open&limit=500")]);
  state.convs.clear();
  for (const c of open.conversations) state.convs.set(c.id, c);
  renderInbox();
  for (const view of state.tabs.values()) {
    const fresh = state.convs.get(view.conv.id);
    if (fresh) view.update(fresh);
  }
}

function sortKey(c) {
  // the longest-waiting first; answered dialogs by latest activity
  const w = c.waiting_since || (c.status === "waiting" ? c.created_at : null);
  return w ? new Date(w).getTime() : 1e15 - new Date(c.last_message_at || c.created_at).getTime();
}

function renderInbox() {
  const all = [...state.convs.values()];
  const lists = { mine: all.filter(mine), queue: all.filter(inQueue) };
  $("count-mine").textContent = lists.mine.length;
  $("count-queue").textContent = lists.queue.length;
  const items = lists[state.filter].sort((a, b) => sortKey(a) - sortKey(b));
  const ul = $("convs");
  if (!items.length) {
    ul.replaceChildren(h("li", { class: "empty", text: t(state.filter === "mine" ? "inbox.empty_mine" : "inbox.empty_queue") }));
    return;
  }
  ul.replaceChildren(...items.map(convItem));
}

function convItem(c) {
  const wait = waitText(c);
  const late = wait && (Date.now() - new Date(c.waiting_since || c.created_at).getTime()) > 120_000;
  return h("li", {
    class: "conv", "data-okno": "conv", "data-id": c.id, "data-status": c.status,
    "aria-current": String(state.active === c.id), onclick: () => openTab(c.id),
  },
    channelBadge(c.channel.kind),
    h("span", { class: "cname", text: c.customer.name }),
    h("span", { class: "cside" },
      h("span", { class: "ckind", "data-okno": "conv-kind", text: channelLabel(c.channel.kind) }),
      wait ? h("span", { class: `cwait${late ? " late" : ""}`, "data-okno": "wait", title: t("inbox.waits"), text: wait }) : null,
      c.unread ? h("span", { class: "badge", "data-okno": "unread", text: c.unread }) : null),
    h("span", { class: "cprev", text: c.last_message_preview || channelLabel(c.channel.kind) }),
  );
}

function upsert(conv) {
  if (conv.status === "closed") state.convs.delete(conv.id);
  else state.convs.set(conv.id, { ...(state.convs.get(conv.id) || {}), ...conv });
  renderInbox();
  renderTabs();
}

$$("filter").forEach((btn) => btn.addEventListener("click", () => {
  state.filter = btn.dataset.filter;
  $$("filter").forEach((b) => b.setAttribute("aria-selected", String(b === btn)));
  renderInbox();
}));

setInterval(() => {
  // the waiting clocks tick without a re-render of everything else
  for (const li of $$("conv")) {
    const c = state.convs.get(Number(li.dataset.id));
    const el = li.querySelector("[data-okno=wait]");
    if (c && el) el.textContent = waitText(c);
  }
}, 5000);

// ------------------------------------------------------------------ tabs

async function openTab(id, { focus = true } = {}) {
  let view = state.tabs.get(id);
  if (!view) {
    let conv = state.convs.get(id);
    if (!conv) {
      try {
        conv = await api(`/api/v1/conversations/${id}`);
      } catch (err) {
        showProblem(err);
        return;
      }
    }
    view = new DialogView(conv, {
      stream,
      onChange: (c) => {
        upsert(c);
        if (c.customer) refreshCard(c.customer.id);
      },
      onCloseTab: () => closeTab(id),
      onAct: () => state.acted.set(id, Date.now()),
    });
    view.onDraft = renderTabs;
    state.tabs.set(id, view);
    state.order.push(id);
    $("dialog").parentElement.append(view.el);
    view.setVisible(false);
    view.load().catch((err) => toast(err.text || String(err), "error"));
  }
  if (focus) activate(id);
}

function activate(id) {
  state.active = id;
  $("dialog").hidden = true;
  for (const [tid, view] of state.tabs) view.setVisible(tid === id);
  renderTabs();
  renderInbox();
  const view = state.tabs.get(id);
  if (view) {
    history.replaceState(null, "", `/c/${id}`);
    showCard(view.conv.customer.id);
  }
}

function closeTab(id) {
  const view = state.tabs.get(id);
  if (!view) return;
  view.el.remove();
  state.tabs.delete(id);
  state.order = state.order.filter((x) => x !== id);
  if (state.active === id) {
    const next = state.order.at(-1);
    if (next) activate(next);
    else {
      state.active = null;
      $("dialog").hidden = false;
      $("card").replaceChildren();
      history.replaceState(null, "", "/");
      renderTabs();
      renderInbox();
    }
  } else renderTabs();
}

function renderTabs() {
  $("tabs").replaceChildren(...state.order.map((id) => {
    const view = state.tabs.get(id);
    const c = state.convs.get(id) || view.conv;
    return h("div", {
      class: "tab", role: "tab", "data-okno": "tab", "data-id": id, "aria-selected": String(id === state.active),
      onclick: () => activate(id),
    },
      channelBadge(c.channel.kind),
      h("span", { class: "tname", text: c.customer.name }),
      view.hasDraft && id !== state.active ? h("span", { class: "draft-mark", title: "draft", "data-okno": "draft-mark", text: "✎" }) : null,
      c.unread && id !== state.active ? h("span", { class: "badge", text: c.unread }) : null,
      h("button", { class: "btn-icon", type: "button", "aria-label": t("common.close"), text: "✕", onclick: (e) => { e.stopPropagation(); closeTab(id); } }),
    );
  }));
}

function showProblem(err) {
  const text = err.status === 403 ? t("dialog.not_allowed") : err.text || String(err);
  $("dialog").hidden = false;
  $("dialog").replaceChildren(h("div", { class: "banner error", "data-okno": "problem", text }));
}

// ------------------------------------------------------------------ customer card

async function showCard(customerId) {
  const box = $("card");
  box.dataset.customer = customerId;
  const cached = state.cards.get(customerId);
  if (cached) box.replaceChildren(cached);
  else box.replaceChildren(h("div", { class: "muted", text: t("common.loading") }));
  await refreshCard(customerId);
}

async function refreshCard(customerId, force = false) {
  if (!force && $("card").dataset.customer === String(customerId) && cardBusy($("card"))) {
    // The operator is editing the card or typing a note: rebuilding it now would throw
    // their words away. Look again in a moment (nothing is fetched meanwhile).
    retryCardLater(customerId);
    return;
  }
  let card, timeline;
  try {
    [card, timeline] = await Promise.all([
      api(`/api/v1/customers/${customerId}`),
      api(`/api/v1/customers/${customerId}/timeline?limit=100`).catch(() => ({ items: [] })),
    ]);
  } catch (err) {
    if ($("card").dataset.customer === String(customerId)) $("card").replaceChildren(h("div", { class: "banner error", text: err.text }));
    return;
  }
  const shown = $("card").dataset.customer === String(customerId);
  if (shown && !force && cardBusy($("card"))) {
    retryCardLater(customerId); // they started editing while we fetched
    return;
  }
  const node = renderCard(card, timeline);
  state.cards.set(customerId, node);
  if (shown) $("card").replaceChildren(node);
}

const cardRetries = new Map();

function retryCardLater(customerId) {
  if (cardRetries.has(customerId)) return; // one look later is enough, however many events came
  cardRetries.set(customerId, setTimeout(() => {
    cardRetries.delete(customerId);
    refreshCard(customerId);
  }, 2000));
}

function cardBusy(el) {
  if (el.querySelector("[data-okno=card-edit]:not([hidden])")) return true;
  return [...el.querySelectorAll("input, textarea")].some(
    (i) => i === document.activeElement || (i.dataset.okno === "note-input" && i.value.trim()),
  );
}

function renderCard(card, timeline) {
  const noteInput = h("input", { name: "text", maxlength: 4000, placeholder: t("card.add_note"), "data-okno": "note-input" });
  const noteForm = h("form", { "data-okno": "note-form" }, noteInput, h("button", { class: "btn btn-small", type: "submit", text: "+" }));
  noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = noteInput.value.trim();
    if (!text) return;
    try {
      await api(`/api/v1/customers/${card.id}/notes`, { method: "POST", body: { text } });
      noteInput.value = "";
      refreshCard(card.id, true);
    } catch (err) {
      toast(err.text, "error");
    }
  });
  const attrs = Object.entries(card.attributes || {});
  const nameInput = h("input", { name: "name", value: card.name, maxlength: 200, "data-okno": "card-name-input" });
  const tagsInput = h("input", { name: "tags", value: card.tags.join(", "), placeholder: t("card.tags"), "data-okno": "card-tags-input" });
  const editForm = h("form", { "data-okno": "card-edit", hidden: true, class: "card-edit" }, nameInput, tagsInput,
    h("button", { class: "btn btn-small btn-primary", type: "submit", text: t("common.save") }));
  editForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const tags = tagsInput.value.split(",").map((x) => x.trim()).filter(Boolean);
      // the name shown may be masked ("Иван [телефон]"): send it only when it was changed,
      // or the masked form would replace the stored name
      const name = nameInput.value.trim();
      await api(`/api/v1/customers/${card.id}`, { method: "PATCH", body: { ...(name !== card.name ? { name } : {}), tags } });
      await refreshCard(card.id, true);
      for (const view of state.tabs.values()) if (view.conv.customer.id === card.id) view.refresh();
    } catch (err) {
      toast(err.text, "error");
    }
  });
  return h("div", { "data-okno": "customer-card", "data-customer": card.id },
    h("section", {},
      h("div", { class: "card-title" },
        h("div", { class: "cust-name", "data-okno": "card-name", text: card.name }),
        h("button", { class: "btn-icon", type: "button", title: t("common.edit"), "data-okno": "card-edit-open", text: "✎", onclick: () => { editForm.hidden = !editForm.hidden; nameInput.select(); } })),
      editForm,
      h("div", { class: "muted small", text: `${t("card.since")} ${fmtDate(card.created_at)}` }),
      card.tags.length ? h("div", {}, ...card.tags.map((tag) => h("span", { class: "pill tag", text: tag }), " ")) : null,
    ),
    h("section", {}, h("h3", { text: t("card.identities") }),
      h("ul", { "data-okno": "identities" }, ...card.identities.map((i) =>
        h("li", {}, channelBadge(i.channel_kind), " ", h("span", { text: `${i.channel_name}: ${i.external_id}` })))),
      linkControl(card),
      card.can_call ? callButton(card) : null),
    attrs.length ? h("section", {}, h("h3", { text: t("card.attributes") }),
      h("dl", {}, ...attrs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]))) : null,
    h("section", {}, h("h3", { text: t("card.notes") }),
      h("ul", { "data-okno": "notes" }, ...card.notes.map((n) => h("li", { class: "note", text: `${n.text}\n— ${n.author_name}, ${fmtTime(n.created_at)}` }))),
      noteForm),
    h("section", {}, h("h3", { text: t("card.history") }), renderTimeline(card, timeline)),
  );
}

/**
 * "Позвонить": the bank's PBX calls the customer (okno sends it the number; the browser
 * never has it) and then rings the operator's phone.
 */
function callButton(card) {
  return h("button", {
    class: "btn btn-small", type: "button", "data-okno": "call", text: t("card.call"),
    onclick: async () => {
      const dialog = state.active != null ? state.convs.get(state.active) : null;
      const body = dialog && dialog.customer.id === card.id ? { conversation_id: dialog.id } : {};
      try {
        await api(`/api/v1/customers/${card.id}/call`, { method: "POST", body });
        toast(t("card.calling"));
      } catch (err) {
        toast(err.text || String(err), "error");
      }
    },
  });
}

/**
 * "Link with another customer": find the other half of a person who wrote in two channels
 * (by name, their id in a channel, or #number) and join them into this card; the card and
 * the history then show both channels' dialogs.
 */
function linkControl(card) {
  // The card is drawn again on every change of the dialog: the search being typed and its
  // results stay (one control per customer while the page is open).
  const kept = state.links.get(card.id);
  if (kept) return kept;
  const box = h("div", { class: "link-box", "data-okno": "link-box", hidden: true });
  const open = h("button", {
    class: "btn btn-small", type: "button", "data-okno": "link-open", text: t("card.link"),
    onclick: () => {
      box.hidden = !box.hidden;
      if (!box.hidden) input.focus();
    },
  });
  const input = h("input", { type: "search", name: "q", maxlength: 200, placeholder: t("card.link_search"), "data-okno": "link-query", autocomplete: "off" });
  const results = h("ul", { class: "link-results", "data-okno": "link-results" });
  const error = h("div", { class: "form-error", "data-okno": "link-error" });
  const form = h("form", { class: "link-form" }, input, h("button", { class: "btn btn-small", type: "submit", text: t("card.link_find") }));
  let asked = 0;
  const search = async () => {
    const q = input.value.trim();
    error.textContent = "";
    if (q.length < 2) {
      results.replaceChildren();
      return;
    }
    const token = ++asked;
    let out;
    try {
      out = await api(`/api/v1/customers?q=${encodeURIComponent(q)}&limit=8`);
    } catch (err) {
      error.textContent = err.text || String(err);
      return;
    }
    if (token !== asked) return; // a newer search won
    const found = out.customers.filter((c) => c.id !== card.id);
    results.replaceChildren(...(found.length ? found.map((c) => h("li", { "data-okno": "link-candidate", "data-id": c.id },
      h("div", { class: "link-who" },
        h("strong", { text: c.name }),
        h("span", { class: "muted small", text: ` #${c.id} · ${t("card.link_dialogs", { count: c.dialogs })}` })),
      h("div", { class: "small" }, ...c.identities.map((i) => h("span", { class: "link-id" }, channelBadge(i.channel_kind), " ", i.external_id))),
      h("button", { class: "btn btn-small btn-primary", type: "button", "data-okno": "link-do", text: t("card.link_do"), onclick: () => merge(c) })))
      : [h("li", { class: "muted small", "data-okno": "link-none", text: t("card.link_none") })]));
  };
  const merge = async (other) => {
    error.textContent = "";
    try {
      await api(`/api/v1/customers/${card.id}/merge`, { method: "POST", body: { other_id: other.id } });
    } catch (err) {
      error.textContent = err.text || String(err);
      return;
    }
    toast(t("card.link_done"));
    state.cards.delete(other.id);
    state.links.delete(card.id); // a fresh control: the search was done
    state.links.delete(other.id);
    await refreshCard(card.id, true);
    for (const view of state.tabs.values()) {
      if ([card.id, other.id].includes(view.conv.customer.id)) view.refresh();
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 300);
  });
  box.append(h("p", { class: "hint", text: t("card.link_hint") }), form, results, error);
  const control = h("div", { class: "link", "data-okno": "link" }, open, box);
  state.links.set(card.id, control);
  return control;
}

/** Every dialog of the customer in every channel on one line of time, newest last. */
function renderTimeline(card, timeline) {
  const items = timeline.items || [];
  if (!items.length && card.dialogs.length <= 1) return h("div", { class: "muted small", text: t("card.no_history") });
  const dialogs = new Map(card.dialogs.map((d) => [d.id, d]));
  const out = h("div", { class: "timeline", "data-okno": "timeline" });
  let current = null;
  for (const m of items) {
    if (m.conversation_id !== current) {
      current = m.conversation_id;
      const d = dialogs.get(current);
      out.append(h("div", { class: "tl-dialog", "data-okno": "tl-dialog", "data-id": current },
        channelBadge(m.channel_kind),
        h("a", { href: `/c/${current}`, text: `#${current} · ${fmtTime(m.created_at)}`, onclick: (e) => { e.preventDefault(); openTab(current); } }),
        d ? h("span", { class: `pill ${d.status}`, text: d.resolution ? t(`resolution.${d.resolution}`) : t(`status.${d.status}`) }) : null));
    }
    if (m.author_kind === "system") continue;
    out.append(h("div", { class: "tl-msg", "data-okno": "tl-msg" },
      h("span", { class: "tl-who", text: `${m.internal ? `[${t("msg.note")}] ` : ""}${m.author_name || t(`msg.${m.author_kind}`)}: ` }),
      m.text || (m.attachments || []).map((a) => a.filename).join(", ")));
  }
  return out;
}

// ------------------------------------------------------------------ events

function handleEvent(ev) {
  const p = ev.payload || {};
  if (ev.type === "operator.presence_changed") {
    if (p.operator && p.operator.id === ME.id) showPresence(p.operator.status);
    return;
  }
  const id = ev.conversation_id;
  if (id == null) return;
  const before = state.convs.get(id);
  if (p.conversation) {
    const conv = p.conversation;
    const wasMine = before && mine(before);
    upsert(conv);
    if (ev.type === "conversation.created" && conv.status === "waiting") {
      // Routing usually gives a new dialog to someone within a moment; the queue is
      // announced to everyone only when it is still waiting after that.
      state.created.set(id, Date.now());
      setTimeout(() => {
        const now = state.convs.get(id);
        if (now && now.status === "waiting") notify(t("inbox.new_dialog"), `${now.customer.name} · ${channelLabel(now.channel.kind)}`, id);
      }, QUEUE_NOTICE_DELAY_MS);
    } else if (!wasMine && mine(conv) && !recentlyActed(id)) {
      const routed = p.reason === "auto";
      notify(t(routed ? "inbox.new_dialog" : "inbox.handed_to_you"), `${conv.customer.name} · ${channelLabel(conv.channel.kind)}`, id);
    }
  } else if (ev.type === "message.created") {
    const m = p.message;
    const conv = state.convs.get(id);
    if (conv && !m.internal) {
      conv.last_message_preview = m.text || t("inbox.attachment");
      conv.last_message_at = m.created_at;
      if (m.author_kind === "customer") {
        conv.waiting_since = conv.waiting_since || m.created_at;
        const seen = state.active === id && document.visibilityState === "visible";
        if (!seen) conv.unread = (conv.unread || 0) + 1;
        // the first message of a new dialog was announced with the dialog itself
        const announced = Date.now() - (state.created.get(id) || 0) < 3000;
        if (!seen && !announced) notify(conv.customer.name, m.text || t("inbox.attachment"), id);
      } else if (m.author_kind === "operator" || m.author_kind === "bot") conv.waiting_since = null;
      renderInbox();
      renderTabs();
    }
  } else if (ev.type === "conversation.read" && p.reader === "staff") {
    const conv = state.convs.get(id);
    if (conv) {
      conv.unread = p.unread;
      renderInbox();
      renderTabs();
    }
  }
  state.tabs.get(id)?.handle(ev);
}

function recentlyActed(id) {
  return Date.now() - (state.acted.get(id) || 0) < 10_000;
}

// ------------------------------------------------------------------ notifications

let audio = null;
function beep() {
  if (!state.sound) return;
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  } catch {
    /* no audio device: the toast and the notification remain */
  }
}

/** Sound, a browser notification when allowed, and a toast inside the page. */
function notify(title, body, conversationId) {
  state.notifications += 1;
  beep();
  toast(`${title} — ${body}`);
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const n = new Notification(title, { body, tag: `okno-${conversationId}`, renotify: true });
      n.onclick = () => {
        window.focus();
        openTab(conversationId);
        n.close();
      };
    } catch {
      /* some browsers allow notifications only from a service worker */
    }
  }
}

function askNotificationPermission() {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

$("sound").setAttribute("aria-pressed", String(state.sound));
$("sound").addEventListener("click", () => {
  state.sound = !state.sound;
  localStorage.setItem("okno:sound", state.sound ? "on" : "off");
  $("sound").setAttribute("aria-pressed", String(state.sound));
  askNotificationPermission();
});

// ------------------------------------------------------------------ presence

async function loadPresence() {
  try {
    const out = await api("/api/v1/presence");
    const me = out.operators.find((o) => o.user_id === ME.id);
    if (me) showPresence(me.status);
  } catch {
    /* the next presence event brings it */
  }
}

function showPresence(status) {
  const sel = $("presence");
  sel.value = status;
  sel.dataset.status = status;
}

$("presence").addEventListener("change", async (e) => {
  try {
    const out = await api("/api/v1/me/presence", { method: "PUT", body: { status: e.target.value } });
    showPresence(out.status);
  } catch (err) {
    toast(err.text, "error");
  }
});

// ------------------------------------------------------------------ start

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.active) state.tabs.get(state.active)?.markRead();
});
document.addEventListener("click", askNotificationPermission, { once: true });

initFrame();
stream.start();
if (BOOT.open) openTab(BOOT.open);
