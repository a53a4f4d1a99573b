"""Masking personal data on its way out to staff: message text, attachment names, dialog
previews, customer names, identities, notes and log lines.

The database keeps every text as the customer wrote it (the bank needs the original for
disputes); what staff screens, the event stream, search results and logs receive passes
through here. Customers see their own dialog unmasked, so nothing here is applied to what
the widget, the mobile app or a messenger gets.

The functions work on plain dicts (the JSON shapes of ``MessageOut`` and
``ConversationOut``) so the event stream, which carries those shapes as stored JSON, and
the handlers, which build them, share one implementation.
"""

from __future__ import annotations

from typing import Any

from okno.security import pii

# Channels whose customer id *is* a phone number (WhatsApp's wa_id, a caller's number):
# operators never see it, not even in part. Widget visitor ids resume a session: secret.
PHONE_ID_KINDS = frozenset({"whatsapp", "phone", "sms"})
SECRET_ID_KINDS = frozenset({"widget"})
PHONE_PLACEHOLDER = "[телефон]"

__all__ = [
    "PHONE_ID_KINDS",
    "SECRET_ID_KINDS",
    "conversation",
    "identity",
    "message",
    "staff_payload",
    "text",
    "value",
]


def text(value: str) -> str:
    """``value`` with every card, phone, passport, INN, SNILS, account and e-mail masked."""
    return pii.mask(value) if value else value


def value(obj: Any) -> Any:
    """Every string inside ``obj`` (nested dicts, lists, tuples) masked; the rest as is."""
    if isinstance(obj, str):
        return pii.mask(obj)
    if isinstance(obj, dict):
        return {k: value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(value(v) for v in obj)
    return obj


def message(shaped: dict[str, Any]) -> dict[str, Any]:
    """A ``MessageOut`` dict as staff may see it: text, file names and the strings in
    ``meta`` masked, and
    ``masked`` true when anything was hidden (the screen then offers "Показать" to those
    allowed)."""
    raw_text = shaped.get("text") or ""
    masked_text = text(raw_text)
    hidden = masked_text != raw_text
    attachments = []
    for att in shaped.get("attachments") or []:
        name = att.get("filename") or ""
        masked_name = text(name)
        hidden = hidden or masked_name != name
        attachments.append({**att, "filename": masked_name})
    author = shaped.get("author_name") or ""
    meta = shaped.get("meta")
    # a shared contact's number, a failed file's name: everything in meta is masked too
    masked_meta = value(meta) if meta else meta
    if isinstance(meta, dict) and isinstance(meta.get("reply_to"), dict):
        # e-mail threading ids look like addresses but name a message, not a person; the
        # reply must quote them exactly or the customer's mail client breaks the thread
        original = meta["reply_to"]
        kept = {k: original[k] for k in ("message_id", "references") if k in original}
        masked_reply = dict(masked_meta["reply_to"]) if isinstance(masked_meta, dict) else {}
        masked_meta = {**(masked_meta or {}), "reply_to": {**masked_reply, **kept}}
    hidden = hidden or masked_meta != meta
    return {
        **shaped,
        "text": masked_text,
        "author_name": text(author),
        "attachments": attachments,
        "meta": masked_meta,
        "masked": hidden or bool(shaped.get("masked")),
    }


def conversation(shaped: dict[str, Any]) -> dict[str, Any]:
    """A ``ConversationOut`` dict as staff may see it: preview and customer name masked."""
    out = {**shaped, "last_message_preview": text(shaped.get("last_message_preview") or "")}
    customer = shaped.get("customer")
    if isinstance(customer, dict):
        out["customer"] = {**customer, "name": text(customer.get("name") or "")}
    return out


def staff_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An event payload for a staff screen: the message and dialog it carries masked."""
    out = dict(payload)
    if isinstance(out.get("message"), dict):
        out["message"] = message(out["message"])
    if isinstance(out.get("conversation"), dict):
        out["conversation"] = conversation(out["conversation"])
    return out


def identity(kind: str, external_id: str) -> str:
    """A customer's id in a channel as staff may see it: a phone-number id is never
    shown, a widget visitor id keeps its last four characters, the rest is masked for
    whatever personal data it holds (an e-mail address keeps its domain)."""
    if kind in PHONE_ID_KINDS or pii.find(external_id, ("phone",)):
        return PHONE_PLACEHOLDER
    if kind in SECRET_ID_KINDS:
        return "•••" + external_id[-4:] if len(external_id) > 8 else "•••"
    return text(external_id)
