// One dialog on screen: header with actions, the message list (newest page first, earlier
// pages on demand), typing line and composer. The workspace keeps one per open tab; the
// supervisor board uses one in "observer" mode (read-only, whispers only).
import {
  ME, api, can, channelLabel, fmtDay, fmtDuration, fmtTime, h, secondsSince, t, toast, uuid,
} from "./core.js";

const PAGE = 60;
const END = Number.MAX_SAFE_INTEGER; // "before the end": the newest page
const TYPING_SHOW_MS = 6000;
const TYPING_SEND_EVERY_MS = 2500;
const DRAFT_KEY = (id) => `okno:draft:${ME && ME.id}:${id}`;
// What a message's mark shows: sending states "…", ✓ sent, ✓✓ delivered or read (read in
// the accent colour); a messenger that refused it says so in words, not with a sign.
const MARKS = { pending: "…", queued: "…", sending: "…", sent: "✓", delivered: "✓✓", read: "✓✓", waiting: "⏳", failed: "!" };
const markText = (status) => (status === "undelivered" ? `✕ ${t("msg.status.undelivered")}` : MARKS[status] || "");

// Takes colleagues' dialogs, closes or transfers what others serve (senior operators too).
export const isSupervisor = () => can("conversations.reassign");

// Files okno does not serve, and what the operator reads instead of a link.
const SCAN_NOTES = { blocked: "attachment.blocked", failed: "attachment.failed", pending: "attachment.pending" };

function attachmentNode(a) {
  if (SCAN_NOTES[a.scan_status]) {
    // no link: okno refuses the download (403 blocked or never checked, 409 until scanned)
    const held = a.scan_status === "pending";
    return h("span", {
      class: `file ${held ? "held" : "blocked"}`,
      "data-okno": "attachment",
      "data-scan": a.scan_status,
      "data-attachment-id": a.id,
      title: a.scan_status === "blocked" && a.scan_signature ? a.scan_signature : null,
    }, h("span", { class: "pill", text: held ? "…" : "⛔" }), a.filename, " — ",
    h("span", { class: "scan-note", text: t(SCAN_NOTES[a.scan_status]) }));
  }
  if (a.content_type.startsWith("image/")) {
    return h("a", { href: a.url, target: "_blank", rel: "noopener" }, h("img", { src: a.url, alt: a.filename }));
  }
  const pill = a.content_type.startsWith("audio/") ? "♪" : a.content_type.startsWith("video/") ? "▶" : "PDF";
  return h("a", { class: "file", href: a.url, target: "_blank", rel: "noopener" }, h("span", { class: "pill", text: pill }), a.filename);
}

/** What a bot step offered (its buttons) and what the customer shared (a location, a
 *  pressed button), for the operator reading the transcript; never clickable here. */
function metaNode(meta) {
  if (!meta || typeof meta !== "object") return null;
  const parts = [];
  if (Array.isArray(meta.buttons) && meta.buttons.length) {
    parts.push(h("div", { class: "meta-buttons", "data-okno": "msg-buttons" },
      ...meta.buttons.map((b) => h("span", { class: "meta-button", text: String(b.label ?? "") }))));
  }
  if (meta.location && typeof meta.location.lat === "number") {
    parts.push(h("div", { class: "meta-note", "data-okno": "msg-location", text: t("msg.location", { lat: meta.location.lat.toFixed(5), lon: meta.location.lon.toFixed(5) }) }));
  }
  if (meta.button) parts.push(h("div", { class: "meta-note", text: t("msg.pressed") }));
  return parts.length ? h("div", { class: "meta" }, ...parts) : null;
}

export class DialogView {
  /**
   * conv: ConversationOut; mode: "operator" | "observer"; stream: Stream (typing out);
   * onChange(conv): the dialog changed after an action (the inbox re-sorts).
   */
  constructor(conv, { mode = "operator", stream, onChange, onCloseTab, onAct } = {}) {
    this.onAct = onAct || (() => {});
    this.conv = conv;
    this.mode = mode;
    this.stream = stream;
    this.onChange = onChange || (() => {});
    this.onCloseTab = onCloseTab;
    this.messages = new Map(); // id -> MessageOut
    this.pending = new Map(); // client_msg_id -> {text, internal, failed}
    this.oldestSeq = null;
    this.hasEarlier = false;
    this.lastTypingSent = 0;
    this.typingTimer = null;
    this.readSent = 0;
    this.deliveryLive = new Map(); // message id -> newest status from message.delivery events
    this.suggestions = []; // reply suggestions on show (ReplySuggestionOut)
    // the one put into the composer (kept when newer chips come: the text is still
    // from it); the send records what became of it
    this.suggestionId = null;
    // The customer verification of this dialog (VerificationStateOut) and the messages
    // shown unmasked after a "Показать" (id -> UnmaskedOut): personal data is masked in
    // everything staff receive; only a verified dialog lets an allowed role see it.
    this.verification = null;
    this.unmasked = new Map();
    this.el = h("div", { class: "dialog", "data-okno": "dialog-view", "data-conversation": conv.id });
    this.build();
  }

  // ---------------------------------------------------------------- layout

