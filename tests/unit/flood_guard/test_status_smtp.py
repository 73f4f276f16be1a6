"""mastodon-status's SMTP check: log in to the mail server Mastodon is configured with, send no
mail.

The mail server is a TEST STAND-IN: a small SMTP server on 127.0.0.1 written here with
sockets (Python's standard library has no SMTP server since 3.12). It speaks EHLO, STARTTLS
(with a self-signed certificate made for the test), AUTH PLAIN and AUTH LOGIN, answers 535 to
a wrong password, and records every command; a second mode accepts connections and never
answers (the timeout case). The settings are written to a .env.production with the quoting
the mastodon_stack role uses (the collection's dotenv_quote filter), so the password read back
is the one the role wrote.
"""

import base64
import datetime
import json
import socket
import ssl
import threading
import time

import pytest

from support.ops_scripts import GUARD, STATUS, load_script

from ansible_collections.selfhost.mastodon.plugins.filter.mastodon_release import dotenv_quote

LOGIN = "notifications@social.example.test"
# A password with every character the .env.production quoting must carry through.
PASSWORD = "s3cr3t p@ss 'quoted' \"double\" $HOME \\back"


st = load_script("mastodon_status_smtp", STATUS)


# --- a self-signed certificate for 127.0.0.1 ----------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("smtp-tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


# --- the SMTP stand-in ---------------------------------------------------------------------------


class FakeSMTP:
    """One thread per connection. starttls: offer STARTTLS and AUTH only after it (as Gmail
    does). implicit_tls: TLS from the first byte (port 465 style). hang: accept and say
    nothing. mechanisms: the AUTH mechanisms offered."""

    def __init__(self, certificate=None, starttls=False, implicit_tls=False, hang=False,
                 mechanisms=("PLAIN", "LOGIN")):
        self.certificate, self.starttls, self.implicit_tls, self.hang = certificate, starttls, implicit_tls, hang
        self.mechanisms = mechanisms
        self.commands, self.logins, self.connections = [], [], []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _tls(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self.certificate)
        return context

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.sock.close()
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass

    def _serve(self, conn):
        try:
            if self.hang:
                while conn.recv(1024):
                    pass
                return
            tls = False
            if self.implicit_tls:
                conn = self._tls().wrap_socket(conn, server_side=True)
                tls = True
            stream = conn.makefile("rwb")

            def say(line):
                stream.write(line.encode() + b"\r\n")
                stream.flush()

            def read():
                line = stream.readline(4096)
                if not line:
                    raise EOFError
                return line.decode().rstrip("\r\n")

            say("220 fake.example.test ESMTP test stand-in")
            while True:
                line = read()
                verb = line.split(" ", 1)[0].upper()
                self.commands.append(line)
                if verb in ("EHLO", "HELO"):
                    features = []
                    if self.starttls and not tls:
                        features.append("STARTTLS")
                    if tls or not self.starttls:
                        features.append("AUTH " + " ".join(self.mechanisms))
                    lines = ["fake.example.test"] + features + ["8BITMIME"]
                    for i, text in enumerate(lines):
                        say(("250 " if i == len(lines) - 1 else "250-") + text)
                elif verb == "STARTTLS" and self.starttls and not tls:
                    say("220 2.0.0 Ready to start TLS")
                    stream.close()
                    conn = self._tls().wrap_socket(conn, server_side=True)
                    stream = conn.makefile("rwb")
                    tls = True
                elif verb == "AUTH":
                    parts = line.split()
                    mechanism = parts[1].upper() if len(parts) > 1 else ""
                    if mechanism == "PLAIN":
                        token = parts[2] if len(parts) > 2 else None
                        if token is None:
                            say("334 ")
                            token = read()
                        _zid, user, password = base64.b64decode(token).decode().split("\0")
                    elif mechanism == "LOGIN":
                        if len(parts) > 2:  # the user name as an initial response (RFC 4954)
                            user = base64.b64decode(parts[2]).decode()
                        else:
                            say("334 " + base64.b64encode(b"Username:").decode())
                            user = base64.b64decode(read()).decode()
                        say("334 " + base64.b64encode(b"Password:").decode())
                        password = base64.b64decode(read()).decode()
                    else:
                        say("504 5.5.4 Unrecognized authentication type")
                        continue
                    self.logins.append((mechanism, user, password, tls))
                    if (user, password) == (LOGIN, PASSWORD):
                        say("235 2.7.0 Authentication successful")
                    else:
                        say("535 5.7.8 Username and Password not accepted")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:
                    say("502 5.5.2 Command not implemented")
        except (EOFError, OSError, ValueError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def smtp_server(request):
    servers = []

    def start(**kwargs):
        server = FakeSMTP(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def env_file(tmp_path, **values):
    """A .env.production written like mastodon_stack's template (dotenv_quote), mode 0600."""
    settings = {"LOCAL_DOMAIN": "social.example.test", "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": 587,
                "SMTP_LOGIN": LOGIN, "SMTP_PASSWORD": PASSWORD, "SMTP_AUTH_METHOD": "plain",
                "SMTP_OPENSSL_VERIFY_MODE": "none", "SMTP_ENABLE_STARTTLS": "auto"}
    settings.update(values)
    path = tmp_path / ".env.production"
    path.write_text("# Mail\n" + "".join(f"{k}={dotenv_quote(v)}\n" for k, v in settings.items() if v is not None))
    path.chmod(0o600)
    return str(path)


def smtp(path, timeout=3):
    values, result = st.smtp_check(path, timeout)
    text = json.dumps([values, result])
    assert PASSWORD not in text
    assert base64.b64encode(PASSWORD.encode()).decode() not in text
    return result


# --- The cases -------------------------------------------------------------------------------


def test_good_login_plain_without_tls(tmp_path, smtp_server):
    server = smtp_server()
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port))
    assert result == {"name": "smtp", "ok": True,
                      "line": f"ok   smtp: login ok (127.0.0.1:{server.port}, AUTH PLAIN; no mail sent)"}
    assert server.logins == [("PLAIN", LOGIN, PASSWORD, False)]
    # EHLO with the instance's domain, AUTH, QUIT: no MAIL, RCPT or DATA.
    verbs = [c.split()[0].upper() for c in server.commands]
    assert verbs == ["EHLO", "AUTH", "QUIT"], server.commands
    assert server.commands[0].lower() == "ehlo social.example.test"


