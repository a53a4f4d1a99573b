// The Каналы page (admins): every channel with its kind, name and on/off; for a messenger
// channel its settings (a form built from the kind's list in GET /api/v1/channels/kinds,
// secrets shown only as "set" with a field to replace them), "Check" with the platform's
// answer, the address to give the platform, and the recent errors; adding a channel.
import { $, api, channelBadge, channelLabel, fmtTime, h, initFrame, showFieldErrors, t, toast } from "./core.js";

const list = $("channel-list");
const detail = $("channel-detail");
const adder = $("channel-add");
let kinds = new Map(); // kind -> ChannelKindOut
let channels = [];

/** A UI text when the table has one, else the fallback (adapters bring settings the
 *  table may not know yet: their name and their own help text are shown then). */
function textOr(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

const settingLabel = (s) => textOr(["setting", s.name].join("."), s.name);
const settingHelp = (s) => textOr(["setting_help", s.name].join("."), s.help);

// ------------------------------------------------------------------ the list

async function load(openId) {
  const [kindsOut, channelsOut] = await Promise.all([api("/api/v1/channels/kinds"), api("/api/v1/channels")]);
  kinds = new Map(kindsOut.kinds.map((k) => [k.kind, k]));
  channels = channelsOut.channels;
  renderList();
  renderAdder();
  if (openId != null) openChannel(openId);
}

function renderList() {
  if (!channels.length) {
    list.replaceChildren(h("p", { class: "empty", text: t("channels.none") }));
    return;
  }
  const rows = channels.map((c) => h("tr", { "data-okno": "channel-row", "data-id": c.id, "data-kind": c.kind },
    h("td", {}, channelBadge(c.kind), " ", h("span", { text: channelLabel(c.kind) })),
    h("td", {}, h("strong", { text: c.name })),
    h("td", {}, h("span", {
      class: `pill ${c.is_active ? "assigned" : "closed"}`, "data-okno": "channel-state", "data-active": String(c.is_active),
      text: c.is_active ? t("channels.on") : t("channels.off"),
    })),
    h("td", { class: "mono small", text: c.webhook_path || "" }),
    h("td", {}, c.kind === "widget"
      ? h("a", { href: "/admin#widgets", class: "small", text: t("channels.widget_hint") })
      : h("button", { class: "btn btn-small", type: "button", "data-okno": "channel-open", text: t("channels.open"), onclick: () => openChannel(c.id) }))));
  list.replaceChildren(h("table", { class: "data", "data-okno": "channels" },
    h("thead", {}, h("tr", {}, ...[t("channels.kind"), t("channels.name"), t("channels.state"), t("channels.webhook"), ""].map((x) => h("th", { text: x })))),
    h("tbody", {}, ...rows)));
}

// ------------------------------------------------------------------ the settings form

/**
 * The form of a kind's settings. For a new channel everything is typed in; for an
 * existing one the current values are filled in, and a secret shows only whether it is
 * set: an empty field keeps it, a value replaces it, "remove" (optional ones) clears it.
 */
function settingsForm(kind, channel, submitLabel, onSubmit) {
  const cfg = (channel && channel.config) || {};
  const form = h("form", { class: "form", "data-okno": channel ? "channel-form" : "new-channel-form", novalidate: true });
  const field = (name, label, input, hint, extra) => h("label", { class: `field${input.type === "checkbox" ? " check" : ""}`, "data-setting": name },
    input.type === "checkbox" ? input : null,
    h("span", {}, label, extra || null),
    input.type === "checkbox" ? null : input,
    hint ? h("span", { class: "hint", text: hint }) : null,
    h("span", { class: "field-error", "data-error-for": name }));

  form.append(field("name", t("channels.name"),
    h("input", { name: "name", value: channel ? channel.name : "", maxlength: 200, placeholder: kind.title, autocomplete: "off" }),
    t("channels.name_hint")));
  for (const s of kind.settings) {
    const required = s.required ? h("span", { class: "hint", text: ` · ${t("channels.required")}` }) : null;
    if (s.secret) {
      const isSet = !!cfg[`${s.name}_set`];
      const input = h("input", {
        name: s.name, type: "password", autocomplete: "new-password", "data-secret": "true",
        placeholder: isSet ? t("channels.secret_replace") : "",
      });
      const state = channel ? h("span", {
        class: `pill ${isSet ? "assigned" : "closed"}`, "data-okno": "secret-state", "data-set": String(isSet),
        text: isSet ? t("channels.secret_set") : t("channels.secret_unset"),
      }) : null;
      const remove = channel && isSet && !s.required
        ? h("label", { class: "check small" }, h("input", { type: "checkbox", name: `${s.name}__remove`, "data-okno": "secret-remove" }), t("channels.secret_remove"))
        : null;
      const node = field(s.name, settingLabel(s), input, settingHelp(s), h("span", {}, required, " ", state));
      node.insertBefore(h("span", { class: "hint", text: t("channels.secret_note") }), node.querySelector(".field-error"));
      if (remove) node.insertBefore(remove, node.querySelector(".field-error"));
      form.append(node);
    } else {
      const value = cfg[s.name] ?? (channel ? "" : s.default ?? "");
      form.append(field(s.name, settingLabel(s), h("input", { name: s.name, value, autocomplete: "off" }), settingHelp(s), required));
    }
  }
  const bot = h("input", { type: "checkbox", name: "bot", checked: !!cfg.bot });
  form.append(field("bot", t("channels.bot"), bot));
  if (channel) form.append(field("is_active", t("channels.active"), h("input", { type: "checkbox", name: "is_active", checked: channel.is_active })));
  form.append(h("div", { class: "buttons" },
    h("button", { class: "btn btn-primary", type: "submit", "data-okno": "submit", text: submitLabel }),
    h("span", { class: "form-error", "data-okno": "form-error" })));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showFieldErrors(form, null);
    const settings = {};
    for (const s of kind.settings) {
      const value = form.elements[s.name].value.trim();
      if (s.secret) {
        const remove = form.elements[`${s.name}__remove`];
        if (remove && remove.checked) settings[s.name] = "";
        else if (value) settings[s.name] = value; // empty: keep the stored one
      } else if (channel || value) settings[s.name] = value; // "" removes an optional one
    }
    const body = { settings, bot: form.elements.bot.checked };
    const name = form.elements.name.value.trim();
    if (name) body.name = name;
    if (channel) body.is_active = form.elements.is_active.checked;
    const button = form.querySelector("[data-okno=submit]");
    button.disabled = true;
    try {
      await onSubmit(body);
    } catch (err) {
      if (err && err.status) showFieldErrors(form, err);
      else throw err;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// ------------------------------------------------------------------ one channel

function openChannel(id) {
  const channel = channels.find((c) => c.id === id);
  const kind = channel && kinds.get(channel.kind);
  for (const row of list.querySelectorAll("[data-okno=channel-row]")) row.setAttribute("aria-current", String(Number(row.dataset.id) === id));
  if (!channel || !kind) {
    detail.replaceChildren();
    return;
  }
  const form = settingsForm(kind, channel, t("common.save"), async (body) => {
    const updated = await api(`/api/v1/channels/${channel.id}`, { method: "PATCH", body });
    toast(t("common.saved"));
    channels = channels.map((c) => (c.id === updated.id ? updated : c));
    renderList();
    openChannel(updated.id);
  });

  const checkResult = h("div", { class: "check-result", "data-okno": "check-result", hidden: true });
  const checkButton = h("button", { class: "btn", type: "button", "data-okno": "check", text: t("channels.check") });
  checkButton.addEventListener("click", async () => {
    checkButton.disabled = true;
    checkResult.hidden = false;
    checkResult.dataset.ok = "";
    checkResult.textContent = t("channels.checking");
    try {
      const out = await api(`/api/v1/channels/${channel.id}/check`, { method: "POST" });
      checkResult.dataset.ok = String(out.ok);
      checkResult.textContent = t(out.ok ? "channels.check_ok" : "channels.check_failed", { detail: out.detail });
      if (!out.ok) loadErrors(channel.id, errors);
    } catch (err) {
      checkResult.dataset.ok = "false";
      checkResult.textContent = err.text || String(err);
    } finally {
      checkButton.disabled = false;
    }
  });

  const errors = h("div", { "data-okno": "channel-errors" });
  const refresh = h("button", { class: "btn btn-small", type: "button", "data-okno": "errors-refresh", text: t("channels.refresh"), onclick: () => loadErrors(channel.id, errors) });

  detail.replaceChildren(h("section", { class: "panel", "data-okno": "channel-detail-panel", "data-id": channel.id },
    h("h2", {}, channelBadge(channel.kind), h("span", { text: channel.name })),
    h("div", { class: "channel-actions" }, checkButton, checkResult),
    webhookBlock(channel, kind),
    h("h3", { class: "sub", text: t("channels.settings") }),
    form,
    h("h3", { class: "sub" }, t("channels.errors"), " ", refresh),
    errors));
  loadErrors(channel.id, errors);
}

function webhookBlock(channel, kind) {
  const box = h("div", { class: "webhook", "data-okno": "webhook" }, h("strong", { text: t("channels.webhook") }));
  if ((channel.config || {}).mode === "polling") {
    box.append(h("p", { class: "hint", "data-okno": "webhook-polling", text: t("channels.webhook_polling") }));
    return box;
  }
  if (channel.webhook_url) {
    box.append(h("code", { class: "address", "data-okno": "webhook-url", text: channel.webhook_url }));
  } else {
    box.append(h("code", { class: "address", "data-okno": "webhook-url", text: channel.webhook_path }),
      h("p", { class: "hint", text: t("channels.webhook_no_public", { path: channel.webhook_path }) }));
  }
  box.append(h("p", { class: "hint", text: t("channels.webhook_hint") }));
  if (kind.sets_webhook && channel.webhook_url) {
    const result = h("span", { class: "hint", "data-okno": "webhook-result" });
    box.append(h("div", { class: "channel-actions" },
      h("button", {
        class: "btn btn-small", type: "button", "data-okno": "webhook-set", text: t("channels.webhook_set"),
        onclick: async () => {
          try {
            const out = await api(`/api/v1/channels/${channel.id}/webhook`, { method: "POST" });
            result.textContent = out.ok ? t("channels.webhook_done", { url: out.url }) : t("channels.check_failed", { detail: out.detail });
          } catch (err) {
            result.textContent = err.text || String(err);
          }
        },
      }), result));
  }
  return box;
}

async function loadErrors(channelId, box) {
  let out;
  try {
    out = await api(`/api/v1/channels/${channelId}/errors`);
  } catch (err) {
    box.replaceChildren(h("div", { class: "banner error", text: err.text || String(err) }));
    return;
  }
  if (!out.errors.length) {
    box.replaceChildren(h("p", { class: "muted small", "data-okno": "errors-none", text: t("channels.errors_none") }));
    return;
  }
  box.replaceChildren(h("table", { class: "data", "data-okno": "errors" },
    h("tbody", {}, ...out.errors.map((e) => h("tr", { "data-okno": "channel-error", "data-kind": e.kind },
      h("td", { class: "muted nowrap narrow", text: fmtTime(e.created_at) }),
      h("td", { class: "nowrap narrow" }, h("span", { class: "pill", text: t(`channels.error_kind.${e.kind}`) })),
      h("td", { class: "mono", text: e.message }))))));
}

// ------------------------------------------------------------------ adding one

function renderAdder() {
  const available = [...kinds.values()];
  if (!available.length) {
    adder.replaceChildren(h("p", { class: "empty", text: t("channels.no_kinds") }));
    return;
  }
  const pick = h("select", { "data-okno": "new-kind", "aria-label": t("channels.pick_kind") },
    ...available.map((k) => h("option", { value: k.kind, text: k.title })));
  const slot = h("div", { "data-okno": "new-channel" });
  const show = () => {
    const kind = kinds.get(pick.value);
    slot.replaceChildren(settingsForm(kind, null, t("common.create"), async (body) => {
      const created = await api("/api/v1/channels", { method: "POST", body: { kind: kind.kind, ...body } });
      toast(t("channels.created"));
      channels = [...channels, created];
      renderList();
      show(); // an empty form again: no token stays on the screen
      openChannel(created.id);
      detail.scrollIntoView({ block: "start" });
    }));
  };
  pick.addEventListener("change", show);
  adder.replaceChildren(h("label", { class: "field inline" }, t("channels.pick_kind"), pick), slot);
  show();
}

// ------------------------------------------------------------------ start

initFrame();
$("conn")?.remove(); // no live stream on this page
load().catch((err) => list.replaceChildren(h("div", { class: "banner error", text: err.text || String(err) })));
