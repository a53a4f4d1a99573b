// The supervisor's live board: queues by topic and channel, operators with their status
// and load, every open dialog (opened read-only beside the board, with whispers), and the
// widget's greeting and info message. Redrawn from the board endpoint when events say
// something changed (at most once a second); the clocks tick locally in between.
import {
  $, Stream, api, channelBadge, fmtDuration, fmtTime, h, initFrame, secondsSince,
  setConnState, showFieldErrors, t, toast,
} from "./core.js";
import { DialogView, waitText } from "./dialog.js";

const state = { board: null, fetchedAt: 0, convs: new Map(), viewer: null, timer: null };
window.oknoSupervisor = state;

const stream = new Stream({
  onEvent: handleEvent,
  onReady: () => refresh(),
  onReset: () => refresh(),
  onState: setConnState,
});

function handleEvent(ev) {
  const p = ev.payload || {};
  if (p.conversation) {
    if (p.conversation.status === "closed") state.convs.delete(p.conversation.id);
    else state.convs.set(p.conversation.id, p.conversation);
  }
  if (ev.type.startsWith("conversation.") || ev.type === "operator.presence_changed" || ev.type === "message.created") {
    scheduleRefresh();
  }
  if (state.viewer && ev.conversation_id === state.viewer.conv.id) state.viewer.handle(ev);
}

function scheduleRefresh() {
  if (state.timer) return;
  const wait = Math.max(0, 1000 - (Date.now() - state.fetchedAt));
  state.timer = setTimeout(() => {
    state.timer = null;
    refresh();
  }, wait);
}

async function refresh() {
  state.fetchedAt = Date.now();
  try {
    const [board, open] = await Promise.all([
      api("/api/v1/supervisor/board"),
      api("/api/v1/conversations?status=open&limit=500"),
    ]);
    state.board = board;
    state.boardAt = Date.now();
    state.convs = new Map(open.conversations.map((c) => [c.id, c]));
    render();
  } catch (err) {
    toast(err.text || String(err), "error");
  }
}

/** Seconds the board reported plus the time since it was fetched: the clocks keep going. */
const aged = (seconds) => (seconds ? seconds + (Date.now() - state.boardAt) / 1000 : 0);

function tile(key, value, name, alert = false) {
  return h("div", { class: `tile${alert ? " alert" : ""}`, "data-okno": `tile-${name}` },
    h("div", { class: "v", text: value }), h("div", { class: "k", text: t(key) }));
}

function table(headers, rows, attrs = {}) {
  return h("table", { class: "data", ...attrs },
    h("thead", {}, h("tr", {}, ...headers.map(([label, num]) => h("th", { class: num ? "num" : "", text: label })))),
    h("tbody", {}, ...rows));
}

function queueRows(items, label) {
  return items.map((q) => h("tr", { "data-okno": "queue-row" },
    h("td", {}, label(q)),
    h("td", { class: "num", "data-okno": "q-waiting", text: q.waiting }),
    h("td", { class: "num", "data-okno": "q-longest", text: q.waiting ? fmtDuration(aged(q.longest_wait_seconds)) : "—" }),
    h("td", { class: "num", text: q.in_progress })));
}

function render() {
  const b = state.board;
  if (!b) return;
  const tot = b.totals;
  $("tiles").replaceChildren(
    tile("sup.waiting", tot.waiting, "waiting", tot.waiting > 0),
    tile("sup.longest", tot.waiting ? fmtDuration(aged(tot.longest_wait_seconds)) : "—", "longest", tot.longest_wait_seconds > 120),
    tile("sup.in_progress", tot.in_progress, "in-progress"),
    tile("sup.online", tot.online, "online"),
    tile("sup.on_break", tot.on_break, "on-break"),
  );
  const qHead = (first) => [[first], [t("sup.waiting"), true], [t("sup.longest"), true], [t("sup.in_progress"), true]];
  $("queues").replaceChildren(table(qHead(t("sup.topic")),
    queueRows(b.queues, (q) => q.topic || h("span", { class: "muted", text: t("sup.no_topic") }))));
  $("channels").replaceChildren(table(qHead(t("sup.channel")),
    queueRows(b.channels, (q) => h("span", {}, channelBadge(q.kind), " ", q.name))));
  $("operators").replaceChildren(table(
    [[t("sup.operator")], [t("sup.team")], [t("sup.status")], [t("sup.in_status"), true], [t("sup.dialogs"), true]],
    b.operators.map((o) => h("tr", { "data-okno": "operator-row", "data-user": o.user_id, "data-status": o.status },
      h("td", {}, h("span", { class: "dot", "data-status": o.status, "data-connected": String(o.connected) }), o.name),
      h("td", { text: teamName(o.team_id) }),
      h("td", { "data-okno": "op-status", text: t(`presence.${o.status}`) + (o.connected || o.status === "offline" ? "" : ` (${t("conn.offline")})`) }),
      h("td", { class: "num", "data-okno": "op-since", "data-since": o.since, text: fmtDuration(secondsSince(o.since)) }),
      h("td", { class: "num", "data-okno": "op-dialogs", text: `${o.open_dialogs} / ${o.capacity}` }),
    ))));
  renderOpenDialogs();
  $("updated").textContent = fmtTime(b.generated_at);
}

