// The bot's content (/bot): knowledge-base articles with their history, questions the bot
// could not answer, operator answers worth a template, the answer threshold's trade-off and
// the bot's figures. Admins change; supervisors see the same screens read-only (the API
// refuses them changes anyway). All text goes in with textContent (h()), never as markup.
import { flowsSection } from "./bot_flows.js";
import { $, api, can, channelLabel, fmtTime, h, initFrame, showFieldErrors, t, toast } from "./core.js";

const root = $("section");
const CAN_EDIT = can("bot.manage");
const CHANNELS = ["widget", "api", "telegram", "viber", "vk", "whatsapp", "facebook", "apple", "email", "phone"];
const PAGE = 50;

const panel = (title, ...children) => h("section", { class: "panel" }, title ? h("h2", { text: title }) : null, ...children);
const pct = (share) => `${Math.round(share * 1000) / 10}%`;
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const commaList = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const day = (iso) => (iso ? iso.slice(0, 10) : "");

const FIELD_LABELS = () => ({
  title: t("bot.field.title"), questions: t("bot.field.questions"), answer: t("bot.field.answer"),
  topic: t("bot.field.topic"), tags: t("bot.field.tags"), channels: t("bot.field.channels"),
  valid_from: t("bot.field.valid_from"), valid_to: t("bot.field.valid_to"), is_active: t("bot.field.is_active"),
});
const REASONS = () => ({
  unsure: t("bot.reason.unsure"), empty: t("bot.reason.empty"), human_requested: t("bot.reason.human_requested"),
  own_case: t("bot.reason.own_case"),
  repeated: t("bot.reason.repeated"), attachment: t("bot.reason.attachment"), button: t("bot.reason.button"),
  picked: t("bot.reason.picked"), unknown: t("bot.reason.unknown"),
});
const SOURCES = () => ({ edit: t("bot.source.edit"), import: t("bot.source.import") });

