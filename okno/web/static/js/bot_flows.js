// Button flows and the branch/ATM directory on the /bot page (tab "Сценарии"). A flow is
// edited as YAML text (the same format as the import file) next to a picture of its steps
// drawn from what was saved; the server checks every save and names the step at fault.
import { api, can, fmtTime, h, t, toast } from "./core.js";

const CAN_EDIT = can("bot.manage");
const panel = (title, ...children) => h("section", { class: "panel" }, title ? h("h2", { text: title }) : null, ...children);

const NEW_FLOW = `title: Новый сценарий
questions:
  - Как клиенты об этом спрашивают
topic: general
start: ask
steps:
  ask:
    kind: choice
    text: Что вас интересует?
    options:
      - {label: Первый вариант, next: first}
      - {label: Позвать оператора, next: person}
  first:
    kind: message
    text: Ответ на первый вариант.
  person:
    kind: handoff
`;

function download(name, text, type) {
  const link = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
}

function fileButton(label, accept, name, onText) {
  const file = h("input", { type: "file", accept, hidden: true, "data-okno": `${name}-file` });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    file.value = "";
    if (!chosen) return;
    if (chosen.size > 5 * 1024 * 1024) return toast(t("error.payload_too_large"), "error");
    await onText(await chosen.text());
  });
  return h("span", {}, file, h("button", { class: "btn", type: "button", "data-okno": name, text: label, onclick: () => file.click(), disabled: !CAN_EDIT }));
}

function problems(err) {
  const errors = (err.fields && err.fields.errors) || [];
  const detail = errors.slice(0, 3).map((e) => `${e.position ? "#" + e.position : t("flows.line") + " " + e.line} ${e.id ?? ""}: ${e.problem}`).join("; ");
  return `${err.text || err}${detail ? " — " + detail : ""}`;
}

/** The steps as cards, from the start along the ways out; unreachable steps last. */
function diagram(flow) {
  const order = [];
  const seen = new Set();
  const walk = (name) => {
    if (!name || seen.has(name) || !flow.steps[name]) return;
    seen.add(name);
    order.push(name);
    const step = flow.steps[name];
    for (const o of step.options || []) walk(o.next);
    walk(step.next);
  };
  walk(flow.start);
  for (const name of Object.keys(flow.steps)) if (!seen.has(name)) order.push(name);
  return h("ol", { class: "flow-steps", "data-okno": "flow-diagram" }, ...order.map((name) => {
    const s = flow.steps[name];
    const ways = [];
    for (const o of s.options || []) ways.push(h("li", {}, h("span", { class: "flow-btn", text: o.label }), " → ", h("code", { text: o.next })));
    if (s.next) ways.push(h("li", {}, "→ ", h("code", { text: s.next })));
    const detail = s.kind === "article" ? t("flows.article", { id: s.article })
      : s.kind === "action" ? t("flows.action", { action: s.action })
        : s.kind === "location" ? t("flows.location", { places: t(`flows.places.${s.places}`), limit: s.limit })
          : s.kind === "handoff" ? t("flows.handoff", { topic: s.topic || flow.topic || "—" }) : "";
    return h("li", { class: `flow-step kind-${s.kind}`, "data-step": name, "data-kind": s.kind },
      h("div", { class: "flow-head" }, h("code", { text: name }), " ", h("span", { class: "badge", text: t(`flows.kind.${s.kind}`) }),
        name === flow.start ? h("span", { class: "badge start", text: t("flows.start") }) : null, !seen.has(name) ? h("span", { class: "badge warn", text: t("flows.unreachable") }) : null),
      s.text ? h("p", { class: "flow-text", text: s.text }) : null,
      detail ? h("p", { class: "muted small", text: detail }) : null,
      ways.length ? h("ul", { class: "flow-ways" }, ...ways) : null);
  }));
}

