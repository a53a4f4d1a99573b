// okno sign-in: a browser session (HttpOnly cookie + CSRF token), then on to the page
// that sent us here. After the password the server may ask for more, by error code:
//   otp_required             -> the code from the authenticator app
//   totp_enrolment_required  -> set up the app (QR code / key), confirm with a code
//   password_change_required -> choose a new password (after an admin's reset)
import { $, t } from "./core.js";

const form = $("login");
const error = $("login-error");
const note = $("login-note");
const otpRow = $("login-otp");
const enrol = $("login-enrol");
const change = $("login-change");
// why the person is here (?reason=expired, signed_out, oidc_no_role, ...) is written into
// the error line by the server, in the page's language
let mode = "password"; // password | enrol | change

function showError(data, status) {
  const key = `error.${data.code}`;
  error.textContent = t(key) !== key ? t(key) : data.detail || t("error.generic", { status });
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  const data = res.status === 204 ? {} : await res.json().catch(() => ({}));
  return { res, data };
}

function askForCode(message) {
  otpRow.hidden = false;
  form.elements.otp.value = "";
  form.elements.otp.focus();
  if (message) note.textContent = message;
}

function credentials() {
  return { login: form.elements.login.value.trim(), password: form.elements.password.value };
}

async function signIn() {
  const body = credentials();
  const otp = form.elements.otp.value.trim();
  if (!otpRow.hidden && otp) body.otp = otp;
  const { res, data } = await post("/api/v1/auth/session", body);
  if (res.ok) {
    location.assign(form.dataset.next || "/");
    return;
  }
  if (data.code === "otp_required") {
    askForCode(t("login.otp_needed"));
    return;
  }
  if (data.code === "totp_enrolment_required") {
    const setup = await post("/api/v1/auth/totp/setup", credentials());
    if (!setup.res.ok) return showError(setup.data, setup.res.status);
    // an <img> of the SVG: no markup from the network is put into the page
    $("login-qr").src = "data:image/svg+xml;base64," + btoa(setup.data.qr_svg);
    $("login-secret").textContent = setup.data.secret;
    enrol.hidden = false;
    mode = "enrol";
    askForCode("");
    return;
  }
  if (data.code === "password_change_required") {
    change.hidden = false;
    mode = "change";
    form.elements.new_password.focus();
    return;
  }
  showError(data, res.status);
  if (data.code === "otp_invalid") form.elements.otp.select();
  else form.elements.password.select();
}

async function confirmEnrolment() {
  const { res, data } = await post("/api/v1/auth/totp/confirm", {
    ...credentials(),
    otp: form.elements.otp.value.trim(),
  });
  if (!res.ok) return showError(data, res.status);
  enrol.hidden = true;
  mode = "password";
  askForCode(t("login.enrol_done"));
}

async function changePassword() {
  const fresh = form.elements.new_password.value;
  if (fresh !== form.elements.new_password_again.value) {
    error.textContent = t("login.passwords_differ");
    return;
  }
  const body = { ...credentials(), new_password: fresh };
  const otp = form.elements.otp.value.trim();
  if (!otpRow.hidden && otp) body.otp = otp;
  const { res, data } = await post("/api/v1/auth/password", body);
  if (!res.ok) {
    if (data.code === "otp_required") return askForCode(t("login.otp_needed"));
    return showError(data, res.status);
  }
  change.hidden = true;
  mode = "password";
  form.elements.password.value = "";
  form.elements.new_password.value = form.elements.new_password_again.value = "";
  form.elements.password.focus();
  if (!otpRow.hidden) form.elements.otp.value = "";
  note.textContent = t("login.changed");
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  note.textContent = "";
  try {
    if (mode === "enrol") await confirmEnrolment();
    else if (mode === "change") await changePassword();
    else await signIn();
  } catch {
    error.textContent = t("login.unavailable");
  } finally {
    button.disabled = false;
  }
});