def test_good_login_after_starttls_with_auth_login(tmp_path, smtp_server, certificate):
    server = smtp_server(certificate=certificate, starttls=True)
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_AUTH_METHOD="login"))
    assert result["ok"], result
    assert result["line"] == f"ok   smtp: login ok (127.0.0.1:{server.port}, STARTTLS, AUTH LOGIN; no mail sent)"
    assert server.logins == [("LOGIN", LOGIN, PASSWORD, True)]  # the password went over TLS


def test_certificate_is_verified_unless_verify_mode_is_none(tmp_path, smtp_server, certificate):
    server = smtp_server(certificate=certificate, starttls=True)
    refused = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_OPENSSL_VERIFY_MODE="peer"))
    assert not refused["ok"]
    assert refused["line"].startswith("FAIL smtp: FAILED: TLS: CERTIFICATE_VERIFY_FAILED"), refused
    assert server.logins == []  # no password sent to a server whose certificate failed
    trusted = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_OPENSSL_VERIFY_MODE="peer",
                            SMTP_CA_FILE=str(certificate[0])))
    assert trusted["ok"], trusted


def test_implicit_tls_with_smtp_tls(tmp_path, smtp_server, certificate):
    server = smtp_server(certificate=certificate, implicit_tls=True)
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_TLS="true"))
    assert result["line"] == f"ok   smtp: login ok (127.0.0.1:{server.port}, TLS, AUTH PLAIN; no mail sent)"


def test_starttls_always_refuses_a_server_without_it(tmp_path, smtp_server):
    server = smtp_server()
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_ENABLE_STARTTLS="always"))
    assert not result["ok"]
    assert "the server offers no STARTTLS (SMTP_ENABLE_STARTTLS=always)" in result["line"]
    assert server.logins == []


