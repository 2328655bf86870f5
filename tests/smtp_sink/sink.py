"""A real SMTP server for tests/notify_mail.rs, on Debian's python3-aiosmtpd.

    /usr/bin/python3 sink.py PORT OUT_DIR [USER PASSWORD]

Listens on 127.0.0.1:PORT (AUTH LOGIN/PLAIN required when USER and PASSWORD are given,
without TLS) and saves each accepted message to OUT_DIR as one JSON file (written to a
temporary name, then renamed): envelope, To, Subject, Message-ID, the MIME types of all
parts, and the text and HTML bodies. Prints "ready" once it accepts connections.
"""

import email
import email.policy
import json
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT = int(sys.argv[1])
OUT = sys.argv[2]
USER = sys.argv[3].encode() if len(sys.argv) > 4 else None
PASSWORD = sys.argv[4].encode() if len(sys.argv) > 4 else None


class Handler:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "to": str(msg["To"]),
            "from": str(msg["From"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "content_type": msg.get_content_type(),
            "parts": [p.get_content_type() for p in msg.walk()],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "authenticated": bool(session.authenticated),
        }
        with self.lock:
            self.n += 1
            name = f"{time.time_ns()}-{self.n:04d}"
        tmp = os.path.join(OUT, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(OUT, f"{name}.json"))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER
        and auth_data.password == PASSWORD
    )
    return AuthResult(success=ok)


kwargs = {}
if USER is not None:
    kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
controller = Controller(Handler(), hostname="127.0.0.1", port=PORT, **kwargs)
controller.start()
print("ready", flush=True)
# Until the test closes our stdin (or kills us).
sys.stdin.read()
controller.stop()