function teamName(id) {
  const team = (state.board.teams || []).find((x) => x.team_id === id);
  return team ? team.name : "—";
}

function renderOpenDialogs() {
  const rows = [...state.convs.values()]
    .sort((a, b) => new Date(a.waiting_since || a.created_at) - new Date(b.waiting_since || b.created_at))
    .map((c) => h("tr", {
      "data-okno": "open-dialog", "data-id": c.id, "data-clickable": "",
      onclick: () => openViewer(c.id),
    },
      h("td", {}, channelBadge(c.channel.kind), " ", c.customer.name),
      h("td", {}, h("span", { class: `pill ${c.status}`, text: t(`status.${c.status}`) })),
      h("td", { text: c.assignee ? c.assignee.name : "—" }),
      h("td", { text: c.topic || "" }),
      h("td", { class: "num", "data-okno": "wait", text: waitText(c) }),
    ));
  $("open-dialogs").replaceChildren(table(
    [[t("card.title")], [t("sup.status")], [t("sup.operator")], [t("sup.topic")], [t("inbox.waits"), true]], rows));
}

async function openViewer(id) {
  let conv = state.convs.get(id);
  try {
    conv = await api(`/api/v1/conversations/${id}`);
  } catch (err) {
    toast(err.text, "error");
    return;
  }
  const view = new DialogView(conv, {
    mode: "observer",
    stream,
    onCloseTab: () => {
      $("viewer").hidden = true;
      state.viewer = null;
    },
  });
  state.viewer = view;
  $("viewer").replaceChildren(view.el);
  $("viewer").hidden = false;
  view.setVisible(true);
  await view.load();
}

// ------------------------------------------------------------------ widget texts

async function renderWidgetTexts() {
  let channels;
  try {
    channels = (await api("/api/v1/channels")).channels.filter((c) => c.kind === "widget");
  } catch (err) {
    $("widget-texts").replaceChildren(h("div", { class: "muted", text: err.text }));
    return;
  }
  $("widget-texts").replaceChildren(...channels.map(widgetForm));
}

function widgetForm(ch) {
  const field = (name, label) => h("label", { class: "field wide" }, label,
    h("textarea", { name, rows: 2, maxlength: 1000, "data-okno": `widget-${name.replace("_", "-")}`, value: ch.config[name] || "" }),
    h("span", { class: "field-error", "data-error-for": name }));
  const form = h("form", { class: "form", "data-okno": "widget-texts-form", "data-channel": ch.id },
    h("strong", { class: "wide", text: ch.name }),
    field("greeting", t("field.greeting")),
    field("info_message", t("field.info_message")),
    h("div", { class: "buttons" }, h("button", { class: "btn btn-primary", type: "submit", text: t("common.save") }),
      h("span", { class: "form-error", "data-okno": "form-error" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showFieldErrors(form, null);
    try {
      await api(`/api/v1/channels/${ch.id}`, {
        method: "PATCH",
        body: { greeting: form.elements.greeting.value, info_message: form.elements.info_message.value },
      });
      toast(t("common.saved"));
    } catch (err) {
      showFieldErrors(form, err);
    }
  });
  return form;
}

// ------------------------------------------------------------------ start

setInterval(() => {
  if (!state.board) return;
  for (const el of document.querySelectorAll("[data-okno=op-since]")) el.textContent = fmtDuration(secondsSince(el.dataset.since));
  for (const row of document.querySelectorAll("[data-okno=open-dialog]")) {
    const c = state.convs.get(Number(row.dataset.id));
    if (c) row.querySelector("[data-okno=wait]").textContent = waitText(c);
  }
}, 1000);
setInterval(() => scheduleRefresh(), 15000); // and a slow poll, for waits that only age

initFrame();
stream.start();
renderWidgetTexts();
