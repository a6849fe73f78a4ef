"""Notifications: one readable summary on failure or soft-gate warning, by e-mail (SMTP)
and/or a chat webhook (Tchap/Mattermost/Slack-compatible ``{"text": ...}``).

Configured by Airflow connections (``ti_notify_smtp``: host, port, login, password,
extra ``{"from": ..., "to": [...], "starttls": true}``; ``ti_notify_webhook``: host = URL,
or the URL in extra ``{"url": ...}``), or outside Airflow by the environment variables
``TI_NOTIFY_SMTP_URL`` (``smtp://user:pass@host:port?from=a@b&to=c@d,e@f``) and
``TI_NOTIFY_WEBHOOK_URL``. When nothing is configured, nothing is sent (and nothing fails).
Credentials are never logged; message bodies carry no secret.
"""

from __future__ import annotations

import json
import logging
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

from ..config import env as setting

log = logging.getLogger(__name__)


@dataclass
class SmtpTarget:
    host: str
    port: int = 25
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "ti-indicators@localhost"
    to: list[str] = field(default_factory=list)
    starttls: bool = False


@dataclass
class WebhookTarget:
    url: str = field(repr=False)  # may embed a token: never logged


def _airflow_connection(conn_id: str):
    try:  # pragma: no cover - exercised inside Airflow only
        from airflow.sdk import BaseHook  # type: ignore

        return BaseHook.get_connection(conn_id)
    except Exception:
        return None


def _smtp_from_env(env) -> SmtpTarget | None:
    url = setting("TI_NOTIFY_SMTP_URL", env)
    if not url:
        return None
    u = urlparse(url)
    q = parse_qs(u.query)
    return SmtpTarget(host=u.hostname or "localhost", port=u.port or 25, login=unquote(u.username) if u.username else None,
                      password=unquote(u.password) if u.password else None,
                      sender=q.get("from", ["ti-indicators@localhost"])[0],
                      to=[a for v in q.get("to", []) for a in v.split(",") if a],
                      starttls=q.get("starttls", ["false"])[0].lower() == "true")


def resolve_targets(env=None) -> tuple[SmtpTarget | None, WebhookTarget | None]:
    smtp = _smtp_from_env(env)
    hook = WebhookTarget(setting("TI_NOTIFY_WEBHOOK_URL", env)) if setting("TI_NOTIFY_WEBHOOK_URL", env) else None
    if smtp is None and (c := _airflow_connection("ti_notify_smtp")) is not None and c.host:
        extra = c.extra_dejson or {}
        to = extra.get("to", [])
        smtp = SmtpTarget(host=c.host, port=int(c.port or 25), login=c.login, password=c.password,
                          sender=extra.get("from", "ti-indicators@localhost"),
                          to=[to] if isinstance(to, str) else list(to), starttls=bool(extra.get("starttls", False)))
    if hook is None and (c := _airflow_connection("ti_notify_webhook")) is not None:
        url = (c.extra_dejson or {}).get("url") or c.host
        if url:
            hook = WebhookTarget(url if "://" in url else f"https://{url}")
    return smtp, hook


def notifiers_configured(env=None) -> bool:
    smtp, hook = resolve_targets(env)
    return bool(smtp and smtp.to) or bool(hook)


def format_message(kind: str, title: str, lines: list[str]) -> tuple[str, str]:
    icon = {"failure": "🔴", "warning": "🟠", "success": "🟢"}.get(kind, "•")
    subject = f"[Territoires d'industrie] {icon} {title}"
    body = "\n".join([title, "", *[f"- {ln}" for ln in lines]])
    return subject, body


def notify(kind: str, title: str, lines: list[str], env=None, timeout: float = 10.0) -> dict:
    """Send one summary to every configured channel. Returns what was sent (for tests/logs).

    A broken channel is logged (without credentials) and does not raise: a notification
    must never turn a warning into a failure or hide the original error.
    """
    smtp, hook = resolve_targets(env)
    subject, body = format_message(kind, title, lines)
    sent = {"smtp": False, "webhook": False}
    if smtp and smtp.to:
        try:
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(smtp.to)
            msg.set_content(body)
            with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as s:
                if smtp.starttls:
                    s.starttls()
                if smtp.login:
                    s.login(smtp.login, smtp.password or "")
                s.send_message(msg)
            sent["smtp"] = True
        except Exception as exc:  # noqa: BLE001
            log.error("notification by e-mail to %s:%s failed: %s", smtp.host, smtp.port, type(exc).__name__)
    if hook:
        try:
            import requests

            r = requests.post(hook.url, data=json.dumps({"text": f"{subject}\n{body}"}),
                              headers={"Content-Type": "application/json"}, timeout=timeout)
            r.raise_for_status()
            sent["webhook"] = True
        except Exception as exc:  # noqa: BLE001
            log.error("notification by webhook failed: %s", type(exc).__name__)
    if not any(sent.values()) and (smtp or hook):
        log.warning("no notification could be delivered")
    return sent
