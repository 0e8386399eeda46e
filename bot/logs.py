"""Logging set-up. Tokens and secrets are redacted from every record, whoever logs them."""

from __future__ import annotations

import logging
import re
import sys

_TOKEN_RE = re.compile(r"xox[abposer]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
# user:password@ (or token@) in any URL: http://user:pw@host, https://token@host, redis://:pw@host
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s`'\"<>|?#]*@")
REDACTED = "[redacted]"


def strip_credentials(text: str) -> str:
    """`text` with the user and password taken out of every URL in it (what the bot shows or logs of a
    URL such as MLFLOW_TRACKING_URI=http://user:password@host); the host stays, so it still says where."""
    return _URL_CREDENTIALS_RE.sub(r"\g<scheme>", text)


def url_secrets(url: str | None) -> list[str]:
    """The password (or token) in a URL's user part, for the log filter, even outside a URL."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s?#]*)@", url or "")
    if not match:
        return []
    user, _, password = match.group(1).partition(":")
    return [password or user]


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        text = strip_credentials(_TOKEN_RE.sub(REDACTED, text))
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed logging call must not raise into the code that logged (logging itself never
            # does): keep the format and its arguments, redacted like everything else.
            message = f"{record.msg!s} {record.args!r}"
        redacted = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so it is redacted too.
            redacted += "\n" + self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redacted, None
        return True


def configure_logging(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "mlflow", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
