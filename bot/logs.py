"""Logging set-up. Tokens and secrets are redacted from every record, whoever logs them."""

from __future__ import annotations

import logging
import re
import sys

_TOKEN_RE = re.compile(r"xox[abposer]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        text = _TOKEN_RE.sub(REDACTED, text)
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
