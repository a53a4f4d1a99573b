// Administration: staff (with routing skills), teams, routing queues, widgets, reply
// templates. Every form sends what the API takes and shows the API's complaint next to the
// field it is about. The /templates page (for everyone) mounts only the templates section.
import { $, ME, api, can, fmtDuration, h, initFrame, showFieldErrors, t, toast } from "./core.js";

// Roles a person can be given here (integration accounts come with their API token).
const ROLES = ["operator", "senior_operator", "supervisor", "admin", "security_officer", "auditor"];
const root = $("section");
let teams = [];

/**
 * A form from a field list; onSubmit(values, form) may throw an ApiError for the fields.
 * A field of type "group" ({name, label, hint, fields}) draws its fields together with one
 * error line for the group's name (the API names e.g. "hours" for all the hours inputs).
 * A "number" field with `optional` gives null when left empty.
 */
function buildForm(name, fields, submitLabel, onSubmit, { extraButtons = [] } = {}) {
  const form = h("form", { class: "form", "data-okno": name, novalidate: true });
  const leaves = fields.flatMap((f) => (f.type === "group" ? f.fields : [f]));
  const fieldNode = (f) => {
    let input;
    const common = { name: f.name, "data-field": f.name, id: `${name}-${f.name}` };
    if (f.type === "select") {
      input = h("select", common, ...f.options.map(([v, label]) => h("option", { value: v, text: label })));
      input.value = f.value ?? f.options[0][0];
    } else if (f.type === "textarea") {
      input = h("textarea", { ...common, rows: f.rows || 3, value: f.value ?? "" });
    } else if (f.type === "checkbox") {
      input = h("input", { ...common, type: "checkbox", checked: !!f.value });
    } else {
      input = h("input", { ...common, type: f.type || "text", value: f.value ?? "", autocomplete: "off", placeholder: f.placeholder });
    }
    return h("label", { class: `field${f.wide ? " wide" : ""}${f.type === "checkbox" ? " check" : ""}` },
      f.type === "checkbox" ? input : null, f.label, f.type === "checkbox" ? null : input,
      f.hint ? h("span", { class: "hint", text: f.hint }) : null,
      h("span", { class: "field-error", "data-error-for": f.name }));
  };
  for (const f of fields) {
    if (f.type === "group") {
      form.append(h("fieldset", { class: "field group wide", "data-okno": `group-${f.name}` },
        h("legend", { text: f.label }),
        f.hint ? h("span", { class: "hint", text: f.hint }) : null,
        h("div", { class: "group-fields" }, ...f.fields.map(fieldNode)),
        h("span", { class: "field-error", "data-error-for": f.name })));
    } else form.append(fieldNode(f));
  }
  form.append(h("div", { class: "buttons" },
    h("button", { class: "btn btn-primary", type: "submit", text: submitLabel, "data-okno": "submit" }),
    ...extraButtons,
    h("span", { class: "form-error", "data-okno": "form-error" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showFieldErrors(form, null);
    const values = {};
    for (const f of leaves) {
      const el = form.elements[f.name];
      if (f.type === "checkbox") values[f.name] = el.checked;
      else if (f.type === "number") values[f.name] = f.optional && el.value.trim() === "" ? null : Number(el.value);
      else values[f.name] = el.value;
    }
    const button = form.querySelector("[data-okno=submit]");
    button.disabled = true;
    try {
      await onSubmit(values, form);
    } catch (err) {
      if (err && err.status) showFieldErrors(form, err);
      else throw err;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** A problem found before anything is sent, shaped like an ApiError for showFieldErrors. */
function fieldProblem(field, text) {
  return { status: 422, text, byField: { [field]: text } };
}

const panel = (title, ...children) => h("section", { class: "panel" }, h("h2", { text: title }), ...children);
const teamOptions = () => [["", t("field.no_team")], ...teams.map((tm) => [String(tm.id), tm.name])];
const teamName = (id) => (teams.find((tm) => tm.id === id) || {}).name || "—";

async function loadTeams() {
  teams = (await api("/api/v1/teams")).teams;
}

// ------------------------------------------------------------------ skills

const SKILL_RE = /^([\p{L}\p{N}_-]{1,50})\s*(?::\s*(\d{1,3}))?$/u;

/** {"cards": 3, "credits": 1} -> "cards:3, credits:1" */
const skillsText = (skills) => Object.entries(skills || {}).map(([k, v]) => `${k}:${v}`).join(", ");

/** "cards:3, credits" -> {"cards": 3, "credits": 1} (no level means 1). The server checks
 *  the levels; a part that is not "name" or "name:level" is refused here. */
function parseSkills(text) {
  const out = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = part.match(SKILL_RE);
    if (!m) throw fieldProblem("skills", t("invalid.invalid_skills"));
    out[m[1]] = m[2] ? Number(m[2]) : 1;
  }
  return out;
}

// ------------------------------------------------------------------ users

async function usersSection() {
  await loadTeams();
  const users = (await api("/api/v1/users?all=true")).users;
  const editor = h("div", { "data-okno": "user-editor" });
  const rows = users.map((u) => h("tr", { "data-okno": "user-row", "data-login": u.login },
    h("td", { text: u.login }), h("td", { text: u.name }), h("td", { text: t(`role.${u.role}`) }),
    h("td", { text: teamName(u.team_id) }), h("td", { class: "num", text: u.capacity }),
    h("td", { "data-okno": "user-skills", text: skillsText(u.skills) || "—" }),
    h("td", { text: u.is_active ? t("common.yes") : t("common.no") }),
    h("td", {}, h("button", { class: "btn btn-small", type: "button", text: t("common.edit"), "data-okno": "edit-user", onclick: () => editor.replaceChildren(editUser(u)) }))));
  const create = buildForm("new-user", [
    { name: "login", label: t("field.login") },
    { name: "name", label: t("field.name") },
    { name: "password", label: t("field.password"), type: "password" },
    { name: "role", label: t("field.role"), type: "select", options: ROLES.map((r) => [r, t(`role.${r}`)]) },
    { name: "team_id", label: t("field.team"), type: "select", options: teamOptions() },
    { name: "capacity", label: t("field.capacity"), type: "number", value: 5 },
    { name: "skills", label: t("field.skills"), placeholder: "cards:3, credits:1", hint: t("field.skills_hint") },
  ], t("common.create"), async (v) => {
    const body = { ...v, team_id: v.team_id ? Number(v.team_id) : null, skills: parseSkills(v.skills) };
    await api("/api/v1/users", { method: "POST", body });
    toast(t("common.saved"));
    show("users");
  });
  return [
    panel(t("admin.users"), h("table", { class: "data", "data-okno": "users" },
      h("thead", {}, h("tr", {}, ...[t("field.login"), t("field.name"), t("field.role"), t("field.team"), t("field.capacity"), t("field.skills"), t("field.active"), ""].map((x) => h("th", { text: x })))),
      h("tbody", {}, ...rows)), editor),
    panel(t("admin.new_user"), create),
  ];
}

function editUser(u) {
  return buildForm("edit-user", [
    { name: "name", label: t("field.name"), value: u.name },
    { name: "role", label: t("field.role"), type: "select", options: ROLES.map((r) => [r, t(`role.${r}`)]), value: u.role },
    { name: "team_id", label: t("field.team"), type: "select", options: teamOptions(), value: u.team_id ? String(u.team_id) : "" },
    { name: "capacity", label: t("field.capacity"), type: "number", value: u.capacity },
    { name: "skills", label: t("field.skills"), value: skillsText(u.skills), placeholder: "cards:3, credits:1", hint: t("field.skills_hint") },
    { name: "password", label: t("field.new_password"), type: "password" },
    { name: "is_active", label: t("field.active"), type: "checkbox", value: u.is_active },
  ], t("common.save"), async (v) => {
    const body = { ...v, team_id: v.team_id ? Number(v.team_id) : null, skills: parseSkills(v.skills) };
    if (!body.password) delete body.password;
    await api(`/api/v1/users/${u.id}`, { method: "PATCH", body });
    toast(t("common.saved"));
    show("users");
  }, { extraButtons: [h("strong", { text: u.login })] });
}

// ------------------------------------------------------------------ teams

async function teamsSection() {
  await loadTeams();
  const rows = teams.map((tm) => {
    const form = buildForm(`team-${tm.id}`, [{ name: "name", label: "", value: tm.name }], t("common.save"), async (v) => {
      await api(`/api/v1/teams/${tm.id}`, { method: "PATCH", body: { name: v.name } });
      toast(t("common.saved"));
    });
    form.dataset.okno = "team-form";
    return form;
  });
  const create = buildForm("new-team", [{ name: "name", label: t("field.name") }], t("common.create"), async (v) => {
    await api("/api/v1/teams", { method: "POST", body: { name: v.name } });
    toast(t("common.saved"));
    show("teams");
  });
  return [panel(t("admin.teams"), ...rows), panel(t("admin.new_team"), create)];
}

// ------------------------------------------------------------------ queues

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_LABELS = () => ({
  mon: t("day.mon"), tue: t("day.tue"), wed: t("day.wed"), thu: t("day.thu"),
  fri: t("day.fri"), sat: t("day.sat"), sun: t("day.sun"),
});
const STRATEGY_LABELS = () => ({ least_loaded: t("strategy.least_loaded"), longest_idle: t("strategy.longest_idle") });
const splitList = (text) => text.split(",").map((p) => p.trim()).filter(Boolean);

/** The simple hours inputs -> the API's hours object; nothing filled in: around the clock. */
function hoursFrom(v) {
  const weekly = {};
  for (const d of DAYS) {
    const spans = splitList(v[`hours_${d}`]);
    if (spans.length) weekly[d] = spans;
  }
  const holidays = splitList(v.hours_holidays);
  if (!Object.keys(weekly).length && !holidays.length) return null;
  return { timezone: v.hours_timezone.trim() || "Europe/Moscow", weekly, holidays };
}

function queueFields(q = {}) {
  const hours = q.hours || {};
  const weekly = hours.weekly || {};
  const labels = DAY_LABELS();
  const strategies = STRATEGY_LABELS();
  const level = q.min_skill_level ?? 1;
  return [
    { name: "name", label: t("field.queue_name"), value: q.name },
    { name: "topic", label: t("field.topic"), value: q.topic, placeholder: "cards", hint: t("queue.topic_hint") },
    { name: "team_id", label: t("field.team"), type: "select", options: teamOptions(), value: q.team_id ? String(q.team_id) : "" },
    { name: "priority", label: t("field.priority"), type: "number", value: q.priority ?? 0, hint: t("queue.priority_hint") },
    { name: "skill", label: t("field.skill"), value: q.skill, placeholder: "cards", hint: t("queue.skill_hint") },
    { name: "min_skill_level", label: t("field.min_skill_level"), type: "select", options: ["1", "2", "3", "4", "5"].map((n) => [n, n]), value: String(level) },
    { name: "strategy", label: t("field.strategy"), type: "select", options: Object.entries(strategies), value: q.strategy || "least_loaded" },
    { name: "is_default", label: t("field.is_default"), type: "checkbox", value: q.is_default },
    { name: "overflow_team_id", label: t("field.overflow_team"), type: "select", options: teamOptions(), value: q.overflow_team_id ? String(q.overflow_team_id) : "" },
    { name: "overflow_after_seconds", label: t("field.overflow_after"), type: "number", optional: true, value: q.overflow_after_seconds ?? "", placeholder: "120" },
    {
      name: "hours", type: "group", label: t("field.hours"), hint: t("queue.hours_hint"), fields: [
        { name: "hours_timezone", label: t("field.timezone"), value: hours.timezone || "Europe/Moscow" },
        ...DAYS.map((d) => ({ name: `hours_${d}`, label: labels[d], value: (weekly[d] || []).join(", ") })),
        { name: "hours_holidays", label: t("field.holidays"), value: (hours.holidays || []).join(", "), placeholder: "2026-01-01, 2026-01-02", wide: true },
      ],
    },
    { name: "out_of_hours_message", label: t("field.out_of_hours_message"), type: "textarea", wide: true, value: q.out_of_hours_message, hint: t("queue.out_of_hours_hint") },
    { name: "is_active", label: t("field.queue_active"), type: "checkbox", value: q.is_active ?? true },
  ];
}

function queueBody(v) {
  return {
    name: v.name,
    topic: v.topic.trim() || null,
    is_default: v.is_default,
    team_id: v.team_id ? Number(v.team_id) : null,
    skill: v.skill.trim() || null,
    min_skill_level: Number(v.min_skill_level),
    priority: v.priority,
    strategy: v.strategy,
    overflow_team_id: v.overflow_team_id ? Number(v.overflow_team_id) : null,
    overflow_after_seconds: v.overflow_after_seconds,
    hours: hoursFrom(v),
    out_of_hours_message: v.out_of_hours_message,
    is_active: v.is_active,
  };
}

const SPAN_RE = /^([01]\d|2[0-3]):[0-5]\d\s*-\s*([01]\d|2[0-3]):[0-5]\d$/;
const DATE_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

/** The API names only "hours" when it cannot understand them: outline the inputs that do
 *  not look like 09:00-18:00 (or a date), so the admin sees which one to fix. */
function markHours(form, v) {
  const mark = (name, bad) => form.elements[name].closest(".field").classList.toggle("suspect", bad);
  for (const d of DAYS) mark(`hours_${d}`, splitList(v[`hours_${d}`]).some((span) => !SPAN_RE.test(span)));
  mark("hours_holidays", splitList(v.hours_holidays).some((day) => !DATE_RE.test(day)));
}

/** Send a queue; a refusal of the hours also outlines the inputs that look wrong. */
async function saveQueue(path, method, v, form) {
  for (const el of form.querySelectorAll(".suspect")) el.classList.remove("suspect");
  try {
    await api(path, { method, body: queueBody(v) });
  } catch (err) {
    if (err && err.code === "bad_hours") markHours(form, v);
    throw err;
  }
  toast(t("common.saved"));
  show("queues");
}

function openState(q) {
  if (!q.is_active) return h("span", { class: "pill", text: t("queue.inactive") });
  if (!q.hours) return h("span", { class: "pill assigned", "data-okno": "queue-open", "data-open": "true", text: t("queue.always") });
  return h("span", {
    class: `pill ${q.open_now ? "assigned" : "waiting"}`, "data-okno": "queue-open", "data-open": String(q.open_now),
    text: q.open_now ? t("queue.open") : t("queue.closed"),
  });
}

async function queuesSection() {
  await loadTeams();
  const queues = (await api("/api/v1/routing/queues")).queues;
  const strategies = STRATEGY_LABELS();
  const editor = h("div", { "data-okno": "queue-editor" });
  const rows = queues.map((q) => h("tr", { "data-okno": "queue-row", "data-name": q.name },
    h("td", {}, h("strong", { text: q.name }), q.is_default ? h("span", { class: "hint", text: ` · ${t("queue.default")}` }) : null),
    h("td", { text: q.topic || "—" }),
    h("td", { text: q.team_id ? teamName(q.team_id) : t("queue.any_team") }),
    h("td", { text: q.skill ? `${q.skill} ≥ ${q.min_skill_level}` : "—" }),
    h("td", { class: "num", text: q.priority }),
    h("td", { text: strategies[q.strategy] || q.strategy }),
    h("td", {
      text: q.overflow_team_id
        ? t("queue.overflow_value", { team: teamName(q.overflow_team_id), after: fmtDuration(q.overflow_after_seconds || 0) })
        : "—",
    }),
    h("td", {}, openState(q)),
    h("td", {}, h("button", {
      class: "btn btn-small", type: "button", text: t("common.edit"), "data-okno": "edit-queue",
      onclick: () => editor.replaceChildren(editQueue(q)),
    }))));
  const create = buildForm("new-queue", queueFields(), t("common.create"),
    (v, form) => saveQueue("/api/v1/routing/queues", "POST", v, form));
  const headers = [t("field.queue_name"), t("field.topic"), t("field.team"), t("queue.skill_level"), t("field.priority"),
    t("field.strategy"), t("queue.overflow"), t("queue.open_now"), ""];
  return [
    panel(t("admin.queues"),
      queues.length
        ? h("table", { class: "data", "data-okno": "queues" },
          h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { text: x })))),
          h("tbody", {}, ...rows))
        : h("p", { class: "empty", "data-okno": "no-queues", text: t("queue.none") }),
      editor),
    panel(t("admin.new_queue"), create),
  ];
}

function editQueue(q) {
  return buildForm("edit-queue", queueFields(q), t("common.save"),
    (v, form) => saveQueue(`/api/v1/routing/queues/${q.id}`, "PATCH", v, form),
    { extraButtons: [h("strong", { text: q.name })] });
}

// ------------------------------------------------------------------ widgets

async function widgetsSection() {
  const channels = (await api("/api/v1/channels")).channels.filter((c) => c.kind === "widget");
  return channels.map((ch) => {
    const cfg = ch.config || {};
    const form = buildForm("widget-form", [
      { name: "name", label: t("field.name"), value: ch.name },
      { name: "key", label: t("field.key"), value: ch.key },
      { name: "color", label: t("field.color"), type: "color", value: cfg.color || "#0b57d0" },
      { name: "is_active", label: t("field.active"), type: "checkbox", value: ch.is_active },
      { name: "topic", label: t("field.widget_topic"), value: cfg.topic || "", placeholder: "cards", hint: t("field.widget_topic_hint") },
      { name: "greeting", label: t("field.greeting"), type: "textarea", wide: true, value: cfg.greeting || "" },
      { name: "info_message", label: t("field.info_message"), type: "textarea", wide: true, value: cfg.info_message || "" },
      { name: "allowed_origins", label: t("field.origins"), type: "textarea", wide: true, value: (cfg.allowed_origins || []).join("\n"), hint: "https://www.bank.example" },
    ], t("common.save"), async (v) => {
      const body = { ...v, topic: v.topic.trim(), allowed_origins: v.allowed_origins.split(/\s+/).map((s) => s.trim()).filter(Boolean) };
      await api(`/api/v1/channels/${ch.id}`, { method: "PATCH", body });
      toast(t("common.saved"));
    });
    form.dataset.channel = ch.id;
    const snippet = `<script src="${location.origin}/widget.js" data-widget-key="${ch.key}" async></script>`;
    return panel(ch.name, form, h("p", { class: "hint", text: snippet }));
  });
}

// ------------------------------------------------------------------ templates

async function templatesSection() {
  const replies = (await api("/api/v1/saved-replies?limit=100")).saved_replies;
  const scopes = can("templates.manage_all") ? ["personal", "team", "shared"] : can("templates.manage_team") ? ["personal", "team"] : ["personal"];
  const editor = h("div", { "data-okno": "template-editor" });
  const mayEdit = (r) => r.owner_id === ME.id || can("templates.manage_all") || (r.scope === "team" && can("templates.manage_team"));
  const rows = replies.map((r) => h("tr", { "data-okno": "template-row", "data-shortcut": r.shortcut },
    h("td", { text: "/" + r.shortcut }), h("td", { text: r.title }), h("td", { text: t(`scope.${r.scope}`) }),
    h("td", { class: "muted", text: r.body.length > 90 ? r.body.slice(0, 90) + "…" : r.body }),
    h("td", {}, mayEdit(r) ? h("button", { class: "btn btn-small", type: "button", text: t("common.edit"), onclick: () => editor.replaceChildren(editTemplate(r)) }) : null)));
  const create = buildForm("new-template", [
    { name: "shortcut", label: t("field.shortcut"), hint: "greet" },
    { name: "scope", label: t("field.scope"), type: "select", options: scopes.map((s) => [s, t(`scope.${s}`)]) },
    { name: "title", label: t("field.title"), wide: true },
    { name: "body", label: t("field.body"), type: "textarea", wide: true, hint: t("field.placeholders") },
  ], t("common.create"), async (v) => {
    await api("/api/v1/saved-replies", { method: "POST", body: v });
    toast(t("common.saved"));
    show("templates");
  });
  return [
    panel(t("admin.templates"), h("table", { class: "data", "data-okno": "templates" },
      h("thead", {}, h("tr", {}, ...[t("field.shortcut"), t("field.title"), t("field.scope"), t("field.body"), ""].map((x) => h("th", { text: x })))),
      h("tbody", {}, ...rows)), editor),
    panel(t("admin.new_template"), create),
  ];
}

function editTemplate(r) {
  const remove = h("button", { class: "btn btn-danger", type: "button", text: t("common.delete"), onclick: async () => {
    try {
      await api(`/api/v1/saved-replies/${r.id}`, { method: "DELETE" });
      show("templates");
    } catch (err) {
      toast(err.text, "error");
    }
  } });
  return buildForm("edit-template", [
    { name: "shortcut", label: t("field.shortcut"), value: r.shortcut },
    { name: "title", label: t("field.title"), value: r.title },
    { name: "body", label: t("field.body"), type: "textarea", wide: true, value: r.body, hint: t("field.placeholders") },
  ], t("common.save"), async (v) => {
    await api(`/api/v1/saved-replies/${r.id}`, { method: "PATCH", body: v });
    toast(t("common.saved"));
    show("templates");
  }, { extraButtons: [remove] });
}

// ------------------------------------------------------------------ start

const SECTIONS = {
  users: usersSection, teams: teamsSection, queues: queuesSection, widgets: widgetsSection, templates: templatesSection,
};

async function show(name) {
  for (const b of document.querySelectorAll("[data-okno=admin-tabs] button")) {
    b.setAttribute("aria-selected", String(b.dataset.section === name));
  }
  try {
    root.replaceChildren(...(await SECTIONS[name]()));
    root.dataset.shown = name;
  } catch (err) {
    root.replaceChildren(h("div", { class: "banner error", text: err.text || String(err) }));
  }
}

for (const b of document.querySelectorAll("[data-okno=admin-tabs] button")) {
  b.addEventListener("click", () => {
    if (root.dataset.shown === b.dataset.section) return; // keep what is being typed
    history.replaceState(null, "", `#${b.dataset.section}`);
    show(b.dataset.section);
  });
}

initFrame();
document.querySelector("[data-okno=conn]")?.remove(); // no live stream on these pages
const only = root.dataset.only;
show(only || (SECTIONS[location.hash.slice(1)] ? location.hash.slice(1) : "users"));