/** A small form: fields [{name, label, type, value, options, hint, wide, rows}]. */
function form(name, fields, { submit, onSubmit, extra = [] }) {
  const el = h("form", { class: "form", "data-okno": name, novalidate: true });
  for (const f of fields) {
    const common = { name: f.name, "data-field": f.name, disabled: f.disabled || !CAN_EDIT };
    let input;
    if (f.type === "textarea") input = h("textarea", { ...common, rows: f.rows || 3, value: f.value ?? "" });
    else if (f.type === "select") {
      input = h("select", common, ...f.options.map(([v, label]) => h("option", { value: v, text: label })));
      input.value = f.value ?? f.options[0][0];
    } else if (f.type === "channels") {
      input = h("div", { class: "checks", "data-field": f.name },
        ...CHANNELS.map((k) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: `ch-${k}`, value: k, checked: (f.value || []).includes(k), disabled: !CAN_EDIT }),
          channelLabel(k))));
    } else input = h("input", { ...common, type: f.type || "text", value: f.value ?? "", autocomplete: "off", placeholder: f.placeholder });
    el.append(h(f.type === "channels" ? "div" : "label", { class: `field${f.wide ? " wide" : ""}` },
      f.label, input, f.hint ? h("span", { class: "hint", text: f.hint }) : null,
      h("span", { class: "field-error", "data-error-for": f.name })));
  }
  const button = CAN_EDIT ? h("button", { class: "btn btn-primary", type: "submit", text: submit, "data-okno": "submit" }) : null;
  el.append(h("div", { class: "buttons" }, button, ...extra, h("span", { class: "form-error", "data-okno": "form-error" })));
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!CAN_EDIT) return;
    showFieldErrors(el, null);
    button.disabled = true;
    try {
      await onSubmit(el);
    } catch (err) {
      if (err && err.status) showFieldErrors(el, err);
      else throw err;
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function checkedChannels(el) {
  return CHANNELS.filter((k) => el.elements[`ch-${k}`].checked);
}

// ------------------------------------------------------------------ articles

const state = { q: "", topic: "", status: "active", offset: 0, open: null, draft: null };

async function articlesSection() {
  const listBox = h("div", { "data-okno": "article-list" });
  const editor = h("div", { class: "kb-editor", "data-okno": "article-editor" });
  const search = h("input", { type: "search", "data-okno": "kb-search", value: state.q, placeholder: t("bot.search") });
  const topic = h("select", { "data-okno": "kb-topic" });
  const status = h("select", { "data-okno": "kb-status" },
    h("option", { value: "active", text: t("bot.status.active") }),
    h("option", { value: "inactive", text: t("bot.status.inactive") }),
    h("option", { value: "all", text: t("bot.status.all") }));
  status.value = state.status;
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.q = search.value; state.offset = 0; loadList(); }, 250);
  });
  topic.addEventListener("change", () => { state.topic = topic.value; state.offset = 0; loadList(); });
  status.addEventListener("change", () => { state.status = status.value; state.offset = 0; loadList(); });

  async function loadList() {
    const params = new URLSearchParams({ q: state.q, status: state.status, offset: state.offset, limit: PAGE });
    if (state.topic) params.set("topic", state.topic);
    const data = await api(`/api/v1/kb/articles?${params}`);
    topic.replaceChildren(h("option", { value: "", text: t("bot.all_topics") }), ...data.topics.map((tp) => h("option", { value: tp, text: tp })));
    topic.value = state.topic;
    const rows = data.articles.map((a) => h("tr", {
      "data-okno": "article-row", "data-id": a.id, "data-clickable": "", class: a.id === state.open ? "current" : "",
      onclick: () => openArticle(a.id),
    },
    h("td", {}, h("strong", { text: a.title }), h("div", { class: "muted small", text: a.id })),
    h("td", { text: a.topic || "—" }),
    h("td", { class: "num", text: a.questions }),
    h("td", { text: a.channels.length ? a.channels.map(channelLabel).join(", ") : t("bot.all_channels") }),
    h("td", { text: validity(a) }),
    h("td", {}, a.is_active ? null : h("span", { class: "pill", text: t("bot.inactive") })),
    h("td", { class: "small muted", text: `v${a.version} · ${fmtTime(a.updated_at)}${a.updated_by ? " · " + a.updated_by.name : ""}` })));
    const pager = h("div", { class: "pager" },
      h("span", { class: "muted small", "data-okno": "kb-total", text: t("bot.shown", { from: data.total ? state.offset + 1 : 0, to: state.offset + data.articles.length, total: data.total }) }),
      h("button", { class: "btn btn-small", type: "button", text: "←", disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); loadList(); } }),
      h("button", { class: "btn btn-small", type: "button", text: "→", disabled: state.offset + PAGE >= data.total, onclick: () => { state.offset += PAGE; loadList(); } }));
    listBox.replaceChildren(data.articles.length
      ? h("table", { class: "data", "data-okno": "articles" },
        h("thead", {}, h("tr", {}, ...[t("bot.field.title"), t("bot.field.topic"), t("bot.questions_n"), t("bot.field.channels"), t("bot.valid"), "", t("bot.changed")].map((x) => h("th", { text: x })))),
        h("tbody", {}, ...rows))
      : h("p", { class: "empty", text: t("bot.no_articles") }), pager);
  }

  async function openArticle(id) {
    state.open = id;
    for (const tr of listBox.querySelectorAll("[data-okno=article-row]")) tr.classList.toggle("current", tr.dataset.id === id);
    const article = await api(`/api/v1/kb/articles/${encodeURIComponent(id)}`);
    editor.replaceChildren(...(await articleEditor(article, { reload: () => openArticle(id), listChanged: loadList })));
  }

  function newArticle(draft = {}) {
    state.open = null;
    editor.replaceChildren(...articleCreator(draft, async (created) => {
      if (draft.turn_ids) {
        await api("/api/v1/bot/unanswered/review", { method: "POST", body: { turn_ids: draft.turn_ids, action: "article", article_id: created.id } });
      }
      await loadList();
      await openArticle(created.id);
    }));
  }

  const tools = h("div", { class: "kb-tools" }, search, topic, status,
    CAN_EDIT ? h("button", { class: "btn", type: "button", "data-okno": "add-article", text: t("bot.new_article"), onclick: () => newArticle() }) : null,
    CAN_EDIT ? importControl(loadList) : null,
    h("button", { class: "btn", type: "button", "data-okno": "kb-export", text: t("bot.export"), onclick: exportKb }));
  await loadList();
  if (state.draft) {
    newArticle(state.draft);
    state.draft = null;
  } else if (state.open) await openArticle(state.open);
  return [panel(t("bot.tab.articles"), tools, h("div", { class: "kb-layout" }, listBox, editor))];
}