  build() {
    const c = this.conv;
    this.head = h("div", { class: "dialog-head" });
    this.fields = h("div", { class: "dialog-fields" });
    this.verifyBox = h("div", { class: "verify", "data-okno": "verification" });
    this.banner = h("div", { class: "banner", hidden: true, "data-okno": "banner" });
    this.earlier = h("button", {
      class: "btn btn-small", type: "button", hidden: true, text: t("common.load_earlier"),
      "data-okno": "load-earlier", onclick: () => this.loadEarlier(),
    });
    this.list = h("div", { class: "messages", "data-okno": "messages", "aria-live": "polite" }, this.earlier);
    this.typing = h("div", { class: "typing", "data-okno": "typing" });
    this.composer = this.buildComposer();
    this.el.append(this.head, this.fields, this.verifyBox, this.banner, this.list, this.typing, this.composer);
    this.renderHead();
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < 40 && this.hasEarlier && !this.loadingEarlier) this.loadEarlier();
    });
    this.restoreDraft(c.id);
  }

  renderHead() {
    const c = this.conv;
    const mine = c.assignee && c.assignee.id === ME.id;
    const actions = h("div", { class: "actions" });
    const add = (label, name, fn, cls = "btn") =>
      actions.append(h("button", { class: cls, type: "button", text: label, "data-okno": name, onclick: fn }));
    if (this.mode === "operator") {
      if (c.status === "waiting" || (c.status === "assigned" && !mine && isSupervisor())) {
        add(t("dialog.take"), "take", () => this.act("assign", {}), "btn btn-primary");
      }
      if (c.status !== "closed" && (mine || isSupervisor() || c.status === "waiting")) {
        add(t("dialog.transfer"), "transfer", () => this.transferDialog());
        add(t("dialog.close"), "close", () => this.closeDialog(), "btn btn-danger");
      }
      if (c.status === "closed") add(t("dialog.reopen"), "reopen", () => this.act("reopen"));
    }
    if (isSupervisor()) add(t("why.button"), "why-assigned", () => this.whyAssigned(), "btn btn-small");
    if (can("exports.create")) {
      actions.append(h("a", { class: "btn btn-small", "data-okno": "transcript", download: `dialog-${c.id}.txt`, href: `/api/v1/conversations/${c.id}/transcript`, text: t("dialog.transcript") }));
    }
    if (this.onCloseTab) {
      actions.append(h("button", { class: "btn-icon", type: "button", title: t("common.close"), text: "✕", onclick: () => this.onCloseTab() }));
    }
    const meta = h("div", { class: "meta" },
      h("span", { class: `pill ${c.status}`, "data-okno": "dialog-status", "data-status": c.status, text: t(`status.${c.status}`) }),
      h("span", { text: channelLabel(c.channel.kind) + " · " + c.channel.name }),
      h("span", { "data-okno": "assignee", text: `${t("dialog.assignee")}: ${c.assignee ? c.assignee.name : t("dialog.nobody")}` }),
      c.rating ? h("span", { "data-okno": "rating", text: `${t("dialog.rating")}: ${"★".repeat(c.rating)}` }) : null,
    );
    this.head.replaceChildren(h("h2", { "data-okno": "dialog-customer", text: c.customer.name }), meta, actions);

    this.renderFields();
    this.renderBanner();
    this.renderComposerState();
    this.renderVerification();
  }

  /** Topic and tags. The inputs are made once and then only brought up to date: the
   * answer to saving one field re-renders the dialog, and rebuilding the inputs then
   * wiped what the operator had meanwhile typed into the other (lost tags). A field the
   * operator is editing keeps their text; it is saved on its own change. */
  renderFields() {
    const c = this.conv;
    const editable = this.mode === "operator" && c.status !== "closed";
    const shown = { topic: c.topic || "", tags: (c.tags || []).join(", ") };
    if (!this.topicInput) {
      this.topicInput = h("input", { "data-okno": "topic", list: "okno-topics", size: 14 });
      this.tagsInput = h("input", { "data-okno": "tags", size: 22 });
      for (const input of [this.topicInput, this.tagsInput]) {
        input.value = input === this.topicInput ? shown.topic : shown.tags;
        input.dataset.saved = input.value;
        input.addEventListener("change", () => this.saveFields());
        input.addEventListener("keydown", (e) => e.key === "Enter" && input.blur());
      }
      this.fields.replaceChildren(
        h("label", {}, t("dialog.topic"), this.topicInput),
        h("label", {}, t("dialog.tags"), this.tagsInput),
      );
    }
    for (const [input, value] of [[this.topicInput, shown.topic], [this.tagsInput, shown.tags]]) {
      const editing = document.activeElement === input || input.value !== input.dataset.saved;
      if (!editing) input.value = value;
      input.dataset.saved = value;
      input.disabled = !editable;
    }
  }

  /** Only the field that changed is sent: two saves in flight (topic, then tags right
   * after) must not overwrite each other with what the other field held before. */
  saveFields() {
    const c = this.conv;
    const body = {};
    const newTopic = this.topicInput.value.trim();
    const newTags = this.tagsInput.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (newTopic !== (c.topic || "")) body.topic = newTopic;
    if (newTags.join(",") !== (c.tags || []).join(",")) body.tags = newTags;
    if (Object.keys(body).length) this.act("patch", body);
  }

  // ---------------------------------------------------------------- verification

  async loadVerification() {
    try {
      this.verification = await api(`/api/v1/conversations/${this.conv.id}/verification`);
    } catch {
      this.verification = null;
      return;
    }
    this.renderVerification();
    this.renderMessages(false);
  }

  /** Verified now (the server said so, and the time has not run out since). */
  isVerified() {
    const cur = this.verification && this.verification.current;
    return !!cur && cur.status === "verified" && !!cur.verified_until && new Date(cur.verified_until) > new Date();
  }

  mayUnmaskNow() {
    return !!this.verification && this.verification.may_unmask && this.isVerified();
  }

  verificationText() {
    const cur = this.verification && this.verification.current;
    if (!cur) return t("verify.none");
    if (cur.status === "verified") return this.isVerified() ? t("verify.verified", { time: fmtTime(cur.verified_until) }) : t("verify.expired");
    const texts = {
      awaiting_answer: () => t("verify.awaiting_answer"),
      checking: () => t("verify.checking"),
      failed: () => t("verify.failed"),
      cancelled: () => t("verify.cancelled"),
    };
    const text = (texts[cur.status] || texts.cancelled)();
    // after a wrong answer the customer may try again: say how many tries are left
    return cur.status === "awaiting_answer" && cur.reason === "wrong_answer"
      ? `${text} · ${t("verify.attempts_left", { count: cur.attempts_left })}`
      : text;
  }

  renderVerification() {
    if (!this.verifyBox) return;
    const v = this.verification;
    if (!v || !v.available) {
      this.verifyBox.replaceChildren();
      this.verifyBox.hidden = true;
      return;
    }
    this.verifyBox.hidden = false;
    const cur = v.current;
    const status = cur ? (cur.status === "verified" && !this.isVerified() ? "expired" : cur.status) : "none";
    const pill = h("span", { class: `pill verify-${status}`, "data-okno": "verification-state", "data-status": status, text: this.verificationText() });
    const parts = [pill];
    if (this.mode === "operator" && this.conv.status !== "closed") {
      const method = h("select", { name: "method", "data-okno": "verify-method" },
        h("option", { value: "secret_word", text: t("verify.secret_word") }),
        h("option", { value: "one_time_code", text: t("verify.one_time_code") }));
      const bankId = h("input", { name: "bank_customer_id", maxlength: 100, size: 16, placeholder: t("verify.bank_id"), "data-okno": "verify-bank-id" });
      const form = h("form", { class: "verify-form", hidden: true, "data-okno": "verify-form" }, method, bankId,
        h("button", { class: "btn btn-small btn-primary", type: "submit", "data-okno": "verify-start", text: t("verify.start") }));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.startVerification(method.value, bankId.value.trim());
      });
      const label = cur && cur.status !== "cancelled" ? t("verify.again") : t("verify.button");
      parts.push(h("button", { class: "btn btn-small", type: "button", "data-okno": "verify-open", text: label, onclick: () => { form.hidden = !form.hidden; } }), form);
    }
    this.verifyBox.replaceChildren(...parts);
  }

  async startVerification(method, bankId) {
    try {
      const body = { method, ...(bankId ? { bank_customer_id: bankId } : {}) };
      const started = await api(`/api/v1/conversations/${this.conv.id}/verification`, { method: "POST", body });
      this.verification = { ...this.verification, current: started, verified: false };
      this.renderVerification();
      this.renderMessages(false);
    } catch (err) {
      toast(err.text || String(err), "error");
    }
  }

  async unmask(m) {
    try {
      const raw = await api(`/api/v1/conversations/${this.conv.id}/messages/${m.id}/unmask`, { method: "POST" });
      this.unmasked.set(m.id, raw);
      this.renderMessages(false);
    } catch (err) {
      toast(err.text || String(err), "error");
      if (err.code === "verification_required") this.loadVerification();
    }
  }

  renderBanner() {
    const c = this.conv;
    let text = "";
    if (c.status === "closed") {
      text = t("dialog.closed_banner", { resolution: t(`resolution.${c.resolution || "resolved"}`) });
    } else if (this.mode === "observer") text = t("dialog.read_only");
    this.banner.textContent = text;
    this.banner.hidden = !text;
  }

  buildComposer() {
    const observer = this.mode === "observer";
    this.input = h("textarea", {
      "data-okno": "reply", rows: 3,
      placeholder: observer ? t("composer.whisper_placeholder") : t("composer.placeholder"),
    });
    this.noteBox = h("input", { type: "checkbox", "data-okno": "note-toggle", checked: observer, disabled: observer });
    this.fileInput = h("input", { type: "file", hidden: true, accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf,.ogg,.oga,.opus,.mp3,.m4a,.mp4", "data-okno": "file" });
    this.pop = h("ul", { class: "templates-pop", hidden: true, role: "listbox", "data-okno": "templates" });
    const sendBtn = h("button", { class: "btn btn-primary", type: "button", "data-okno": "send", text: observer ? t("sup.whisper") : t("composer.send"), onclick: () => this.send() });
    this.chips = h("div", { class: "suggestions", role: "group", "aria-label": t("suggest.label"), "data-okno": "suggestions", hidden: true });
    const box = h("div", { class: "composer", "data-okno": "composer", "data-note": String(observer) },
      this.pop,
      this.chips,
      this.input,
      h("div", { class: "row" },
        observer ? null : h("label", { class: "note-toggle" }, this.noteBox, t("composer.note")),
        observer ? null : h("button", { class: "btn-icon", type: "button", title: t("composer.attach"), "data-okno": "attach", text: t("composer.file"), onclick: () => this.fileInput.click() }),
        this.fileInput,
        h("span", { class: "spacer" }),
        sendBtn,
      ),
    );
    this.noteBox.addEventListener("change", () => {
      box.dataset.note = String(this.noteBox.checked);
      this.input.placeholder = this.noteBox.checked ? t("composer.note_placeholder") : t("composer.placeholder");
    });
    this.fileInput.addEventListener("change", () => {
      const f = this.fileInput.files[0];
      this.fileInput.value = "";
      if (f) this.sendFile(f);
    });
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.onInput());
    return box;
  }

  renderComposerState() {
    const closed = this.conv.status === "closed";
    const noteOnly = this.mode === "observer";
    this.input.disabled = closed && !noteOnly && !this.noteBox.checked;
    if (closed && this.mode === "operator") {
      this.noteBox.checked = true;
      this.composer.dataset.note = "true";
      this.input.disabled = false;
      this.input.placeholder = t("composer.note_placeholder");
    }
  }

  // ---------------------------------------------------------------- messages

  async load() {
    const data = await api(`/api/v1/conversations/${this.conv.id}/messages?before_seq=${END}&limit=${PAGE}`);
    this.hasEarlier = data.has_more ?? data.messages.length >= PAGE;
    for (const m of data.messages) this.messages.set(m.id, m);
    this.renderMessages(true);
    this.markRead();
    this.loadSuggestions();
    this.loadVerification();
  }

  async loadEarlier() {
    if (this.oldestSeq == null) return;
    this.loadingEarlier = true;
    try {
      const data = await api(`/api/v1/conversations/${this.conv.id}/messages?before_seq=${this.oldestSeq}&limit=${PAGE * 2}`);
      this.hasEarlier = data.has_more ?? data.messages.length >= PAGE * 2;
      const before = this.list.scrollHeight - this.list.scrollTop;
      for (const m of data.messages) this.messages.set(m.id, m);
      this.renderMessages(false);
      this.list.scrollTop = this.list.scrollHeight - before; // keep the reader's place
    } finally {
      this.loadingEarlier = false;
    }
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.id - b.id);
  }

  statusOf(m) {
    if (m.internal) return null;
    // A messenger's customer: what the platform said (the newest event wins over the row
    // we hold, which a slower response may have brought in after the event).
    const delivery = this.deliveryLive.get(m.id) || m.delivery;
    if (delivery) return delivery === "failed" ? "undelivered" : delivery;
    if (m.author_kind !== "operator") return null;
    if (m.seq != null && m.seq <= (this.conv.customer_read_seq || 0)) return "read";
    return "sent";
  }

  messageNode(m, status) {
    const who = m.internal
      ? `${m.author_name || ""} · ${t("msg.note")}`
      : m.author_kind === "system" ? ""
        : m.author_kind === "customer" ? this.conv.customer.name // the name as the card has it now
          : m.author_name || t(`msg.${m.author_kind}`);
    const raw = m.id != null ? this.unmasked.get(m.id) : null;
    const node = h("div", {
      class: "msg", "data-okno": "message", "data-author": m.author_kind, "data-internal": String(!!m.internal),
      "data-id": m.id ?? "", "data-status": status || "", "data-masked": String(!!m.masked && !raw),
    },
      who ? h("div", { class: "who" }, h("span", { text: who })) : null,
      m.text || raw ? h("div", { class: "text", "data-okno": "msg-text", text: raw ? raw.text : m.text }) : null,
      metaNode(m.meta),
      ...(m.attachments || []).map((a) => attachmentNode(raw ? { ...a, filename: (raw.attachments.find((r) => r.id === a.id) || a).filename } : a)),
      h("div", { class: "foot" },
        m.masked && !raw ? h("span", { class: "masked-note", "data-okno": "masked-note", text: t("msg.masked") }) : null,
        m.masked && !raw && m.id && this.mayUnmaskNow()
          ? h("button", { class: "btn-link", type: "button", "data-okno": "unmask", title: t("msg.unmask_title"), text: t("msg.unmask"), onclick: () => this.unmask(m) })
          : null,
        h("span", { text: fmtTime(m.created_at) }),
        status ? h("span", { class: "status", "data-okno": "msg-status", "data-status": status, title: t(`msg.status.${status}`), text: markText(status) }) : null,
      ),
    );
    return node;
  }

  renderMessages(scrollToEnd) {
    const atEnd = scrollToEnd || this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    const nodes = [];
    let day = "";
    const all = this.sorted();
    this.oldestSeq = all.length ? all[0].seq : null;
    for (const m of all) {
      const d = new Date(m.created_at).toDateString();
      if (d !== day) {
        day = d;
        nodes.push(h("div", { class: "day-sep", text: fmtDay(m.created_at) }));
      }
      nodes.push(this.messageNode(m, this.statusOf(m)));
    }
    for (const [cid, p] of this.pending) {
      const node = this.messageNode(
        { author_kind: "operator", author_name: ME.name, text: p.text, internal: p.internal, created_at: p.at, attachments: [] },
        p.failed ? "failed" : "pending",
      );
      node.dataset.clientMsgId = cid;
      if (p.failed) node.addEventListener("click", () => this.retry(cid));
      nodes.push(node);
    }
    this.earlier.hidden = !this.hasEarlier;
    this.list.replaceChildren(this.earlier, ...nodes);
    if (atEnd) this.list.scrollTop = this.list.scrollHeight;
  }

  /** Append one message without re-rendering the list (the hot path for live traffic). */
  appendMessage(m) {
    if (this.messages.has(m.id)) return;
    this.messages.set(m.id, m);
    const last = this.sorted().at(-1);
    if (last !== m || (m.client_msg_id && this.pending.has(m.client_msg_id))) {
      this.pending.delete(m.client_msg_id);
      this.renderMessages(false);
      return;
    }
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    this.list.append(this.messageNode(m, this.statusOf(m)));
    if (atEnd || m.author_kind === "operator") this.list.scrollTop = this.list.scrollHeight;
  }

  /** The antivirus decided on files shown as "being checked": swap in the verdict. */
  applyScan(p) {
    const m = this.messages.get(p.message_id);
    if (!m || !Array.isArray(p.attachments)) return;
    const verdicts = new Map(p.attachments.map((a) => [a.id, a]));
    m.attachments = (m.attachments || []).map((a) => (verdicts.has(a.id) ? { ...a, ...verdicts.get(a.id) } : a));
    this.renderMessages(false);
  }

  refreshStatuses() {
    for (const node of this.list.querySelectorAll("[data-okno=message][data-id]")) {
      const m = this.messages.get(Number(node.dataset.id));
      if (!m) continue;
      const status = this.statusOf(m);
      if (!status || node.dataset.status === status) continue;
      let el = node.querySelector("[data-okno=msg-status]");
      if (!el) {
        el = h("span", { class: "status", "data-okno": "msg-status" });
        node.querySelector(".foot")?.append(el);
      }
      node.dataset.status = status;
      el.dataset.status = status;
      el.title = t(`msg.status.${status}`);
      el.textContent = markText(status);
    }
  }

  // ---------------------------------------------------------------- live events

  /** An event for this dialog; returns nothing, updates the screen. */
  handle(ev) {
    if (ev.type === "message.created") {
      const m = ev.payload.message;
      this.appendMessage(m);
      if (m.author_kind === "customer") {
        this.showTyping("");
        this.markRead();
        this.loadSuggestions();
      } else if (m.author_kind === "operator") {
        this.showTyping("");
        if (!m.internal) this.clearSuggestions(); // answered (here or by a colleague)
      }
    } else if (ev.type === "typing.started") {
      const p = ev.payload || {};
      if (p.who === "customer") this.showTyping(t("dialog.typing_customer"));
      else if (p.user_id !== ME.id) this.showTyping(t("dialog.typing_staff", { name: p.name || "" }));
    } else if (ev.type === "attachment.scanned") {
      this.applyScan(ev.payload || {});
    } else if (ev.type === "message.delivery") {
      // sent, delivered, read or not delivered, as the messenger reported it
      this.deliveryLive.set(ev.payload.message_id, ev.payload.status);
      this.refreshStatuses();
    } else if (ev.type === "conversation.read") {
      if (ev.payload.reader === "customer") {
        this.conv.customer_read_seq = Math.max(this.conv.customer_read_seq || 0, ev.payload.up_to_seq);
        this.refreshStatuses();
      }
    } else if (ev.type === "verification.updated") {
      const cur = ev.payload.verification;
      this.verification = { ...(this.verification || { available: true, may_unmask: false }), current: cur, verified: cur.verified };
      this.renderVerification();
      this.renderMessages(false);
    } else if (ev.payload && ev.payload.conversation) {
      this.update(ev.payload.conversation);
    }
  }

  update(conv) {
    const readSeq = Math.max(this.conv.customer_read_seq || 0, conv.customer_read_seq || 0);
    const renamed = conv.customer.name !== this.conv.customer.name;
    const couldSuggest = this.maySuggest();
    this.conv = { ...conv, customer_read_seq: readSeq };
    this.renderHead();
    if (renamed) this.renderMessages(false);
    if (!this.maySuggest()) this.clearSuggestions();
    else if (!couldSuggest) this.loadSuggestions();
  }

  showTyping(text) {
    clearTimeout(this.typingTimer);
    this.typing.textContent = text;
    if (text) this.typingTimer = setTimeout(() => (this.typing.textContent = ""), TYPING_SHOW_MS);
  }

  /** Tell the server what we have seen (unread counters, the customer's "read" ticks). */
  markRead() {
    if (this.mode !== "operator" || !this.visible || document.visibilityState !== "visible") return;
    const last = this.sorted().filter((m) => m.seq != null).at(-1);
    if (!last || last.seq <= this.readSent) return;
    this.readSent = last.seq;
    api(`/api/v1/conversations/${this.conv.id}/read`, { method: "POST", body: { up_to_seq: last.seq } })
      .then((conv) => conv && this.onChange(conv))
      .catch(() => (this.readSent = 0));
  }

  setVisible(visible) {
    this.visible = visible;
    this.el.hidden = !visible;
    if (visible) {
      this.markRead();
      requestAnimationFrame(() => this.input.focus());
    }
  }

  // ---------------------------------------------------------------- composer

  get draftKey() {
    return DRAFT_KEY(this.conv.id);
  }

  restoreDraft() {
    if (this.mode !== "operator") return;
    this.input.value = localStorage.getItem(this.draftKey) || "";
  }

  get hasDraft() {
    return this.input.value.trim() !== "";
  }

  onInput() {
    if (this.suggestionId != null && !this.input.value.trim()) this.pickSuggestion(null);
    if (this.mode === "operator") {
      if (this.input.value) localStorage.setItem(this.draftKey, this.input.value);
      else localStorage.removeItem(this.draftKey);
    }
    const v = this.input.value;
    const slash = v.match(/(?:^|\s)\/([\w\-а-яё]*)$/i);
    if (slash && !this.noteBox.checked) this.searchTemplates(slash[1]);
    else this.hideTemplates();
    const now = Date.now();
    if (v.trim() && now - this.lastTypingSent > TYPING_SEND_EVERY_MS) {
      this.lastTypingSent = now;
      this.stream?.send({ type: "typing", conversation_id: this.conv.id, internal: this.noteBox.checked });
    }
    this.onDraft?.();
  }

  onKey(e) {
    if (!this.pop.hidden) {
      const items = [...this.pop.querySelectorAll("li[data-id]")];
      let i = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        i = (i + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach((li, j) => li.setAttribute("aria-selected", String(j === i)));
        return;
      }
      if ((e.key === "Enter" || e.key === "Tab") && items[i]) {
        e.preventDefault();
        this.useTemplate(Number(items[i].dataset.id));
        return;
      }
      if (e.key === "Escape") {
        this.hideTemplates();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.send();
    }
  }

  async searchTemplates(q) {
    const token = (this.templateQuery = q);
    let data;
    try {
      data = await api(`/api/v1/saved-replies?q=${encodeURIComponent(q)}&limit=8`);
    } catch {
      return;
    }
    if (token !== this.templateQuery) return; // a newer keystroke won
    const items = data.saved_replies.slice(0, 8);
    this.pop.replaceChildren(
      ...(items.length
        ? items.map((r, i) => h("li", {
          "data-id": r.id, "data-okno": "template", role: "option", "aria-selected": String(i === 0),
          onmousedown: (e) => { e.preventDefault(); this.useTemplate(r.id); },
        }, h("div", {}, h("span", { class: "shortcut", text: "/" + r.shortcut }), h("span", { text: r.title })), h("div", { class: "body", text: r.body })))
        : [h("li", { class: "muted", text: t("composer.no_templates") })]),
    );
    this.pop.hidden = false;
  }

  hideTemplates() {
    this.templateQuery = null;
    this.pop.hidden = true;
  }

  /** Replace the "/shortcut" being typed with the template, its placeholders filled in. */
  async useTemplate(id) {
    this.hideTemplates();
    try {
      const out = await api(`/api/v1/saved-replies/${id}/render`, { method: "POST", body: { conversation_id: this.conv.id } });
      this.input.value = this.input.value.replace(/(^|\s)\/[\w\-а-яё]*$/i, (_, pre) => pre) + out.text;
      this.onInput();
      this.input.focus();
    } catch (err) {
      toast(err.text || String(err), "error");
    }
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    const internal = this.mode === "observer" || this.noteBox.checked;
    const cid = uuid();
    const suggestionId = internal ? null : this.suggestionId;
    this.pending.set(cid, { text, internal, suggestionId, at: new Date().toISOString(), failed: false });
    if (!internal) this.clearSuggestions();
    this.input.value = "";
    localStorage.removeItem(this.draftKey);
    this.onDraft?.();
    this.hideTemplates();
    this.renderMessages(true);
    await this.deliver(cid);
  }

  async deliver(cid) {
    const p = this.pending.get(cid);
    if (!p) return;
    this.onAct();
    try {
      const out = await api(`/api/v1/conversations/${this.conv.id}/messages`, {
        method: "POST",
        body: { client_msg_id: cid, text: p.text, internal: p.internal, ...(p.suggestionId != null ? { suggestion_id: p.suggestionId } : {}) },
      });
      this.pending.delete(cid);
      this.messages.set(out.message.id, out.message);
      this.renderMessages(true);
      if (!p.internal && this.conv.status === "waiting") this.refresh();
    } catch (err) {
      if (err.status && err.status < 500 && err.status !== 429) {
        // refused for good (closed, taken by someone else): give the text back
        this.pending.delete(cid);
        if (!this.input.value) this.input.value = p.text;
        toast(err.text, "error");
      } else p.failed = true;
      this.renderMessages(true);
    }
  }

  retry(cid) {
    const p = this.pending.get(cid);
    if (!p) return;
    p.failed = false;
    this.renderMessages(false);
    this.deliver(cid); // the same client_msg_id: the server stores it once
  }

  async sendFile(file) {
    const form = new FormData();
    form.append("file", file);
    form.append("client_msg_id", uuid());
    form.append("internal", String(this.noteBox.checked));
    try {
      const out = await api(`/api/v1/conversations/${this.conv.id}/attachments`, { method: "POST", form });
      this.appendMessage(out.message);
    } catch (err) {
      toast(err.text, "error");
    }
  }

  // ---------------------------------------------------------------- reply suggestions

  /** Chips are for whoever answers: not for observers, closed dialogs or a colleague's. */
  maySuggest() {
    const c = this.conv;
    return this.mode === "operator" && c.status !== "closed" && (!c.assignee || c.assignee.id === ME.id);
  }

  /** Ask for the replies offered to the newest customer message (a newer ask wins). */
  async loadSuggestions() {
    if (!this.maySuggest()) return;
    const token = (this.suggestToken = (this.suggestToken || 0) + 1);
    let data;
    try {
      data = await api(`/api/v1/conversations/${this.conv.id}/reply-suggestions`);
    } catch {
      return; // a help, not a must: the operator writes as always
    }
    if (token !== this.suggestToken || !this.maySuggest()) return;
    this.suggestions = data.answered ? [] : data.suggestions.filter((s) => s.outcome == null);
    this.renderSuggestions();
  }

  clearSuggestions() {
    this.suggestToken = (this.suggestToken || 0) + 1; // an answer on its way is stale now
    this.suggestions = [];
    this.suggestionId = null;
    this.renderSuggestions();
  }

  renderSuggestions() {
    const chips = this.suggestions.map((s) => {
      const kb = s.source === "kb";
      return h("div", { class: "chip", "data-okno": "suggestion", "data-id": s.id, "data-source": s.source, "data-picked": String(s.id === this.suggestionId) },
        h("button", {
          type: "button", class: "chip-use", "data-okno": "suggestion-use", title: s.text,
          "aria-pressed": String(s.id === this.suggestionId),
          onclick: () => this.useSuggestion(s),
        },
          h("span", { class: "chip-source", "data-okno": "suggestion-source", text: t(kb ? "suggest.kb" : "suggest.history") }),
          h("span", { class: "chip-text", text: s.text })),
        h("button", {
          type: "button", class: "chip-x", "data-okno": "suggestion-reject", text: "×",
          title: t("suggest.reject"), "aria-label": t("suggest.reject"),
          onclick: () => this.rejectSuggestion(s),
        }));
    });
    this.chips.replaceChildren(...chips);
    this.chips.hidden = !chips.length;
  }

  pickSuggestion(id) {
    this.suggestionId = id;
    for (const chip of this.chips.querySelectorAll("[data-okno=suggestion]")) {
      const on = Number(chip.dataset.id) === id;
      chip.dataset.picked = String(on);
      chip.querySelector("[data-okno=suggestion-use]").setAttribute("aria-pressed", String(on));
    }
  }

  /** Put the suggestion into the composer to edit or send; the send records which it was.
   *  It replaces another suggestion's text, and follows what the operator typed himself
   *  (a greeting stays in front of it). */
  useSuggestion(s) {
    if (this.noteBox.checked) {
      this.noteBox.checked = false;
      this.noteBox.dispatchEvent(new Event("change"));
    }
    const own = this.suggestionId == null ? this.input.value.trim() : "";
    this.input.value = own ? `${own} ${s.text}` : s.text;
    this.pickSuggestion(s.id);
    this.onInput();
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  async rejectSuggestion(s) {
    this.suggestions = this.suggestions.filter((x) => x.id !== s.id);
    if (this.suggestionId === s.id) this.pickSuggestion(null);
    const next = this.chips.querySelector(`[data-okno=suggestion][data-id="${s.id}"]`)?.nextElementSibling;
    this.renderSuggestions();
    (next && this.chips.querySelector(`[data-okno=suggestion][data-id="${next.dataset.id}"] [data-okno=suggestion-use]`) || this.input).focus();
    try {
      await api(`/api/v1/reply-suggestions/${s.id}/reject`, { method: "POST" });
    } catch (err) {
      if (err.status !== 409) toast(err.text, "error"); // 409: decided already, gone anyway
    }
  }

  // ---------------------------------------------------------------- actions

  async refresh() {
    try {
      this.update(await api(`/api/v1/conversations/${this.conv.id}`));
      this.onChange(this.conv);
    } catch {
      /* the next event brings it */
    }
  }

  async act(action, body) {
    this.onAct();
    const path = `/api/v1/conversations/${this.conv.id}`;
    try {
      const conv = action === "patch"
        ? await api(path, { method: "PATCH", body })
        : await api(`${path}/${action}`, { method: "POST", body: body ?? {} });
      this.update(conv);
      this.onChange(conv);
      return conv;
    } catch (err) {
      toast(err.text, "error");
      return null;
    }
  }

  modal(title, content, submitLabel, onSubmit) {
    const error = h("div", { class: "form-error", "data-okno": "form-error" });
    const form = h("form", { class: "modal", "data-okno": "modal" }, h("h2", { text: title }), content, error,
      h("div", { class: "buttons" },
        h("button", { class: "btn", type: "button", text: t("common.cancel"), onclick: () => back.remove() }),
        h("button", { class: "btn btn-primary", type: "submit", text: submitLabel, "data-okno": "modal-submit" }),
      ));
    const back = h("div", { class: "modal-back" }, form);
    back.addEventListener("keydown", (e) => e.key === "Escape" && back.remove());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const ok = await onSubmit(form, error);
      if (ok) back.remove();
    });
    document.body.append(back);
    form.querySelector("select, input, textarea")?.focus();
  }

  /** Supervisors and admins: every assignment of the dialog and why (rule, strategy, the
   *  candidates weighed), from GET /conversations/{id}/assignments, in a modal. */
  async whyAssigned() {
    let data;
    let users;
    try {
      [data, users] = await Promise.all([
        api(`/api/v1/conversations/${this.conv.id}/assignments`),
        api("/api/v1/users").catch(() => ({ users: [] })),
      ]);
    } catch (err) {
      toast(err.text || String(err), "error");
      return;
    }
    const names = new Map(users.users.map((u) => [u.id, u.name]));
    const nameOf = (id) => (id == null ? t("dialog.nobody") : names.get(id) || `#${id}`);
    const kinds = {
      auto: t("why.kind_auto"), take: t("why.kind_take"), manual: t("why.kind_manual"),
      transfer: t("why.kind_transfer"), requeue: t("why.kind_requeue"),
    };
    const strategies = { least_loaded: t("strategy.least_loaded"), longest_idle: t("strategy.longest_idle") };
    const ruleText = (rule) => {
      if (rule.startsWith("queue:")) return t("why.rule_queue", { name: rule.slice(6) });
      if (rule.startsWith("overflow:")) return t("why.rule_overflow", { name: rule.slice(9) });
      if (rule === "no queue") return t("why.rule_no_queue");
      if (rule === "by hand") return t("why.rule_by_hand");
      return rule;
    };
    const row = (label, value) => (value ? h("div", { class: "why-row" }, h("span", { class: "muted", text: label }), h("span", { text: value })) : null);
    const candidates = (a) => {
      if (!a.candidates || !a.candidates.length) return null;
      return h("table", { class: "data", "data-okno": "why-candidates" },
        h("thead", {}, h("tr", {}, ...[t("dialog.assignee"), t("why.load"), t("why.idle"), t("why.skill")]
          .map((x, i) => h("th", { class: i ? "num" : "", text: x })))),
        h("tbody", {}, ...a.candidates.map((c) => h("tr", { "data-okno": "why-candidate", "data-chosen": String(c.user_id === a.user_id) },
          h("td", {}, c.user_id === a.user_id ? h("strong", { text: `✓ ${c.name || nameOf(c.user_id)}` }) : (c.name || nameOf(c.user_id))),
          h("td", { class: "num", text: `${c.load} / ${c.capacity}` }),
          h("td", { class: "num", text: c.idle_seconds >= 10 ** 7 ? t("why.never") : fmtDuration(c.idle_seconds) }),
          h("td", { class: "num", text: c.skill_level == null ? "—" : String(c.skill_level) })))));
    };
    const items = data.assignments.map((a) => h("li", { class: "why-item", "data-okno": "why-assignment", "data-kind": a.kind },
      h("div", { class: "why-head" },
        h("strong", { text: kinds[a.kind] || a.kind }),
        h("span", { class: "muted", text: fmtTime(a.at) })),
      row(t("dialog.assignee"), a.kind === "requeue" ? "" : nameOf(a.user_id)),
      row(t("why.by"), a.actor_id != null ? nameOf(a.actor_id) : ""),
      row(t("why.rule"), a.rule ? ruleText(a.rule) : ""),
      row(t("why.strategy"), a.strategy ? strategies[a.strategy] || a.strategy : ""),
      row(t("why.waited"), a.waited_seconds ? fmtDuration(a.waited_seconds) : ""),
      a.candidates && a.candidates.length ? h("div", { class: "muted", text: t("why.candidates") }) : null,
      candidates(a)));
    const close = h("button", { class: "btn", type: "button", text: t("common.close"), "data-okno": "why-close", onclick: () => back.remove() });
    const box = h("div", { class: "modal wide", role: "dialog", "aria-label": t("why.title"), "data-okno": "why-modal" },
      h("h2", { text: t("why.title") }),
      items.length ? h("ol", { class: "why-list" }, ...items) : h("p", { class: "empty", text: t("why.empty") }),
      h("div", { class: "buttons" }, close));
    const back = h("div", { class: "modal-back", onclick: (e) => e.target === back && back.remove() }, box);
    back.addEventListener("keydown", (e) => e.key === "Escape" && back.remove());
    document.body.append(back);
    close.focus();
  }

  async transferDialog() {
    const [users, teams] = await Promise.all([api("/api/v1/users"), api("/api/v1/teams")]);
    const kind = h("select", { name: "kind", "data-okno": "transfer-kind" },
      h("option", { value: "user", text: t("transfer.to_operator") }),
      h("option", { value: "team", text: t("transfer.to_team") }));
    const userSel = h("select", { name: "to_user_id", "data-okno": "transfer-user" },
      ...users.users.filter((u) => u.id !== ME.id && u.role !== "admin")
        .map((u) => h("option", { value: u.id, text: u.name })));
    const teamSel = h("select", { name: "to_team_id", "data-okno": "transfer-team", hidden: true },
      ...teams.teams.map((tm) => h("option", { value: tm.id, text: tm.name })));
    kind.addEventListener("change", () => {
      userSel.hidden = kind.value !== "user";
      teamSel.hidden = kind.value !== "team";
    });
    const comment = h("textarea", { name: "comment", rows: 3, "data-okno": "transfer-comment", maxlength: 2000 });
    this.modal(t("transfer.title"),
      h("div", { class: "choices" }, kind, userSel, teamSel, h("label", { class: "field" }, t("transfer.comment"), comment)),
      t("transfer.submit"),
      async (_form, error) => {
        const body = { comment: comment.value.trim() || null };
        if (kind.value === "user") body.to_user_id = Number(userSel.value);
        else body.to_team_id = Number(teamSel.value);
        try {
          this.onAct();
          const conv = await api(`/api/v1/conversations/${this.conv.id}/transfer`, { method: "POST", body });
          this.update(conv);
          this.onChange(conv);
          toast(t("transfer.done"));
          return true;
        } catch (err) {
          error.textContent = err.text;
          return false;
        }
      });
  }

  closeDialog() {
    const choices = ["resolved", "refused", "callback", "spam"].map((r, i) =>
      h("label", {}, h("input", { type: "radio", name: "resolution", value: r, checked: i === 0, "data-okno": "resolution" }), t(`resolution.${r}`)));
    this.modal(t("close.title"), h("div", { class: "choices" }, h("strong", { text: t("close.resolution") }), ...choices), t("close.submit"),
      async (form, error) => {
        const resolution = form.querySelector("input[name=resolution]:checked").value;
        try {
          const conv = await api(`/api/v1/conversations/${this.conv.id}/close`, { method: "POST", body: { resolution } });
          this.update(conv);
          this.onChange(conv);
          return true;
        } catch (err) {
          error.textContent = err.text;
          return false;
        }
      });
  }
}

/** How long the customer has waited for an answer, for lists ("ждёт 3 мин"). */
export function waitText(conv) {
  const since = conv.waiting_since || (conv.status === "waiting" ? conv.created_at : null);
  return since ? fmtDuration(secondsSince(since)) : "";
}
