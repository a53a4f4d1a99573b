// okno sign-in: a browser session (HttpOnly cookie + CSRF token), then on to the page
// that sent us here.
import { $, t } from "./core.js";

const form = $("login");
const error = $("login-error");
const reason = new URLSearchParams(location.search).get("reason");
if (reason === "expired") error.textContent = t("login.expired");
if (reason === "signed_out") error.textContent = t("login.signed_out");

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    const res = await fetch("/api/v1/auth/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ login: form.elements.login.value.trim(), password: form.elements.password.value }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const key = `error.${data.code}`;
      error.textContent = t(key) !== key ? t(key) : data.detail || t("error.generic", { status: res.status });
      form.elements.password.select();
      return;
    }
    location.assign(form.dataset.next || "/");
  } catch {
    error.textContent = t("login.unavailable");
  } finally {
    button.disabled = false;
  }
});