function validity(a) {
  if (!a.valid_from && !a.valid_to) return "—";
  return `${a.valid_from ? day(a.valid_from) : "…"} – ${a.valid_to ? day(a.valid_to) : "…"}`;
}

function articleFields(a) {
  return [
    { name: "title", label: t("bot.field.title"), value: a.title, wide: true },
    { name: "topic", label: t("bot.field.topic"), value: a.topic || "", placeholder: "cards", hint: t("bot.topic_hint") },
    { name: "tags", label: t("bot.field.tags"), value: (a.tags || []).join(", "), placeholder: "карты, блокировка" },
    { name: "valid_from", label: t("bot.field.valid_from"), type: "date", value: day(a.valid_from) },
    { name: "valid_to", label: t("bot.field.valid_to"), type: "date", value: day(a.valid_to), hint: t("bot.valid_to_hint") },
    { name: "channels", label: t("bot.field.channels"), type: "channels", value: a.channels || [], wide: true, hint: t("bot.channels_hint") },
    { name: "questions", label: t("bot.field.questions"), type: "textarea", rows: 5, value: (a.questions || []).join("\n"), wide: true, hint: t("bot.questions_hint") },
    { name: "answer", label: t("bot.field.answer"), type: "textarea", rows: 6, value: a.answer || "", wide: true },
  ];
}

function articleBody(el) {
  const v = (name) => el.elements[name].value;
  return {
    title: v("title"), topic: v("topic").trim() || null, tags: commaList(v("tags")), channels: checkedChannels(el),
    valid_from: v("valid_from") || null, valid_to: v("valid_to") || null, questions: lines(v("questions")), answer: v("answer"),
  };
}

function articleCreator(draft, onCreated) {
  const el = form("new-article", [
    { name: "id", label: t("bot.field.id"), value: "", placeholder: "card-pin-change", hint: t("bot.id_hint") },
    ...articleFields(draft),
  ], {
    submit: t("common.create"),
    onSubmit: async (f) => {
      const created = await api("/api/v1/kb/articles", { method: "POST", body: { id: f.elements.id.value.trim(), ...articleBody(f) } });
      toast(t("common.saved"));
      await onCreated(created);
    },
  });
  return [h("h3", { text: draft.turn_ids ? t("bot.new_from_questions") : t("bot.new_article") }), el];
}

async function articleEditor(a, { reload, listChanged }) {
  const reloadButton = h("button", { class: "btn btn-small", type: "button", "data-okno": "reload-article", hidden: true, text: t("bot.reload"), onclick: reload });
  const toggle = CAN_EDIT ? h("button", {
    class: a.is_active ? "btn btn-danger" : "btn", type: "button", "data-okno": a.is_active ? "deactivate" : "activate",
    text: a.is_active ? t("bot.deactivate") : t("bot.activate"),
    onclick: async () => {
      try {
        await api(`/api/v1/kb/articles/${encodeURIComponent(a.id)}/${a.is_active ? "deactivate" : "activate"}`, { method: "POST", body: { version: a.version } });
        toast(t("common.saved"));
        await listChanged();
        await reload();
      } catch (err) {
        showConflict(el, err, reloadButton);
      }
    },
  }) : null;
  const el = form("edit-article", articleFields(a), {
    submit: t("common.save"),
    extra: [toggle, reloadButton],
    onSubmit: async (f) => {
      try {
        await api(`/api/v1/kb/articles/${encodeURIComponent(a.id)}`, { method: "PUT", body: { version: a.version, ...articleBody(f) } });
      } catch (err) {
        if (err.code === "article_changed") return showConflict(f, err, reloadButton);
        throw err;
      }
      toast(t("common.saved"));
      await listChanged();
      await reload();
    },
  });
  const head = h("div", { class: "kb-head" },
    h("h3", { text: a.title }),
    h("span", { class: "muted small", "data-okno": "article-version", text: `${a.id} · v${a.version}` }),
    a.is_active ? null : h("span", { class: "pill", text: t("bot.inactive") }));
  return [head, el, await historyView(a, reload)];
}

