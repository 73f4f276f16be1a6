"""TEST STAND-IN for an SMTP relay such as smtp.gmail.com:587 (not a mail server): aiosmtpd on
127.0.0.1:587 that requires STARTTLS before AUTH, accepts exactly one login and password (read
from a root-only JSON file) and writes every accepted message, with how it arrived, to a spool
folder the verifier reads. Run by test-smtp.service, made by molecule/mastodon_stack/prepare.yml.
"""

import json
import os
import ssl
import sys
import threading
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

CONF = json.load(open(sys.argv[1], encoding="utf-8"))
SPOOL = CONF["spool"]


def authenticator(_server, session, _envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode("utf-8") == CONF["login"]
          and auth_data.password.decode("utf-8") == CONF["password"])
    with open(os.path.join(SPOOL, "auth.log"), "a", encoding="utf-8") as log:
        log.write(json.dumps({"mechanism": mechanism, "ok": ok, "tls": session.ssl is not None}) + "\n")
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    async def handle_DATA(self, _server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        name = "%d-%s" % (time.time(), uuid.uuid4().hex[:8])
        with open(os.path.join(SPOOL, name + ".eml"), "wb") as eml:
            eml.write(envelope.original_content or envelope.content)
        with open(os.path.join(SPOOL, name + ".json"), "w", encoding="utf-8") as meta:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "helo": session.host_name, "tls": session.ssl is not None,
                       "authenticated": bool(session.authenticated),
                       "login": session.auth_data.login.decode("utf-8") if session.auth_data else None}, meta)
        return "250 OK: queued as " + name


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(CONF["cert"], CONF["key"])
controller = Controller(Handler(), hostname="127.0.0.1", port=587, server_hostname="localhost",
                        tls_context=context, require_starttls=True, authenticator=authenticator,
                        auth_require_tls=True, auth_exclude_mechanism=["LOGIN"])
controller.start()
print("TEST SMTP stand-in listening on 127.0.0.1:587 (STARTTLS, AUTH PLAIN)", flush=True)
threading.Event().wait()