def test_wrong_password_is_unhealthy_and_not_shown(tmp_path, smtp_server):
    server = smtp_server()
    wrong = "wrong-" + PASSWORD
    values, result = st.smtp_check(env_file(tmp_path, SMTP_PORT=server.port, SMTP_PASSWORD=wrong), 3)
    assert result["ok"] is False
    assert result["line"] == (f"FAIL smtp: FAILED: login refused: 535 5.7.8 Username and Password not accepted "
                              f"(127.0.0.1:{server.port})")
    text = json.dumps([values, result])
    assert wrong not in text and PASSWORD not in text


def test_auth_mechanism_not_offered(tmp_path, smtp_server):
    server = smtp_server(mechanisms=("LOGIN",))
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port))
    assert not result["ok"]
    assert "the server does not offer AUTH PLAIN (it offers: LOGIN" in result["line"]


def test_server_down(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = smtp(env_file(tmp_path, SMTP_PORT=port))
    assert result == {"name": "smtp", "ok": False,
                      "line": f"FAIL smtp: FAILED: connection refused (127.0.0.1:{port})"}


def test_a_server_that_never_answers_times_out(tmp_path, smtp_server):
    server = smtp_server(hang=True)
    started = time.monotonic()
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port), timeout=1)
    took = time.monotonic() - started
    assert result["line"] == f"FAIL smtp: FAILED: no answer within 1 s (127.0.0.1:{server.port})"
    assert took < 3, took


def test_not_configured_is_fine(tmp_path):
    path = tmp_path / ".env.production"
    path.write_text("LOCAL_DOMAIN='social.example.test'\nSMTP_FROM_ADDRESS='notifications@social.example.test'\n")
    result = smtp(str(path))
    assert result == {"name": "smtp", "ok": True,
                      "line": f"ok   smtp: not configured (no SMTP_SERVER in {path}: Mastodon sends no mail)"}


def test_a_missing_env_file_is_a_warning(tmp_path):
    result = smtp(str(tmp_path / "nope" / ".env.production"))
    assert result["ok"] and result["warn"]
    assert result["line"].startswith("WARN smtp: unknown: cannot read ")


def test_a_bad_port_is_unhealthy(tmp_path):
    result = smtp(env_file(tmp_path, SMTP_PORT="smtp"))
    assert result == {"name": "smtp", "ok": False, "line": "FAIL smtp: FAILED: SMTP_PORT 'smtp' is not a port (127.0.0.1:smtp)"}


def test_no_login_means_no_auth(tmp_path, smtp_server):
    server = smtp_server()
    result = smtp(env_file(tmp_path, SMTP_PORT=server.port, SMTP_LOGIN=None, SMTP_PASSWORD=None))
    assert result["line"] == f"ok   smtp: connected (127.0.0.1:{server.port}, no login configured; no mail sent)"
    assert server.logins == []


@pytest.mark.parametrize("raw, value", [
    ("'plain'", "plain"),
    ("\"a \\\"b\\\" \\$c \\\\d\"", "a \"b\" $c \\d"),
    ("bare # a comment", "bare"),
    ("''", ""),
])
def test_dotenv_values_as_the_dotenv_gem_reads_them(raw, value):
    assert st.dotenv_unquote(raw) == value


def test_status_report_through_main_reads_the_live_dir_env_file(tmp_path, smtp_server, capsys):
    """As status.yml runs it: the guard's live_dir names the .env.production; the password is
    nowhere in what is printed."""
    server = smtp_server()
    live = tmp_path / "live"
    live.mkdir()
    env_file(live, SMTP_PORT=server.port, SMTP_PASSWORD="not-" + PASSWORD)
    conf = tmp_path / "flood-guard.conf"
    conf.write_text(json.dumps({"live_dir": str(live), "media_dir": str(tmp_path / "media")}))
    assert st.main(["--config", str(conf), "--guard", GUARD, "--checks", "smtp", "--smtp-timeout", "3"]) == 0
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    report = json.loads(out.out)
    assert report["ok"] is False
    assert report["checks"][0]["line"].startswith("FAIL smtp: FAILED: login refused: 535 ")