function showConflict(el, err, reloadButton) {
  if (err.code !== "article_changed") return toast(err.text || String(err), "error");
  el.querySelector("[data-okno=form-error]").textContent = t("error.article_changed");
  reloadButton.hidden = false;
}

async function historyView(a, reload) {
  const data = await api(`/api/v1/kb/articles/${encodeURIComponent(a.id)}/history`);
  const labels = FIELD_LABELS();
  const sources = SOURCES();
  const diffBox = h("div", { "data-okno": "diff" });
  const rows = data.versions.map((v) => h("tr", { "data-okno": "history-row", "data-version": v.version },
    h("td", { class: "num", text: `v${v.version}` }),
    h("td", { text: fmtTime(v.at) }),
    h("td", { text: v.changed_by ? v.changed_by.name : "—" }),
    h("td", { text: sources[v.source] || v.source }),
    h("td", { class: "small", text: v.changed.map((f) => labels[f] || f).join(", ") || "—" }),
    h("td", {},
      v.version > 1 ? h("button", { class: "btn btn-small", type: "button", "data-okno": "show-diff", text: t("bot.diff"), onclick: () => showDiff(a.id, v.version, diffBox) }) : null,
      CAN_EDIT && v.version !== a.version ? h("button", {
        class: "btn btn-small", type: "button", "data-okno": "restore", text: t("bot.restore"),
        onclick: async () => {
          try {
            await api(`/api/v1/kb/articles/${encodeURIComponent(a.id)}/restore`, { method: "POST", body: { version: a.version, restore: v.version } });
            toast(t("bot.restored", { version: v.version }));
            await reload();
          } catch (err) {
            toast(err.text || String(err), "error");
          }
        },
      }) : null)));
  return h("div", { class: "kb-history", "data-okno": "history" },
    h("h3", { text: t("bot.history") }),
    h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ...["", t("bot.when"), t("bot.who"), t("bot.source"), t("bot.changed_fields"), ""].map((x) => h("th", { text: x })))),
      h("tbody", {}, ...rows)),
    diffBox);
}

const shown = (value) => (Array.isArray(value) ? value.join("\n") : value == null || value === "" ? "—" : typeof value === "boolean" ? (value ? t("common.yes") : t("common.no")) : String(value).replace(/T00:00:00(\+00:00|Z)?$/, ""));

async function showDiff(id, version, box) {
  const base = `/api/v1/kb/articles/${encodeURIComponent(id)}/versions`;
  const [now, before] = await Promise.all([api(`${base}/${version}`), api(`${base}/${version - 1}`)]);
  const labels = FIELD_LABELS();
  const rows = now.changed.map((f) => h("tr", { "data-okno": "diff-row", "data-field": f },
    h("th", { text: labels[f] || f }),
    h("td", { class: "was" }, h("del", { text: shown(before.content[f] ?? (f === "is_active" ? true : null)) })),
    h("td", { class: "now" }, h("ins", { text: shown(now.content[f] ?? (f === "is_active" ? true : null)) }))));
  box.replaceChildren(h("h3", { text: t("bot.diff_title", { from: version - 1, to: version }) }),
    rows.length
      ? h("table", { class: "data diff" }, h("thead", {}, h("tr", {}, h("th", {}), h("th", { text: t("bot.was") }), h("th", { text: t("bot.now") }))), h("tbody", {}, ...rows))
      : h("p", { class: "muted", text: t("bot.no_diff") }));
}

