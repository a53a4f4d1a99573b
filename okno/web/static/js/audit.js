// The Аудит page (security officer, auditor, admin): search the audit log by who, what,
// which object, outcome and dates, newest first, paging on with the cursor; a row opens
// its details and hashes; "Verify the chain" walks the hash chain on the server; with
// retention.manage, the retention runs and a dry run. Every search is itself audited.
import { $, api, can, fmtDate, h, initFrame, t, toast } from "./core.js";

const form = $("audit-form");
const results = $("audit-results");
const more = $("audit-more");
const errorBox = $("audit-error");
const ACTIONS = [
  "auth.", "auth.sign_in", "auth.locked", "user.", "user.role_changed", "team.",
  "customer.", "customer.viewed", "customer.history_viewed", "pii.unmasked", "export",
  "report.viewed", "attachment.downloaded", "attachment.blocked", "recording.downloaded", "channel.",
  "channel.credentials_changed", "security.", "audit.searched", "retention.run",
];
let cursor = null;
let tbody = null;

/** The action's name in the page's language; an action this page does not know yet
 *  (added by a newer okno) shows as its code. */
const actionLabel = (action) => {
  const key = ["audit.act", action].join(".");
  const text = t(key);
  return text === key ? action : text;
};

function fillActions() {
  const select = $("audit-action");
  select.replaceChildren(
    h("option", { value: "", text: t("audit.any") }),
    ...ACTIONS.map((a) => h("option", { value: a, text: a.endsWith(".") ? `${a}*` : `${actionLabel(a)} (${a})` })),
  );
}

function params() {
  const data = new FormData(form);
  const query = new URLSearchParams();
  for (const [k, v] of data.entries()) if (String(v).trim()) query.set(k, String(v).trim());
  return query;
}

function fmtWhen(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : `${fmtDate(iso)} ${d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`;
}

function row(entry) {
  const tr = h("tr", { "data-okno": "audit-row", "data-seq": entry.seq, "data-action": entry.action, "data-clickable": true },
    h("td", { class: "num", text: String(entry.seq) }),
    h("td", { text: fmtWhen(entry.at) }),
    h("td", {}, h("span", { text: entry.actor_login || "—" }), entry.actor_role ? h("span", { class: "muted", text: ` · ${entry.actor_role}` }) : null),
    h("td", { text: entry.ip || "—" }),
    h("td", { "data-okno": "audit-action-cell", text: actionLabel(entry.action) }),
    h("td", { text: entry.object_type ? `${entry.object_type}:${entry.object_id}` : "—" }),
    h("td", { class: "audit-outcome", "data-outcome": entry.outcome, text: t(`audit.outcome.${entry.outcome}`) }),
  );
  tr.addEventListener("click", () => {
    const next = tr.nextElementSibling;
    if (next && next.dataset.okno === "audit-details") { next.remove(); return; }
    const text = [
      `${t("audit.details")}: ${JSON.stringify(entry.details, null, 2)}`,
      `${t("audit.prev_hash")}: ${entry.prev_hash}`,
      `${t("audit.hash")}: ${entry.hash}`,
    ].join("\n");
    tr.after(h("tr", { "data-okno": "audit-details" }, h("td", { colspan: 7, class: "audit-details", text })));
  });
  return tr;
}

async function search(append = false) {
  errorBox.textContent = "";
  const query = params();
  if (append && cursor != null) query.set("cursor", String(cursor));
  let page;
  try {
    page = await api(`/api/v1/audit?${query}`);
  } catch (err) {
    errorBox.textContent = err.message || String(err);
    return;
  }
  if (!append) {
    if (!page.entries.length) {
      results.replaceChildren(h("p", { class: "empty", "data-okno": "audit-empty", text: t("audit.none") }));
      tbody = null;
    } else {
      tbody = h("tbody");
      const heads = ["seq", "at", "who", "ip", "action", "object", "outcome"].map((c) => h("th", { class: c === "seq" ? "num" : null, text: t(`audit.col.${c}`) }));
      results.replaceChildren(h("table", { class: "data", "data-okno": "audit-table" }, h("thead", {}, h("tr", {}, heads)), tbody));
    }
  }
  if (tbody) tbody.append(...page.entries.map(row));
  cursor = page.next_cursor;
  more.hidden = cursor == null;
}

async function verify() {
  const verdict = $("audit-verdict");
  const out = await api("/api/v1/audit/verify");
  const text = out.ok
    ? t("audit.verify_ok", { count: out.count })
    : t("audit.verify_broken", { seq: out.broken.seq, problem: out.broken.problem, detail: out.broken.detail });
  verdict.replaceChildren(h("div", { class: `verdict ${out.ok ? "ok" : "broken"}`, "data-okno": "audit-verdict-text", "data-ok": String(out.ok), text }));
}

async function loadRuns() {
  const box = $("retention-runs");
  if (!box) return;
  const { runs } = await api("/api/v1/retention/runs");
  if (!runs.length) {
    box.replaceChildren(h("p", { class: "empty", text: t("retention.none") }));
    return;
  }
  const heads = ["when", "kind", "messages", "files", "customers", "audit"].map((c) => h("th", { class: ["when", "kind"].includes(c) ? null : "num", text: t(`retention.col.${c}`) }));
  box.replaceChildren(h("table", { class: "data", "data-okno": "retention-table" },
    h("thead", {}, h("tr", {}, heads)),
    h("tbody", {}, runs.map((r) => h("tr", { "data-okno": "retention-row", "data-id": r.id },
      h("td", { text: fmtWhen(r.started_at) }),
      h("td", { text: t(r.dry_run ? "retention.kind.dry" : "retention.kind.applied") }),
      h("td", { class: "num", text: String(r.report.messages.messages_erased) }),
      h("td", { class: "num", text: String(r.report.attachments.files_deleted) }),
      h("td", { class: "num", text: String(r.report.customers.anonymised) }),
      h("td", { class: "num", text: String(r.report.audit.entries_deleted) }),
    ))),
  ));
}

initFrame();
$("conn")?.remove(); // no live stream on this page
fillActions();
form.addEventListener("submit", (event) => { event.preventDefault(); search(false); });
more.addEventListener("click", () => search(true));
$("audit-verify")?.addEventListener("click", () => verify().catch((err) => toast(err.message || String(err), "error")));
$("retention-dry-run")?.addEventListener("click", async () => {
  try {
    await api("/api/v1/retention/runs?dry_run=true", { method: "POST" });
    await loadRuns();
  } catch (err) {
    toast(err.message || String(err), "error");
  }
});
search(false);
if (can("retention.manage")) loadRuns().catch(() => {});
