// Administration: staff, teams, widgets, reply templates. Every form sends what the API
// takes and shows the API's complaint next to the field it is about. The /templates page
// (for everyone) mounts only the templates section.
import { $, ME, api, h, initFrame, showFieldErrors, t, toast } from "./core.js";

const ROLES = ["operator", "supervisor", "admin"];
const root = $("section");
let teams = [];

/** A form from a field list; onSubmit(values, form) may throw an ApiError for the fields. */
function buildForm(name, fields, submitLabel, onSubmit, { extraButtons = [] } = {}) {
  const form = h("form", { class: "form", "data-okno": name, novalidate: true });
  for (const f of fields) {
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
      input = h("input", { ...common, type: f.type || "text", value: f.value ?? "", autocomplete: "off" });
    }
    form.append(h("label", { class: `field${f.wide ? " wide" : ""}${f.type === "checkbox" ? " check" : ""}` },
      f.type === "checkbox" ? input : null, f.label, f.type === "checkbox" ? null : input,
      f.hint ? h("span", { class: "hint", text: f.hint }) : null,
      h("span", { class: "field-error", "data-error-for": f.name })));
  }
  form.append(h("div", { class: "buttons" },
    h("button", { class: "btn btn-primary", type: "submit", text: submitLabel, "data-okno": "submit" }),
    ...extraButtons,
    h("span", { class: "form-error", "data-okno": "form-error" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showFieldErrors(form, null);
    const values = {};
    for (const f of fields) {
      const el = form.elements[f.name];
      values[f.name] = f.type === "checkbox" ? el.checked : f.type === "number" ? Number(el.value) : el.value;
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

const panel = (title, ...children) => h("section", { class: "panel" }, h("h2", { text: title }), ...children);
const teamOptions = () => [["", t("field.no_team")], ...teams.map((tm) => [String(tm.id), tm.name])];
const teamName = (id) => (teams.find((tm) => tm.id === id) || {}).name || "—";

async function loadTeams() {
  teams = (await api("/api/v1/teams")).teams;
}

// ------------------------------------------------------------------ users

async function usersSection() {
  await loadTeams();
  const users = (await api("/api/v1/users?all=true")).users;
  const editor = h("div", { "data-okno": "user-editor" });
  const rows = users.map((u) => h("tr", { "data-okno": "user-row", "data-login": u.login },
    h("td", { text: u.login }), h("td", { text: u.name }), h("td", { text: t(`role.${u.role}`) }),
    h("td", { text: teamName(u.team_id) }), h("td", { class: "num", text: u.capacity }),
    h("td", { text: u.is_active ? t("common.yes") : t("common.no") }),
    h("td", {}, h("button", { class: "btn btn-small", type: "button", text: t("common.edit"), "data-okno": "edit-user", onclick: () => editor.replaceChildren(editUser(u)) }))));
  const create = buildForm("new-user", [
    { name: "login", label: t("field.login") },
    { name: "name", label: t("field.name") },
    { name: "password", label: t("field.password"), type: "password" },
    { name: "role", label: t("field.role"), type: "select", options: ROLES.map((r) => [r, t(`role.${r}`)]) },
    { name: "team_id", label: t("field.team"), type: "select", options: teamOptions() },
    { name: "capacity", label: t("field.capacity"), type: "number", value: 5 },
  ], t("common.create"), async (v) => {
    await api("/api/v1/users", { method: "POST", body: { ...v, team_id: v.team_id ? Number(v.team_id) : null } });
    toast(t("common.saved"));
    show("users");
  });
  return [
    panel(t("admin.users"), h("table", { class: "data", "data-okno": "users" },
      h("thead", {}, h("tr", {}, ...[t("field.login"), t("field.name"), t("field.role"), t("field.team"), t("field.capacity"), t("field.active"), ""].map((x) => h("th", { text: x })))),
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
    { name: "password", label: t("field.new_password"), type: "password" },
    { name: "is_active", label: t("field.active"), type: "checkbox", value: u.is_active },
  ], t("common.save"), async (v) => {
    const body = { ...v, team_id: v.team_id ? Number(v.team_id) : null };
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
      { name: "greeting", label: t("field.greeting"), type: "textarea", wide: true, value: cfg.greeting || "" },
      { name: "info_message", label: t("field.info_message"), type: "textarea", wide: true, value: cfg.info_message || "" },
      { name: "allowed_origins", label: t("field.origins"), type: "textarea", wide: true, value: (cfg.allowed_origins || []).join("\n"), hint: "https://www.bank.example" },
    ], t("common.save"), async (v) => {
      const body = { ...v, allowed_origins: v.allowed_origins.split(/\s+/).map((s) => s.trim()).filter(Boolean) };
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
  const scopes = ME.role === "admin" ? ["personal", "team", "shared"] : ME.role === "supervisor" ? ["personal", "team"] : ["personal"];
  const editor = h("div", { "data-okno": "template-editor" });
  const mayEdit = (r) => r.owner_id === ME.id || ME.role === "admin" || (r.scope === "team" && ME.role === "supervisor");
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

const SECTIONS = { users: usersSection, teams: teamsSection, widgets: widgetsSection, templates: templatesSection };

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