function importControl(done) {
  const file = h("input", { type: "file", accept: ".yaml,.yml,.json,application/json,application/yaml", "data-okno": "kb-file", hidden: true });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    file.value = "";
    if (!chosen) return;
    if (chosen.size > 10 * 1024 * 1024) return toast(t("error.payload_too_large"), "error");
    try {
      const r = await api("/api/v1/kb/import", { method: "POST", form: await chosen.text() });
      toast(t("bot.imported", { created: r.created, updated: r.updated, unchanged: r.unchanged }));
      await done();
    } catch (err) {
      const errors = (err.fields && err.fields.errors) || [];
      const detail = errors.slice(0, 3).map((e) => `#${e.position} ${e.id ?? ""}: ${e.problem}`).join("; ");
      toast(`${err.text || err}${detail ? " — " + detail : ""}`, "error");
    }
  });
  return h("span", {}, file, h("button", { class: "btn", type: "button", "data-okno": "kb-import", text: t("bot.import"), onclick: () => file.click() }));
}

async function exportKb() {
  const data = await api("/api/v1/kb/export");
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
  const link = h("a", { href: URL.createObjectURL(blob), download: `knowledge-base-${new Date().toISOString().slice(0, 10)}.json` });
  document.body.append(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
}

// ------------------------------------------------------------------ unanswered questions

const learn = { days: 30, minDialogs: 3 };

function daysPicker(onChange, value) {
  const select = h("select", { "data-okno": "days" }, ...[7, 30, 90].map((d) => h("option", { value: d, text: t("bot.days", { n: d }) })));
  select.value = String(value);
  select.addEventListener("change", () => onChange(Number(select.value)));
  return select;
}

async function unansweredSection() {
  const data = await api(`/api/v1/bot/unanswered?days=${learn.days}`);
  const groups = data.groups.map((g) => h("article", { class: "group", "data-okno": "unanswered-group" },
    h("div", { class: "group-head" },
      h("span", { class: "badge", "data-okno": "group-count", text: g.count }),
      h("span", { text: g.topic ? t("bot.likely_topic", { topic: g.topic }) : t("bot.no_topic") }),
      h("span", { class: "muted small", text: t("bot.last_asked", { when: fmtTime(g.newest) }) })),
    h("ul", { class: "examples" }, ...g.examples.map((x) => h("li", { text: x }))),
    CAN_EDIT ? h("div", { class: "buttons" },
      h("button", {
        class: "btn btn-primary btn-small", type: "button", "data-okno": "make-article", text: t("bot.make_article"),
        onclick: () => {
          state.draft = { title: g.examples[0], questions: g.questions, topic: g.topic, turn_ids: g.turn_ids };
          go("articles");
        },
      }),
      h("button", {
        class: "btn btn-small", type: "button", "data-okno": "dismiss-group", text: t("bot.dismiss"),
        onclick: async () => {
          await api("/api/v1/bot/unanswered/review", { method: "POST", body: { turn_ids: g.turn_ids, action: "dismissed" } });
          show("unanswered");
        },
      })) : null));
  return [panel(t("bot.tab.unanswered"),
    h("p", { class: "muted" }, t("bot.unanswered_help"), " ", daysPicker((d) => { learn.days = d; show("unanswered"); }, learn.days)),
    groups.length ? h("div", { class: "groups" }, ...groups) : h("p", { class: "empty", text: t("bot.no_unanswered") }))];
}

// ------------------------------------------------------------------ template candidates

async function candidatesSection() {
  const data = await api(`/api/v1/bot/template-candidates?days=${learn.days}&min_dialogs=${learn.minDialogs}`);
  const minimum = h("input", { type: "number", min: 2, max: 1000, value: learn.minDialogs, "data-okno": "min-dialogs", class: "narrow" });
  minimum.addEventListener("change", () => { learn.minDialogs = Math.max(2, Number(minimum.value) || 3); show("candidates"); });
  const items = data.candidates.map((c) => {
    const stats = h("p", { class: "muted small", text: t("bot.candidate_stats", { dialogs: c.dialogs, uses: c.uses, operators: c.operators, when: fmtTime(c.last_used) }) });
    if (!CAN_EDIT) return h("article", { class: "group", "data-okno": "candidate" }, h("p", { class: "quote", text: c.text }), stats);
    const el = form("accept-candidate", [
      { name: "shortcut", label: t("bot.shortcut"), value: c.shortcut },
      { name: "title", label: t("bot.field.title"), value: c.title },
      { name: "body", label: t("bot.reply_text"), type: "textarea", rows: 3, value: c.text, wide: true },
    ], {
      submit: t("bot.make_template"),
      extra: [h("button", {
        class: "btn", type: "button", "data-okno": "dismiss-candidate", text: t("bot.dismiss"),
        onclick: async () => {
          await api(`/api/v1/bot/template-candidates/${c.key}/dismiss`, { method: "POST" });
          show("candidates");
        },
      })],
      onSubmit: async (f) => {
        const body = { scope: "shared", shortcut: f.elements.shortcut.value.trim(), title: f.elements.title.value, body: f.elements.body.value };
        const made = await api(`/api/v1/bot/template-candidates/${c.key}/accept`, { method: "POST", body });
        toast(t("bot.template_made", { shortcut: made.shortcut }));
        show("candidates");
      },
    });
    return h("article", { class: "group", "data-okno": "candidate" }, stats, el);
  });
  return [panel(t("bot.tab.candidates"),
    h("p", { class: "muted" }, t("bot.candidates_help"), " ", daysPicker((d) => { learn.days = d; show("candidates"); }, learn.days), " ",
      h("label", { class: "inline" }, t("bot.min_dialogs"), " ", minimum)),
    items.length ? h("div", { class: "groups" }, ...items) : h("p", { class: "empty", text: t("bot.no_candidates") }))];
}

// ------------------------------------------------------------------ threshold

async function thresholdSection() {
  const data = await api(`/api/v1/bot/threshold?days=${learn.days}`);
  const bar = (share) => {
    const fill = h("span", { class: "bar-fill" });
    fill.style.width = pct(share); // CSSOM, allowed by the page's CSP (style attributes are not)
    return h("span", { class: "bar", title: pct(share) }, fill);
  };
  const rows = data.rows.map((r) => h("tr", { "data-okno": "threshold-row", "data-threshold": r.threshold, class: r.current ? "current" : "" },
    h("td", { class: "num" }, h("strong", { text: r.threshold.toFixed(2) }), r.current ? h("span", { class: "pill assigned", text: t("bot.current") }) : null),
    h("td", { class: "num", text: `${pct(r.answer_share)} (${r.answered})` }),
    h("td", { class: "bar-cell" }, bar(r.answer_share)),
    h("td", { class: "num", text: `${pct(r.handoff_share)} (${r.handed_off})` })));
  return [panel(t("bot.tab.threshold"),
    h("p", { "data-okno": "threshold-now" }, t("bot.threshold_now", { value: data.threshold.toFixed(2), n: data.questions, days: data.days }), " ",
      daysPicker((d) => { learn.days = d; show("threshold"); }, learn.days)),
    h("p", { class: "muted" }, t("bot.threshold_how"), " ", h("code", { text: `${data.setting}=${data.threshold}` })),
    data.questions
      ? h("table", { class: "data threshold", "data-okno": "threshold" },
        h("thead", {}, h("tr", {}, ...[t("bot.threshold"), t("bot.answered"), "", t("bot.handed_off")].map((x) => h("th", { class: "num", text: x })))),
        h("tbody", {}, ...rows))
      : h("p", { class: "empty", text: t("bot.no_turns") }))];
}

// ------------------------------------------------------------------ metrics

const period = { since: "", until: "" };

async function metricsSection() {
  if (!period.until) {
    const today = new Date();
    period.until = today.toISOString().slice(0, 10);
    period.since = new Date(today.getTime() - 6 * 86400000).toISOString().slice(0, 10);
  }
  const data = await api(`/api/v1/analytics/bot?since=${period.since}&until=${period.until}`);
  const since = h("input", { type: "date", value: period.since, "data-okno": "since" });
  const until = h("input", { type: "date", value: period.until, "data-okno": "until" });
  const apply = () => { period.since = since.value; period.until = until.value; show("metrics"); };
  since.addEventListener("change", apply);
  until.addEventListener("change", apply);
  const d = data.dialogs;
  const rs = data.reply_suggestions;
  const tile = (name, value, label) => h("div", { class: "tile", "data-okno": `metric-${name}` }, h("div", { class: "v", text: value }), h("div", { class: "k", text: label }));
  const reasons = REASONS();
  const reasonRows = Object.entries(d.handoff_reasons).map(([k, n]) => h("tr", {}, h("td", { text: reasons[k] || k }), h("td", { class: "num", text: n })));
  const channelRows = data.channels.map((c) => h("tr", {},
    h("td", { text: channelLabel(c.kind) }), h("td", { class: "num", text: c.started_with_bot }), h("td", { class: "num", text: c.closed_by_bot }),
    h("td", { class: "num", text: c.handed_off }), h("td", { class: "num", text: c.answers }),
    h("td", { class: "num", text: c.suggestions_shown ? pct(c.suggestions_picked / c.suggestions_shown) : "—" })));
  const table = (head, rows) => h("table", { class: "data" }, h("thead", {}, h("tr", {}, ...head.map((x) => h("th", { text: x })))), h("tbody", {}, ...rows));
  return [h("div", { class: "grid1" },
    panel(t("bot.tab.metrics"), h("p", { class: "muted" }, t("bot.period"), " ", since, " — ", until, " ", h("span", { class: "small", text: t("bot.period_hint") }))),
    h("div", { class: "tiles" },
      tile("started", d.started_with_bot, t("bot.m.started")),
      tile("closed", `${pct(d.closed_by_bot_share)}`, t("bot.m.closed", { n: d.closed_by_bot })),
      tile("handed", d.handed_off, t("bot.m.handed")),
      tile("answers", data.answers, t("bot.m.answers")),
      tile("ctr", pct(data.suggestions.click_through), t("bot.m.ctr", { picked: data.suggestions.picked, shown: data.suggestions.shown }))),
    h("div", { class: "grid2" },
      panel(t("bot.m.reasons"), reasonRows.length ? table([t("bot.m.reason"), t("bot.m.dialogs")], reasonRows) : h("p", { class: "empty", text: "—" })),
      panel(t("bot.m.replies"), table([t("bot.m.what"), t("bot.m.count")], [
        [t("bot.m.offered"), rs.shown], [t("bot.m.accepted"), rs.accepted], [t("bot.m.edited"), rs.edited],
        [t("bot.m.rejected"), rs.rejected], [t("bot.m.ignored"), rs.ignored], [t("bot.m.rate"), pct(rs.acceptance_rate)],
      ].map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { class: "num", text: v })))))),
    panel(t("bot.m.channels"), channelRows.length
      ? table([t("bot.m.channel"), t("bot.m.started"), t("bot.m.closed_short"), t("bot.m.handed"), t("bot.m.answers"), t("bot.m.ctr_short")], channelRows)
      : h("p", { class: "empty", text: "—" })))];
}

// ------------------------------------------------------------------ start

const SECTIONS = {
  articles: articlesSection, unanswered: unansweredSection, candidates: candidatesSection,
  threshold: thresholdSection, metrics: metricsSection, flows: flowsSection,
};

async function show(name) {
  for (const b of document.querySelectorAll("[data-okno=bot-tabs] button")) {
    b.setAttribute("aria-selected", String(b.dataset.section === name));
  }
  try {
    root.replaceChildren(...(await SECTIONS[name]()));
    root.dataset.shown = name;
  } catch (err) {
    root.replaceChildren(h("div", { class: "banner error", text: err.text || String(err) }));
  }
}

function go(name) {
  history.replaceState(null, "", `#${name}`);
  show(name);
}

for (const b of document.querySelectorAll("[data-okno=bot-tabs] button")) {
  b.addEventListener("click", () => {
    if (root.dataset.shown === b.dataset.section) return; // keep what is being typed
    go(b.dataset.section);
  });
}

initFrame();
document.querySelector("[data-okno=conn]")?.remove(); // no live stream on this page
show(SECTIONS[location.hash.slice(1)] ? location.hash.slice(1) : "articles");
