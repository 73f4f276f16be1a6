#!/usr/bin/env python3
"""cloudflared STAND-IN: a test double for Cloudflare's connector, not cloudflared.

The selfhost.mastodon project cannot download cloudflared or reach Cloudflare in its test
machines, so its Molecule scenarios install this single file as /usr/local/bin/cloudflared.
It accepts the real command-line shape::

    cloudflared --no-autoupdate tunnel --metrics 127.0.0.1:PORT run --token-file /path
    cloudflared tunnel run --token TOKEN        (or env TUNNEL_TOKEN / TUNNEL_TOKEN_FILE)
    cloudflared --version

and behaves like cloudflared where the project's tests can observe it:

* decodes the tunnel token (base64 JSON with ``a`` account, ``t`` tunnel, ``s`` secret);
* makes ONLY OUTBOUND connections: it dials the edge named by ``--edge host:port`` or env
  ``TUNNEL_EDGE`` (cloudflared's hidden flag; default ``region1.v2.argotunnel.com:7844``
  like the real one), registers ``--ha-connections`` connections (default 4) with the
  account/tunnel/secret, receives the tunnel's remote configuration (ingress rules) and
  its updates over those connections, and for every visitor request the edge announces it
  dials OUT again and proxies the request to the origin of the matching ingress rule;
* applies cloudflared's origin TLS rules: ``noTLSVerify`` skips verification; otherwise the
  origin certificate is verified against the system store plus ``caPool`` (a PEM file),
  with ``originServerName`` (or the service host) as the name to match (SAN); a failure is
  answered with 502 Bad Gateway; ``http_status:NNN`` services answer NNN;
* serves ``/ready`` (200 with ``{"status":200,"readyConnections":N,"connectorId":...}`` when
  registered, 503 otherwise), ``/metrics`` and ``/healthcheck`` on ``--metrics``;
* reconnects with capped exponential backoff when the edge goes away;
* logs to stderr (or ``--logfile``) and never prints the token or the secret.

The wire protocol is the emulator's stand-in protocol (plain TCP, JSON lines; see
``protocol.py`` next to this file), not cloudflared's QUIC/HTTP2 + capnp.  Standard
library only, so it runs with Debian's /usr/bin/python3.
"""

import base64
import binascii
import http.client
import http.server
import json
import os
import platform
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid

VERSION = "2025.1.0-standin"
DEFAULT_EDGE = "region1.v2.argotunnel.com:7844"
MAX_BACKOFF = 8.0
READ_TIMEOUT = 20.0  # the edge pings every 5 s; silence this long means the edge is gone
DEFAULT_CONNECT_TIMEOUT = 30.0

VALUE_FLAGS = {
    "metrics", "token", "token-file", "edge", "loglevel", "transport-loglevel", "protocol",
    "ha-connections", "edge-ip-version", "logfile", "log-directory", "retries",
    "grace-period", "config", "origincert", "credentials-file", "cred-file", "pidfile",
    "region", "label", "tag", "autoupdate-freq", "output", "metrics-update-freq",
    "edge-bind-address", "url", "hostname",
}
BOOL_FLAGS = {"no-autoupdate", "post-quantum", "no-tls-verify", "version", "v", "help", "h",
              "quick-service", "management-diagnostics"}


# --------------------------------------------------------------------------- logging
class Logger:
    """cloudflared-like log lines: ``2024-01-01T00:00:00Z INF message key=value``."""

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, level, message, **fields):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{stamp} {level} {message}{' ' + extra if extra else ''}\n"
        with self.lock:
            sys.stderr.write(line)
            sys.stderr.flush()
            if self.path:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line)


# --------------------------------------------------------------------------- command line
def parse_command_line(argv):
    """Split cloudflared-style arguments into (flags dict, positional words).

    Flags may appear before or after the ``tunnel`` and ``run`` words, with one or two
    dashes, as ``--flag value`` or ``--flag=value``.  Unknown flags are an error, as with
    the real binary.
    """
    flags, words = {}, []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            words.extend(argv[index:])
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            flags[name] = value.lower() not in ("false", "0") if eq else True
        elif name in VALUE_FLAGS:
            if not eq:
                if index >= len(argv):
                    raise SystemExit(f"flag needs an argument: -{name}")
                value = argv[index]
                index += 1
            flags[name] = value
        else:
            raise SystemExit(f"Incorrect Usage: flag provided but not defined: -{name}")
    return flags, words