async function editor(id, box, reloadList) {
  const isNew = id === null;
  const flow = isNew ? null : await api(`/api/v1/bot/flows/${encodeURIComponent(id)}`);
  const idInput = h("input", { name: "id", "data-field": "id", value: isNew ? "" : id, disabled: !isNew || !CAN_EDIT, autocomplete: "off", placeholder: "card-block" });
  const text = h("textarea", { class: "code", rows: 24, spellcheck: "false", "data-okno": "flow-yaml", disabled: !CAN_EDIT, value: isNew ? NEW_FLOW : flow.yaml.replace(/^id: .*\n/, "") });
  const error = h("div", { class: "form-error", role: "alert", "data-okno": "flow-error" });
  const picture = h("div", { class: "flow-picture" }, flow ? diagram(flow) : h("p", { class: "muted", text: t("flows.preview_after_save") }));
  const historyBox = h("div", { class: "flow-history" });
  let version = flow ? flow.version : null;

  async function save() {
    error.textContent = "";
    const name = idInput.value.trim();
    if (!name) return (error.textContent = t("flows.id_needed"));
    try {
      const saved = await api(`/api/v1/bot/flows/${encodeURIComponent(name)}`, { method: "PUT", body: { yaml: text.value, version } });
      toast(t("flows.saved", { version: saved.version }));
      await reloadList();
      await editor(saved.id, box, reloadList);
    } catch (err) {
      error.textContent = err.status === 409 ? `${err.text} ${t("flows.conflict_hint")}` : problems(err);
    }
  }

  async function switchOff() {
    if (!confirm(t("flows.confirm_off", { title: flow.title }))) return;
    await api(`/api/v1/bot/flows/${encodeURIComponent(id)}`, { method: "DELETE" });
    toast(t("flows.switched_off"));
    await reloadList();
    await editor(id, box, reloadList);
  }

  async function showHistory() {
    const { versions } = await api(`/api/v1/bot/flows/${encodeURIComponent(id)}/history`);
    historyBox.replaceChildren(h("table", { class: "data", "data-okno": "flow-history" },
      h("thead", {}, h("tr", {}, h("th", { text: t("flows.version") }), h("th", { text: t("flows.who") }), h("th", { text: t("flows.when") }), h("th", { text: t("flows.how") }), h("th"))),
      h("tbody", {}, ...versions.map((v) => h("tr", {},
        h("td", { text: String(v.version) }), h("td", { text: v.changed_by || "—" }), h("td", { text: fmtTime(v.at) }),
        h("td", { text: t(`flows.source.${v.source}`) }),
        h("td", {}, h("button", { class: "btn btn-small", type: "button", text: t("flows.load_version"), disabled: !CAN_EDIT,
          onclick: () => { text.value = Object.entries(v.content).length ? versionText(v.content) : text.value; toast(t("flows.loaded_version", { version: v.version })); } })))))));
  }

  const head = flow
    ? h("p", { class: "muted small" }, t("flows.meta", { version: flow.version, who: flow.updated_by || "—", when: fmtTime(flow.updated_at) }), flow.is_active ? "" : h("span", { class: "badge warn", text: ` ${t("flows.off")}` }))
    : null;
  box.replaceChildren(h("div", { class: "flow-editor", "data-okno": "flow-editor" },
    h("div", {},
      h("label", { class: "field" }, t("flows.id"), idInput),
      head,
      text,
      h("div", { class: "buttons" },
        CAN_EDIT ? h("button", { class: "btn btn-primary", type: "button", "data-okno": "flow-save", text: t("flows.save"), onclick: save }) : null,
        flow && flow.is_active && CAN_EDIT ? h("button", { class: "btn", type: "button", "data-okno": "flow-off", text: t("flows.switch_off"), onclick: switchOff }) : null,
        flow ? h("button", { class: "btn", type: "button", "data-okno": "flow-history-open", text: t("flows.history"), onclick: showHistory }) : null),
      error, historyBox),
    picture));
}

/** A saved version's content back as editable text (the server's YAML is only for the
 *  current version; older ones are shown in the same layout, as JSON-compatible YAML). */
function versionText(content) {
  return JSON.stringify(content, null, 2);
}

