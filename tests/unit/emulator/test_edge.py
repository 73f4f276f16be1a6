"""End-to-end tests of the emulated edge with the cloudflared stand-in (both test stand-ins).

Visitor -> emulator edge -> (stand-in connector, a subprocess dialing OUT) -> local origin.
"""

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, ZONE_ID, Emulator

STANDIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "cloudflare_emulator", "cloudflared_standin.py")
HOSTNAME = "social.example.test"
HEADERS = {"Authorization": f"Bearer {TOKEN_FULL}"}
TUNNELS = f"/accounts/{ACCOUNT_ID}/cfd_tunnel"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --------------------------------------------------------------------------- certificates
def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject, issuer, key, signing_key, sans=None, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _write(path, cert, key=None):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = path.with_suffix(".key")
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return str(path), str(key_path)
    return str(path)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a CA-signed origin cert (SAN mastodon.internal, CN elsewhere.internal), a
    CA-signed cert with only a CN, and a self-signed cert (like the story's snakeoil)."""
    folder = tmp_path_factory.mktemp("certs")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Emulator test CA", "Emulator test CA", ca_key, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("elsewhere.internal", "Emulator test CA", leaf_key, ca_key,
                 sans=[x509.DNSName("mastodon.internal")])
    cn_key = ec.generate_private_key(ec.SECP256R1())
    cn_only = _cert("mastodon.internal", "Emulator test CA", cn_key, ca_key)
    self_key = ec.generate_private_key(ec.SECP256R1())
    self_signed = _cert("localhost", "localhost", self_key, self_key,
                        sans=[x509.DNSName("localhost"),
                              x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    return {
        "ca": _write(folder / "ca.pem", ca),
        "leaf": _write(folder / "leaf.pem", leaf, leaf_key),
        "cn_only": _write(folder / "cn_only.pem", cn_only, cn_key),
        "self_signed": _write(folder / "self.pem", self_signed, self_key),
    }


# --------------------------------------------------------------------------- origin
class OriginHandler(http.server.BaseHTTPRequestHandler):
    """Echoes what it received as JSON; accepts websocket upgrades and echoes bytes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1(
                (self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.rfile.read1(65536)
                if not data:
                    break
                self.wfile.write(b"echo:" + data)
                self.wfile.flush()
            self.close_connection = True
            return
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_origin(certfile=None, keyfile=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    if certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def origins(certs):
    """HTTPS origins: CA-signed with SAN, CN-only and self-signed; plus a plain HTTP one."""
    servers = {
        "leaf": start_origin(*certs["leaf"]),
        "cn_only": start_origin(*certs["cn_only"]),
        "self_signed": start_origin(*certs["self_signed"]),
        "plain": start_origin(),
    }
    yield {name: server.server_address[1] for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()


# --------------------------------------------------------------------------- helpers
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(emu, method, path, **kwargs):
    answer = requests.request(method, emu.api_url + path, headers=HEADERS, timeout=10, **kwargs)
    assert answer.ok, answer.text
    return answer.json()["result"]


def publish(emu, name="social", hostname=HOSTNAME):
    tunnel = api(emu, "POST", TUNNELS, json={"name": name, "config_src": "cloudflare"})
    api(emu, "POST", f"/zones/{ZONE_ID}/dns_records",
        json={"type": "CNAME", "name": hostname, "content": f"{tunnel['id']}.cfargotunnel.com",
              "proxied": True})
    return tunnel


def set_ingress(emu, tunnel, service, origin_request=None, rules=()):
    rule = {"hostname": HOSTNAME, "service": service}
    if origin_request is not None:
        rule["originRequest"] = origin_request
    ingress = [*rules, rule, {"service": "http_status:404"}]
    return api(emu, "PUT", f"{TUNNELS}/{tunnel['id']}/configurations",
               json={"config": {"ingress": ingress}})["version"]


class Standin:
    """The cloudflared stand-in as a subprocess, started like the role will start it."""

    def __init__(self, emu, token, tmp_path, extra=()):
        self.metrics_port = free_port()
        token_file = tmp_path / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        self.stderr_path = tmp_path / "standin.log"
        self.stderr = open(self.stderr_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, STANDIN, "--no-autoupdate", "tunnel", "--metrics",
             f"127.0.0.1:{self.metrics_port}", "--ha-connections", "2", "run", "--token-file",
             str(token_file), *extra],
            env=dict(os.environ, TUNNEL_EDGE=emu.connector_address),
            stdout=subprocess.PIPE, stderr=self.stderr)

    def ready(self):
        try:
            answer = requests.get(f"http://127.0.0.1:{self.metrics_port}/ready", timeout=2)
        except requests.ConnectionError:
            return None
        return answer

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.ready()
            if answer is not None and answer.status_code == 200:
                return answer.json()
            time.sleep(0.1)
        raise AssertionError(f"stand-in not ready; log:\n{self.log()}")

    def wait_config(self, version, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"version={version} " in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"stand-in never got config version {version}:\n{self.log()}")

    def log(self):
        return self.stderr_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
        return self.process.returncode


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def running(emu, tmp_path):
    """A published tunnel with a connected stand-in: (emu, tunnel, standin)."""
    tunnel = publish(emu)
    standin = Standin(emu, tunnel["token"], tmp_path)
    try:
        standin.wait_ready()
        yield emu, tunnel, standin
    finally:
        standin.stop()


def visit(emu, path="/", **kwargs):
    return requests.get(emu.edge_url + path, headers={"Host": HOSTNAME}, timeout=15, **kwargs)


def route(emu, standin, tunnel, service, origin_request=None):
    version = set_ingress(emu, tunnel, service, origin_request)
    standin.wait_config(version)


# --------------------------------------------------------------------------- tests
def test_no_tls_verify_reaches_self_signed_origin(running, origins):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"https://localhost:{origins['self_signed']}",
          {"noTLSVerify": True})
    answer = visit(emu, "/about?x=1")
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["path"] == "/about?x=1"
    assert seen["headers"]["Host"] == HOSTNAME
    assert seen["headers"]["CF-Connecting-IP"] == "127.0.0.1"
    assert seen["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert json.loads(seen["headers"]["CF-Visitor"]) == {"scheme": "https"}
    assert seen["headers"]["CF-RAY"] == answer.headers["CF-RAY"]
    assert answer.headers["Server"] == "cloudflare"


def test_verification_without_ca_pool_is_502(running, origins):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"https://localhost:{origins['self_signed']}")
    answer = visit(emu)
    assert answer.status_code == 502
    assert "Unable to reach the origin service" in standin.log()


def test_ca_pool_and_origin_server_name_matching_san(running, origins, certs):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"https://127.0.0.1:{origins['leaf']}",
          {"caPool": certs["ca"], "originServerName": "mastodon.internal"})
    assert visit(emu).status_code == 200
    # the same CA but the name does not match the SAN (the CN does not count)
    route(emu, standin, tunnel, f"https://127.0.0.1:{origins['leaf']}",
          {"caPool": certs["ca"], "originServerName": "elsewhere.internal"})
    assert visit(emu).status_code == 502
    # a certificate that names the host only in its CN fails, as with Go's verifier
    route(emu, standin, tunnel, f"https://127.0.0.1:{origins['cn_only']}",
          {"caPool": certs["ca"], "originServerName": "mastodon.internal"})
    assert visit(emu).status_code == 502


def test_http_host_header_post_body_and_http_status_service(running, origins):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"http://127.0.0.1:{origins['plain']}",
          {"httpHostHeader": "internal.host"})
    assert visit(emu).json()["headers"]["Host"] == "internal.host"
    posted = requests.post(emu.edge_url + "/inbox", data=b"x" * 100000, timeout=15,
                           headers={"Host": HOSTNAME})
    assert posted.status_code == 200 and posted.content == b"x" * 100000
    route(emu, standin, tunnel, "http_status:418")
    assert visit(emu).status_code == 418
    # a hostname that matches no rule falls through to the catch-all 404
    other = publish(emu, name="other", hostname="other.example.test")
    api(emu, "DELETE", f"/zones/{ZONE_ID}/dns_records/" + api(
        emu, "GET", f"/zones/{ZONE_ID}/dns_records",
        params={"name": "other.example.test"})[0]["id"])
    api(emu, "POST", f"/zones/{ZONE_ID}/dns_records",
        json={"type": "CNAME", "name": "other.example.test", "proxied": True,
              "content": f"{tunnel['id']}.cfargotunnel.com"})
    answer = requests.get(emu.edge_url, headers={"Host": "other.example.test"}, timeout=10)
    assert answer.status_code == 404 and other["id"]


def test_refused_origin_is_502(running):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"http://127.0.0.1:{free_port()}")
    assert visit(emu).status_code == 502


def test_websocket_through_the_tunnel(running, origins):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"https://localhost:{origins['self_signed']}",
          {"noTLSVerify": True})
    host, port = emu.edge_address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /api/v1/streaming HTTP/1.1\r\nHost: {HOSTNAME}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 101")
        head = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _sep, value = line.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert head["sec-websocket-accept"] == expected
        for message in (b"first", b"second"):
            sock.sendall(message)
            assert reader.read1(100) == b"echo:" + message


def test_connections_and_status_follow_the_connector(emu, tmp_path):
    tunnel = publish(emu)
    standin = Standin(emu, tunnel["token"], tmp_path)
    try:
        ready = standin.wait_ready()
        assert ready["status"] == 200 and ready["readyConnections"] >= 1
        got = api(emu, "GET", f"{TUNNELS}/{tunnel['id']}")
        assert got["status"] == "healthy" and got["conns_active_at"]
        clients = api(emu, "GET", f"{TUNNELS}/{tunnel['id']}/connections")
        assert [c["id"] for c in clients] == [ready["connectorId"]]
        conn = clients[0]["conns"][0]
        assert conn["colo_name"] == "EMU" and conn["origin_ip"] == "127.0.0.1"
        assert conn["opened_at"] and conn["client_id"] == ready["connectorId"]
        answer = requests.delete(emu.api_url + f"{TUNNELS}/{tunnel['id']}", json={},
                                 headers=HEADERS, timeout=10)
        assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == 1022
        metrics = requests.get(f"http://127.0.0.1:{standin.metrics_port}/metrics", timeout=5)
        assert "cloudflared_tunnel_ha_connections" in metrics.text
    finally:
        assert standin.stop() == 0
    deadline = time.monotonic() + 5
    while api(emu, "GET", f"{TUNNELS}/{tunnel['id']}")["status"] != "down":
        assert time.monotonic() < deadline, "tunnel never went down"
        time.sleep(0.05)
    assert tunnel["token"] not in standin.log()
    assert visit(emu).status_code == 530 and "Error 1033" in visit(emu).text


def test_no_connector_is_530_1033_and_no_record_is_530_1001(emu):
    publish(emu)
    answer = visit(emu)
    assert answer.status_code == 530 and "Error 1033" in answer.text
    unknown = requests.get(emu.edge_url, headers={"Host": "nothing.example.test"}, timeout=10)
    assert unknown.status_code == 530 and "Error 1001" in unknown.text
    api(emu, "POST", f"/zones/{ZONE_ID}/dns_records",
        json={"type": "CNAME", "name": "dnsonly.example.test", "proxied": False,
              "content": "00000000-0000-0000-0000-000000000000.cfargotunnel.com"})
    dns_only = requests.get(emu.edge_url, headers={"Host": "dnsonly.example.test"}, timeout=10)
    assert dns_only.status_code == 530


def test_wrong_secret_is_refused_and_token_never_logged(emu, tmp_path):
    tunnel = publish(emu)
    claims = json.loads(base64.b64decode(tunnel["token"]))
    claims["s"] = base64.b64encode(b"w" * 32).decode()
    forged = base64.b64encode(json.dumps(claims).encode()).decode()
    standin = Standin(emu, forged, tmp_path)
    try:
        deadline = time.monotonic() + 5
        while "Invalid tunnel secret" not in standin.log():
            assert time.monotonic() < deadline, standin.log()
            time.sleep(0.1)
        answer = standin.ready()
        assert answer.status_code == 503 and answer.json()["readyConnections"] == 0
        assert api(emu, "GET", f"{TUNNELS}/{tunnel['id']}")["status"] == "inactive"
    finally:
        standin.stop()
    log = standin.log()
    assert forged not in log and claims["s"] not in log


def _listening_ports(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports, len(inodes)


def test_connector_listens_only_on_its_metrics_address(running, origins):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"http://127.0.0.1:{origins['plain']}")
    assert visit(emu).status_code == 200
    ports, sockets = _listening_ports(standin.process.pid)
    assert ports == {standin.metrics_port}
    assert sockets >= 3  # metrics listener + two outbound control connections


def test_connector_reconnects_after_emulator_restart(tmp_path):
    state = tmp_path / "state.json"
    connector_port = free_port()
    first = Emulator(state_file=str(state), connector_port=connector_port).start()
    tunnel = publish(first)
    standin = Standin(first, tunnel["token"], tmp_path)
    try:
        standin.wait_ready()
        first.stop()
        deadline = time.monotonic() + 25
        while standin.ready().status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with Emulator(state_file=str(state), connector_port=connector_port) as second:
            standin.wait_ready(timeout=25)
            got = api(second, "GET", f"{TUNNELS}/{tunnel['id']}")
            assert got["status"] == "healthy" and got["name"] == "social"
    finally:
        standin.stop()


def test_https_edge_with_certificate(certs, origins, tmp_path):
    cert, key = certs["self_signed"]
    with Emulator(edge_cert=cert, edge_key=key) as emu:
        assert emu.edge_url.startswith("https://")
        tunnel = publish(emu)
        standin = Standin(emu, tunnel["token"], tmp_path)
        try:
            standin.wait_ready()
            route(emu, standin, tunnel, f"http://127.0.0.1:{origins['plain']}")
            answer = requests.get(emu.edge_url + "/", headers={"Host": HOSTNAME}, timeout=10,
                                  verify=certs["self_signed"][0])
            assert answer.status_code == 200
            assert answer.json()["headers"]["X-Forwarded-Proto"] == "https"
        finally:
            standin.stop()


# ------------------------------------------------------- a configuration refused whole
OTHER = "blog.example.test"


def wait_log(standin, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in standin.log():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{standin.log()}"
        time.sleep(0.05)


@pytest.mark.parametrize("bad_rule, logged", [
    ({"hostname": OTHER, "service": "https://localhost:443/"}, "Failed to deserialize new configuration"),
    ({"hostname": OTHER, "service": "socks5"}, "Failed to deserialize new configuration"),
    ({"hostname": OTHER, "service": "https://localhost:443",
      "originRequest": {"caPool": "/nonexistent/ca.pem"}}, "Failed to update ingress"),
])
def test_one_bad_rule_refuses_the_whole_configuration_and_the_previous_stays(
        running, origins, bad_rule, logged):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, f"http://127.0.0.1:{origins['plain']}")
    assert visit(emu).status_code == 200
    version = set_ingress(emu, tunnel, "http_status:418", rules=[bad_rule])  # accepted by the API
    wait_log(standin, f"version={version} ")
    log = standin.log()
    assert logged in log and "ERR" in log
    # the good rule of the refused configuration is not applied: the previous one still serves
    assert visit(emu).status_code == 200
    good = set_ingress(emu, tunnel, "http_status:418")
    standin.wait_config(good)
    assert visit(emu).status_code == 418


def test_a_refused_configuration_on_a_fresh_start_is_503_everywhere(emu, tmp_path):
    tunnel = publish(emu)
    # caPool is read when an http(s) (or unix) origin starts, as in cloudflared
    version = set_ingress(emu, tunnel, "https://localhost:8443",
                          origin_request={"caPool": str(tmp_path / "missing-ca.pem")})
    standin = Standin(emu, tunnel["token"], tmp_path)
    try:
        standin.wait_ready()
        wait_log(standin, f"version={version} ")
        assert "Failed to update ingress" in standin.log()
        assert "unable to read the file" in standin.log()
        assert visit(emu).status_code == 503
        # the CA file appears, the next push is applied
        (tmp_path / "missing-ca.pem").write_text("")
        version = set_ingress(emu, tunnel, "http_status:418",
                              origin_request={"caPool": str(tmp_path / "missing-ca.pem")},
                              rules=[{"hostname": OTHER, "service": "https://localhost:8443",
                                      "originRequest": {"caPool": str(tmp_path / "missing-ca.pem")}}])
        standin.wait_config(version)
        assert "Updated to new configuration version=%d " % version in standin.log()
        assert visit(emu).status_code == 418
    finally:
        standin.stop()


def test_hello_world_is_served(running):
    emu, tunnel, standin = running
    route(emu, standin, tunnel, "hello_world")
    answer = visit(emu)
    assert answer.status_code == 200 and "Congrats" in answer.text