def decode_token(text):
    """Decode a tunnel token into (account, tunnel id, secret); ValueError if invalid."""
    try:
        data = json.loads(base64.b64decode(text.strip(), validate=True))
        account, tunnel, secret = data["a"], data["t"], data["s"]
        uuid.UUID(tunnel)
        base64.b64decode(secret, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValueError("Provided Tunnel token is not valid.") from exc
    return account, tunnel, secret


def host_port(text, default_port):
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host.strip("[]"), int(port)


# --------------------------------------------------------------------------- protocol
# The wire helpers live here because this file must stay self-contained (a role installs it
# as /usr/local/bin/cloudflared); the emulator's side imports them (see protocol.py).
MAX_LINE = 1024 * 1024


def send_message(sock, message):
    """Write one JSON message line to *sock*."""
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def read_message(rfile):
    """Read one JSON message line from a buffered reader; None at EOF."""
    line = rfile.readline(MAX_LINE)
    if not line:
        return None
    return json.loads(line)


# --------------------------------------------------------------------------- ingress
def match_rule(config, hostname, path):
    """The first ingress rule matching hostname (exact or ``*.`` wildcard) and path regex."""
    for rule in (config or {}).get("ingress") or []:
        pattern = (rule.get("hostname") or "").lower()
        if pattern:
            if pattern.startswith("*."):
                if not hostname.endswith(pattern[1:]):
                    continue
            elif pattern != hostname:
                continue
        if rule.get("path") and not re.search(rule["path"], path):
            continue
        return rule
    return None


def seconds(value, default):
    """cloudflared durations: an int (seconds) or a Go duration such as "30s" or "1m"."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(value))
    if not match:
        return default
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def http_response(status, reason, body=b"", content_type="text/plain; charset=utf-8"):
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def pipe(read, sock, shutdown_how):
    """Copy bytes from *read* (a callable returning bytes) to *sock* until EOF, then shut
    *sock* down (``socket.SHUT_WR`` or ``SHUT_RDWR``). The edge uses it too."""
    try:
        while True:
            data = read(65536)
            if not data:
                break
            sock.sendall(data)
    except (OSError, ValueError):
        pass
    finally:
        try:
            sock.shutdown(shutdown_how)
        except OSError:
            pass


# --------------------------------------------------------------------------- connector
class Connector:
    """The running tunnel: HA control connections, configuration, visitor streams."""

    def __init__(self, account, tunnel, secret, edge, ha_connections, log):
        self.account, self.tunnel, self.secret = account, tunnel, secret
        self.edge = edge
        self.ha_connections = ha_connections
        self.log = log
        self.client_id = str(uuid.uuid4())
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ready = set()
        self.sockets = {}
        self.config = None
        self.config_version = -1
        self.requests_total = 0
        self.errors_total = 0

    # control connections
    def start(self):
        for index in range(self.ha_connections):
            threading.Thread(target=self._connection_loop, args=(index,), daemon=True).start()

    def shutdown(self):
        self.stop.set()
        with self.lock:
            socks = list(self.sockets.values())
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def ready_connections(self):
        with self.lock:
            return len(self.ready)

    def _connection_loop(self, index):
        backoff = 1.0
        while not self.stop.is_set():
            sock = None
            try:
                sock = socket.create_connection(self.edge, timeout=10)
                with self.lock:
                    self.sockets[index] = sock
                send_message(sock, {
                    "type": "register", "account": self.account, "tunnel": self.tunnel,
                    "secret": self.secret, "client_id": self.client_id, "conn_index": index,
                    "version": VERSION, "arch": f"{platform.system().lower()}_"
                                                f"{platform.machine().lower()}"})
                sock.settimeout(READ_TIMEOUT)
                rfile = sock.makefile("rb")
                reply = read_message(rfile)
                if reply is None:
                    raise ConnectionError("edge closed the connection during registration")
                if reply.get("type") != "registered":
                    self.log("ERR", "Register tunnel error from server side",
                             connIndex=index, error=json.dumps(reply.get("message")))
                    raise ConnectionRefusedError(reply.get("message"))
                with self.lock:
                    self.ready.add(index)
                backoff = 1.0
                self.log("INF", "Registered tunnel connection", connIndex=index,
                         connection=reply.get("connection_id"),
                         location=reply.get("colo_name"), protocol="standin-tcp")
                self._serve_control(rfile, index)
            except (OSError, ValueError) as exc:
                if not self.stop.is_set():
                    self.log("ERR", "Connection terminated", connIndex=index,
                             error=json.dumps(str(exc) or type(exc).__name__))
            finally:
                with self.lock:
                    self.ready.discard(index)
                    self.sockets.pop(index, None)
                if sock is not None:
                    sock.close()
            if self.stop.is_set():
                break
            self.log("INF", "Retrying connection", connIndex=index, delay=f"{backoff:g}s")
            self.stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _serve_control(self, rfile, index):
        while not self.stop.is_set():
            message = read_message(rfile)
            if message is None:
                raise ConnectionError("edge closed the control connection")
            kind = message.get("type")
            if kind == "config":
                with self.lock:
                    changed = message.get("version", 0) > self.config_version
                    if changed:
                        self.config_version = message.get("version", 0)
                        self.config = message.get("config")
                if changed:
                    self.log("INF", "Updated to new configuration", version=self.config_version,
                             config=json.dumps(json.dumps(self.config, sort_keys=True)))
            elif kind == "stream":
                threading.Thread(target=self._stream, args=(message.get("stream_id"),),
                                 daemon=True).start()

    # visitor streams
    def _stream(self, stream_id):
        try:
            edge = socket.create_connection(self.edge, timeout=10)
        except OSError as exc:
            self.log("ERR", "Cannot open stream to the edge", error=json.dumps(str(exc)))
            return
        with edge:
            send_message(edge, {"type": "stream", "stream_id": stream_id,
                                "account": self.account, "tunnel": self.tunnel,
                                "secret": self.secret})
            edge.settimeout(60)
            rfile = edge.makefile("rb")
            try:
                request_line = rfile.readline(65537).decode("latin-1")
                method, target, _version = request_line.split()
                headers = http.client.parse_headers(rfile)
            except (ValueError, OSError, http.client.HTTPException):
                return
            with self.lock:
                self.requests_total += 1
                config = self.config
            host = (headers.get("Host") or "").lower()
            hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
            rule = match_rule(config, hostname, target.split("?", 1)[0])
            service = rule.get("service") if rule else "http_status:503"
            if service.startswith("http_status:"):
                code = int(service.split(":", 1)[1])
                edge.sendall(http_response(code, http.client.responses.get(code, "")))
                return
            options = dict((config or {}).get("originRequest") or {})
            options.update((rule or {}).get("originRequest") or {})
            try:
                origin = self._dial_origin(service, options)
            except (OSError, ValueError) as exc:
                with self.lock:
                    self.errors_total += 1
                self.log("ERR", "Request failed", dest=f"{hostname}{target}",
                         originService=service, error=json.dumps(
                             "Unable to reach the origin service. The service may be down or "
                             "it may not be responding to traffic from cloudflared: " + str(exc)))
                edge.sendall(http_response(502, "Bad Gateway", b"502 Bad Gateway: the "
                                           b"tunnel connector could not reach the origin\n"))
                return
            with origin:
                lines = [f"{method} {target} HTTP/1.1"]
                for key, value in headers.items():
                    if key.lower() == "host" and options.get("httpHostHeader"):
                        value = options["httpHostHeader"]
                    lines.append(f"{key}: {value}")
                origin.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                upstream = threading.Thread(target=pipe, args=(rfile.read1, origin,
                                                               socket.SHUT_WR), daemon=True)
                upstream.start()
                pipe(origin.recv, edge, socket.SHUT_RDWR)

    def _dial_origin(self, service, options):
        match = re.fullmatch(r"(https?|wss?)://([^/:]+|\[[^\]]+\])(?::(\d+))?(/.*)?", service)
        if not match:
            raise ValueError(f"the stand-in cannot proxy to service {service!r}")
        scheme, host, port = match.group(1), match.group(2).strip("[]"), match.group(3)
        secure = scheme in ("https", "wss")
        port = int(port or (443 if secure else 80))
        timeout = seconds(options.get("connectTimeout"), DEFAULT_CONNECT_TIMEOUT)
        sock = socket.create_connection((host, port), timeout=timeout)
        if secure:
            if options.get("noTLSVerify"):
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context()
                # Go's verifier ignores the subject CN: only SANs name the host.
                context.hostname_checks_common_name = False
                if options.get("caPool"):
                    context.load_verify_locations(cafile=options["caPool"])
            server_name = options.get("originServerName") or host
            sock.settimeout(seconds(options.get("tlsTimeout"), 10.0))
            try:
                sock = context.wrap_socket(sock, server_hostname=server_name)
            except OSError:
                sock.close()
                raise
        sock.settimeout(None)
        return sock


# --------------------------------------------------------------------------- metrics
def metrics_server(address, connector, log):
    """Start the metrics HTTP server on *address* ("host:port"); return it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body, content_type):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            ready = connector.ready_connections()
            if self.path == "/ready":
                status = 200 if ready else 503
                self._send(status, json.dumps({"status": status, "readyConnections": ready,
                                               "connectorId": connector.client_id}),
                           "application/json")
            elif self.path == "/metrics":
                self._send(200, "# cloudflared STAND-IN metrics (not cloudflared)\n"
                           f"cloudflared_tunnel_ha_connections {ready}\n"
                           f"cloudflared_tunnel_total_requests {connector.requests_total}\n"
                           f"cloudflared_tunnel_request_errors {connector.errors_total}\n"
                           f'build_info{{version="{VERSION}"}} 1\n', "text/plain")
            elif self.path == "/healthcheck":
                self._send(200, "OK\n", "text/plain")
            else:
                self._send(404, "404 page not found\n", "text/plain")

    host, port = host_port(address, 0)
    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log("INF", f"Starting metrics server on {host}:{server.server_address[1]}/metrics")
    return server