async function placesPanel() {
  const total = h("span", { "data-okno": "places-total" });
  const near = h("div", { class: "places-near" });
  const replace = h("input", { type: "checkbox", "data-okno": "places-replace", disabled: !CAN_EDIT });
  const lat = h("input", { type: "number", step: "any", value: "55.7558", "data-okno": "places-lat" });
  const lon = h("input", { type: "number", step: "any", value: "37.6173", "data-okno": "places-lon" });

  async function refresh() {
    try {
      const found = await api(`/api/v1/bot/places?lat=${encodeURIComponent(lat.value)}&lon=${encodeURIComponent(lon.value)}&limit=5`);
      total.textContent = t("places.total", { n: found.total });
      near.replaceChildren(found.places.length
        ? h("ol", { class: "places-list" }, ...found.places.map((p) => h("li", {},
          h("b", { text: p.name }), ` — ${p.address} · ${p.distance_km} ${t("places.km")}`, p.hours ? h("span", { class: "muted small", text: ` · ${p.hours}` }) : null)))
        : h("p", { class: "empty", text: t("places.none") }));
    } catch (err) {
      near.replaceChildren(h("p", { class: "form-error", text: err.text || String(err) }));
    }
  }

  const importer = fileButton(t("places.import"), ".csv,text/csv", "places-import", async (csv) => {
    try {
      const r = await api(`/api/v1/bot/places/import${replace.checked ? "?replace=true" : ""}`, { method: "POST", form: csv });
      toast(t("places.imported", { created: r.created, updated: r.updated, unchanged: r.unchanged, off: r.deactivated }));
      await refresh();
    } catch (err) {
      toast(problems(err), "error");
    }
  });
  await refresh();
  return panel(t("places.title"),
    h("p", {}, total, " ", h("span", { class: "muted small", text: t("places.format") })),
    h("div", { class: "kb-tools" }, importer, h("label", { class: "check" }, replace, t("places.replace"))),
    h("div", { class: "kb-tools" }, t("places.check"), " ", lat, " ", lon, " ", h("button", { class: "btn", type: "button", text: t("places.find"), onclick: refresh })),
    near);
}

export async function flowsSection() {
  const listBox = h("div", { class: "flow-list" });
  const box = h("div", { class: "flow-edit" });

  async function reloadList() {
    const { flows } = await api("/api/v1/bot/flows");
    listBox.replaceChildren(flows.length
      ? h("table", { class: "data", "data-okno": "flows" },
        h("thead", {}, h("tr", {}, h("th", { text: t("flows.title") }), h("th", { text: t("flows.steps") }), h("th", { text: t("flows.version") }), h("th", { text: t("flows.changed") }))),
        h("tbody", {}, ...flows.map((f) => h("tr", { class: f.is_active ? "" : "muted", "data-flow": f.id, tabindex: 0, onclick: () => editor(f.id, box, reloadList), onkeydown: (e) => e.key === "Enter" && editor(f.id, box, reloadList) },
          h("td", {}, h("div", { text: f.title }), h("code", { class: "small", text: f.id }), f.is_active ? null : h("span", { class: "badge warn", text: ` ${t("flows.off")}` })),
          h("td", { text: String(Object.keys(f.steps).length) }), h("td", { text: String(f.version) }), h("td", { text: fmtTime(f.updated_at) })))))
      : h("p", { class: "empty", text: t("flows.none") }));
  }

  const tools = h("div", { class: "kb-tools" },
    CAN_EDIT ? h("button", { class: "btn btn-primary", type: "button", "data-okno": "flow-new", text: t("flows.new"), onclick: () => editor(null, box, reloadList) }) : null,
    fileButton(t("flows.import"), ".yaml,.yml,.json", "flows-import", async (body) => {
      try {
        const r = await api("/api/v1/bot/flows/import", { method: "POST", form: body });
        toast(t("bot.imported", { created: r.created, updated: r.updated, unchanged: r.unchanged }));
        await reloadList();
      } catch (err) {
        toast(problems(err), "error");
      }
    }),
    h("button", { class: "btn", type: "button", text: t("flows.export"), onclick: async () => {
      const data = await api("/api/v1/bot/flows/export");
      download(`flows-${new Date().toISOString().slice(0, 10)}.json`, JSON.stringify(data, null, 2), "application/json");
    } }));
  await reloadList();
  return [panel(t("bot.tab.flows"), h("p", { class: "muted small", text: t("flows.intro") }), tools, h("div", { class: "kb-layout" }, listBox, box)), await placesPanel()];
}
