"""Schemas of sign-in security: password change, TOTP set-up, lockout state, allow-lists."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from okno.inputs import Input


class Credentials(Input):
    """Login and current password: these endpoints are where someone not yet able to sign
    in (a forced password change, a role that needs a second factor) proves who they are."""

    login: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)


class PasswordChange(Credentials):
    new_password: str = Field(max_length=500, description="Checked against the password policy.")
    otp: str | None = Field(default=None, max_length=20, description="When 2FA is on.")


class TotpConfirm(Credentials):
    otp: str = Field(min_length=1, max_length=20)


class TotpSetupOut(BaseModel):
    secret: str = Field(description="Base32 secret to type into an app (shown only now).")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an SVG QR code.")


class SignInStateOut(BaseModel):
    user_id: int
    source: str = Field(description="local, ldap or oidc")
    locked: bool
    locked_until: datetime | None = Field(description="null while locked: until unlocked")
    failed_attempts: int
    totp_enabled: bool
    must_change_password: bool
    last_sign_in_at: datetime | None
    password_changed_at: datetime | None


class TemporaryPasswordOut(BaseModel):
    temporary_password: str = Field(
        description="Give it to the user; they must choose a new one at the next sign-in."
    )


class TwoFactorRoles(Input):
    roles: list[str] = Field(max_length=20, description="Roles that must use a second factor.")


class AllowlistEntry(Input):
    cidr: str = Field(min_length=1, max_length=50, examples=["10.20.0.0/16"])
    note: str = Field(default="", max_length=200)


class StaffAllowlist(Input):
    entries: list[AllowlistEntry] = Field(
        max_length=500, description="Empty: staff may sign in from anywhere."
    )


class StaffAllowlistOut(BaseModel):
    entries: list[dict[str, str]]
    from_settings: list[str] = Field(description="OKNO_SIGNIN_IP_ALLOWLIST (read-only here).")


class TokenAllowlist(Input):
    ip_allowlist: list[str] = Field(
        max_length=100, description="Addresses or networks (CIDR); empty: anywhere."
    )


class TokenAllowlistOut(BaseModel):
    token_id: int
    ip_allowlist: list[str]