def default_metrics(connector, log):
    """Like cloudflared: try 127.0.0.1:20241..20245 when --metrics is not given."""
    for port in range(20241, 20246):
        try:
            return metrics_server(f"127.0.0.1:{port}", connector, log)
        except OSError:
            continue
    return None


# --------------------------------------------------------------------------- main
def version_line():
    return (f"cloudflared version {VERSION} (selfhost.mastodon test STAND-IN for cloudflared, "
            "not cloudflared)")


def run(flags, log):
    token = flags.get("token") or ""
    token_file = flags.get("token-file") or os.environ.get("TUNNEL_TOKEN_FILE")
    if not token and token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            log("ERR", f"Cannot read token file {token_file}: {exc.strerror}")
            return 1
    token = token or os.environ.get("TUNNEL_TOKEN", "")
    if not token:
        log("ERR", "\"cloudflared tunnel run\" requires the ID or name of the tunnel to run "
            "or a token (--token, --token-file or TUNNEL_TOKEN)")
        return 1
    try:
        account, tunnel, secret = decode_token(token)
    except ValueError as exc:
        log("ERR", str(exc))
        return 1
    edge_text = flags.get("edge") or os.environ.get("TUNNEL_EDGE") or DEFAULT_EDGE
    edge = host_port(edge_text.split(",")[0].strip(), 7844)
    ha = int(flags.get("ha-connections") or 4)
    log("INF", f"Starting tunnel tunnelID={tunnel}")
    log("INF", f"Version {VERSION} (cloudflared STAND-IN, not cloudflared)")
    connector = Connector(account, tunnel, secret, edge, ha, log)
    metrics_address = flags.get("metrics") or os.environ.get("TUNNEL_METRICS")
    try:
        server = (metrics_server(metrics_address, connector, log) if metrics_address
                  else default_metrics(connector, log))
    except OSError as exc:
        log("ERR", f"Cannot start the metrics server on {metrics_address}: {exc.strerror}")
        return 1
    log("INF", f"Generated Connector ID: {connector.client_id}")
    log("INF", f"Initial protocol standin-tcp; edge {edge[0]}:{edge[1]}")
    stopping = threading.Event()

    def on_signal(signum, _frame):
        log("INF", f"Initiating graceful shutdown due to signal {signal.Signals(signum).name}")
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    connector.start()
    while not stopping.wait(0.5):
        pass
    connector.shutdown()
    if server is not None:
        server.shutdown()
    log("INF", "Tunnel server stopped")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags, words = parse_command_line(argv)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    if flags.get("version") or flags.get("v") or words[:1] == ["version"]:
        print(version_line())
        return 0
    if flags.get("help") or flags.get("h") or not words:
        print(__doc__)
        return 0
    log = Logger(flags.get("logfile"))
    if words[:2] == ["tunnel", "run"]:
        return run(flags, log)
    log("ERR", f"the cloudflared stand-in only implements 'tunnel run' and 'version', "
        f"not {' '.join(words)!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
