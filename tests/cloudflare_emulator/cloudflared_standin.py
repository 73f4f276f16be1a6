#!/usr/bin/env python3
"""cloudflared STAND-IN: a test double for Cloudflare's connector, not cloudflared.

The selfhost.mastodon project cannot download cloudflared or reach Cloudflare in its test
machines, so its Molecule scenarios install this single file as /usr/local/bin/cloudflared.
It accepts the real command-line shape, each flag only where cloudflared takes it::

    cloudflared [global flags] tunnel [tunnel flags] run [run flags]
    cloudflared --no-autoupdate tunnel --metrics 127.0.0.1:PORT run --token-file /path
    cloudflared tunnel run --token TOKEN        (or env TUNNEL_TOKEN / TUNNEL_TOKEN_FILE)
    cloudflared --version                       (cloudflared version 2026.8.2 ...)

and behaves like cloudflared where the project's tests, the role or a user can observe it:

* the command line: an unknown or misplaced flag (a run flag such as ``--token-file`` before
  ``run``, a tunnel flag such as ``--metrics`` after it) or a value that does not parse prints
  "Incorrect Usage" and the help and exits 0, as cloudflared does; a missing, unreadable or
  empty token file, no token or an invalid token is a usage error, exit status 255;
  ``--token``/TUNNEL_TOKEN wins over ``--token-file``/TUNNEL_TOKEN_FILE;
* a pushed configuration is applied WHOLE or refused WHOLE, as cloudflared's orchestrator
  does: a rule its ingress validation refuses ("Failed to deserialize new configuration") or a
  ``caPool`` file it cannot read ("Failed to update ingress") is logged with ``error=`` and
  ``version=``, the previous configuration stays, and with none applied since the start every
  hostname answers 503;
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
  answered with 502 Bad Gateway; ``http_status:NNN`` services answer NNN, ``hello_world`` a
  small page; unix sockets (``unix:``, ``unix+tls:``) are proxied like http(s) origins; the
  TCP services (tcp, ssh, rdp, smb, any other scheme, ``socks-proxy``, ``bastion``) are
  accepted in a configuration but not proxied (502: they need ``cloudflared access`` on the
  visitor's side, which the project never uses);
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
import ipaddress
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

# The release whose behaviour this stand-in follows (reported like the real binary: the role
# checks it against its minimum, 2025.4.0, which introduced --token-file).
VERSION = "2026.8.2"
DEFAULT_EDGE = "region1.v2.argotunnel.com:7844"
MAX_BACKOFF = 8.0
READ_TIMEOUT = 20.0  # the edge pings every 5 s; silence this long means the edge is gone
DEFAULT_CONNECT_TIMEOUT = 30.0


def _table(kinds):
    table = {}
    for kind, names in kinds.items():
        for name in names.split():
            table[name] = kind
    return table


# cloudflared's flags and where it takes them (read in its source, release 2026.8.2: tunnelFlags
# in cmd/cloudflared/tunnel/cmd.go, buildRunCommand in subcommands.go), with the kind of value.
# The same tables as plugins/module_utils/_cloudflared_flags.py (a unit test keeps them equal).
# The application level (before "tunnel") takes the tunnel flags too, plus --version.
TUNNEL_FLAGS = _table({
    'bool': (
        'bastion f h hello-world help http2-origin is-autoupdated management-diagnostics '
        'no-autoupdate no-chunked-encoding no-prechecks no-tls-verify overwrite-dns '
        'post-quantum pq proxy-dns proxy-no-happy-eyeballs quic-disable-pmtu-discovery socks5 '
        'ssh-server stdin-control ui use-reconnect-token'
    ),
    'int': (
        'compression-quality ha-connections heartbeat-count max-edge-addr-retries '
        'max-fetch-size proxy-dns-max-upstream-conns proxy-dns-port '
        'proxy-keepalive-connections proxy-port quic-connection-level-flow-control-limit '
        'quic-stream-level-flow-control-limit retries'
    ),
    'duration': (
        'autoupdate-freq dial-edge-timeout grace-period heartbeat-interval '
        'metrics-update-freq proxy-connect-timeout proxy-connection-timeout '
        'proxy-expect-continue-timeout proxy-keepalive-timeout proxy-tcp-keepalive '
        'proxy-tls-timeout rpc-timeout ssh-idle-timeout ssh-max-timeout write-stream-timeout'
    ),
    'string': (
        'access-key-id api-ca-key api-email api-key api-url bucket-name cacert config '
        'cred-file credentials-file edge edge-bind-address edge-ip-version host-key-path '
        'hostname http-host-header id label lb-pool local-ssh-port log-directory logfile '
        'loglevel management-hostname metrics n name origin-ca-pool origin-server-name '
        'origincert output p pidfile proto-loglevel protocol proxy-address proxy-dns-address '
        'proxy-dns-bootstrap proxy-dns-upstream quick-service region region-name s3-url-host '
        'secret-id service-op-ip session-token tag trace-output transport-loglevel '
        'unix-socket url'
    ),
})

RUN_FLAGS = _table({
    'bool': (
        'bastion h hello-world help http2-origin no-chunked-encoding no-tls-verify '
        'post-quantum pq proxy-no-happy-eyeballs socks5 ssh-server'
    ),
    'int': (
        'proxy-keepalive-connections proxy-port'
    ),
    'uint': (
        'max-active-flows'
    ),
    'duration': (
        'proxy-connect-timeout proxy-connection-timeout proxy-expect-continue-timeout '
        'proxy-keepalive-timeout proxy-tcp-keepalive proxy-tls-timeout ssh-idle-timeout '
        'ssh-max-timeout'
    ),
    'string': (
        'F access-key-id bucket-name cred-file credentials-contents credentials-file '
        'dns-resolver-addrs features host-key-path http-host-header icmpv4-src icmpv6-src '
        'local-ssh-port management-hostname origin-ca-pool origin-server-name p protocol '
        'proxy-address region-name s3-url-host secret-id service-op-ip session-token token '
        'token-file unix-socket url'
    ),
})
GLOBAL_FLAGS = dict(TUNNEL_FLAGS, version="bool", v="bool")
EXIT_USAGE = 255  # cliutil.UsageError: cli.Exit(msg, -1)
_BOOL_VALUES = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")
_INT_RE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[bB][01]+(?:_[01]+)*"
                     r"|0[oO]?[0-7]*(?:_[0-7]+)*|[1-9][0-9]*(?:_[0-9]+)*)")
_DURATION_RE = re.compile("[+-]?(?:0|(?:(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)"
                          "(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)")


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
class UsageError(Exception):
    """A command line cloudflared refuses: it prints "Incorrect Usage" and exits 0."""


def _value_ok(kind, value):
    if kind == "bool":
        return value in _BOOL_VALUES
    if kind in ("int", "uint"):
        return bool(_INT_RE.fullmatch(value)) and not (kind == "uint" and value.startswith("-"))
    if kind == "duration":
        return bool(_DURATION_RE.fullmatch(value))
    return True


def _parse_level(argv, index, table, flags):
    """Go's flag parsing for one command level: flags until the first word. Returns the index
    of that word. Raises UsageError like urfave/cli."""
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return index + 1
        if not arg.startswith("-") or arg == "-":
            return index
        index += 1
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if body == "" or body[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, eq, value = body.partition("=")
        kind = table.get(name)
        if kind is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if kind == "bool":
            if eq and not _value_ok(kind, value):
                raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
            flags[name] = (value in ("1", "t", "T", "TRUE", "true", "True")) if eq else True
            continue
        if not eq:
            if index >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[index]
            index += 1
        if not _value_ok(kind, value):
            raise UsageError(f'invalid value "{value}" for flag -{name}: parse error')
        flags[name] = value
    return index


def parse_command_line(argv):
    """Split cloudflared's arguments into (flags, command words, positional arguments).

    As in cloudflared (urfave/cli): ``[global flags] tunnel [tunnel flags] run [run flags]
    [TUNNEL]``; each level takes only its own flags (a run flag before ``run`` or a tunnel flag
    after it is "flag provided but not defined"), and a value must parse for its flag.
    Raises UsageError.
    """
    flags = {}
    index = _parse_level(argv, 0, GLOBAL_FLAGS, flags)
    words = []
    if index < len(argv) and argv[index] == "tunnel":
        words.append("tunnel")
        index = _parse_level(argv, index + 1, TUNNEL_FLAGS, flags)
        if index < len(argv) and argv[index] == "run":
            words.append("run")
            index = _parse_level(argv, index + 1, RUN_FLAGS, flags)
    return flags, words, list(argv[index:])


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
# cloudflared validates a pushed configuration WHOLE (ingress/ingress.go validateIngress, then
# StartOrigins): one rule it refuses and it logs the error, keeps its previous configuration, and
# (after a fresh start, with none applied yet) answers 503 for every hostname. The route module
# checks services with plugins/module_utils/_ingress_rules.py; this is the stand-in's own
# reading of the same rules (Go 1.26 net/url), kept in step by a unit test on the same verdicts.
SPECIAL_SERVICES = ("hello_world", "hello-world", "socks-proxy", "bastion")
HTTP_SCHEMES = ("http", "https", "ws", "wss")
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = frozenset(b"-._:~!$&'()*+,;=%@")


class ConfigRefused(Exception):
    """A configuration cloudflared refuses: ``stage`` is where its log says it failed."""

    def __init__(self, stage, message):
        super().__init__(message)
        self.stage = stage


def _host_escape(c):
    return not (chr(c).isalnum() and c < 0x80) and c not in _HOST_OK


def _go_unescape(data, mode):
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:
            pair = data[i + 1:i + 3]
            if len(pair) < 2 or not all(chr(h) in "0123456789abcdefABCDEF" for h in pair):
                raise ValueError(f"invalid URL escape {data[i:i + 3]!r}")
            value = int(pair, 16)
            if mode == "host" and value < 0x80 and data[i:i + 3] != b"%25":
                raise ValueError(f"invalid URL escape {data[i:i + 3]!r}")
            if mode == "zone" and data[i:i + 3] != b"%25" and value != 0x20 and value < 0x80 \
                    and _host_escape(value):
                raise ValueError(f"invalid URL escape {data[i:i + 3]!r}")
            i += 3
            continue
        if mode in ("host", "zone") and c < 0x80 and _host_escape(c):
            raise ValueError(f"invalid character {chr(c)!r} in host name")
        i += 1


def _port_ok(port):
    return port == b"" or (port[:1] == b":" and port[1:].isdigit() or port == b":")


def _go_host(host):
    """Go 1.26 parseHost; returns the host name without port (empty when there is none)."""
    if b"[" in host[1:]:
        raise ValueError("invalid IP-literal")
    if host.startswith(b"["):
        close = host.rfind(b"]")
        if close < 0:
            raise ValueError("missing ']' in host")
        if not _port_ok(host[close + 1:]):
            raise ValueError("invalid port after host")
        inside = host[1:close]
        zone = inside.find(b"%25")
        _go_unescape(inside if zone < 0 else inside[:zone], "host")
        if zone >= 0:
            _go_unescape(inside[zone:], "zone")
        address, _sep, zone_id = inside.replace(b"%25", b"%", 1).decode("latin-1").partition("%")
        if "%" in inside.decode("latin-1") and not zone_id:
            raise ValueError("zone must be a non-empty string")
        if ":" not in address:
            raise ValueError("invalid IP-literal")
        try:
            ipaddress.IPv6Address(address)
        except ValueError as exc:
            raise ValueError(f"invalid host: {exc}") from exc
        return address
    colon = host.find(b":")
    if colon >= 0 and not _port_ok(host[colon:]):
        raise ValueError(f"invalid port {host[colon:]!r} after host")
    _go_unescape(host, "host")
    return host[:colon] if colon >= 0 else host


def service_refusal(service):
    """Why cloudflared refuses an ingress rule's service, or None."""
    if not isinstance(service, str):
        return "service must be a string"
    if service.startswith(("unix:", "unix+tls:")) or service in SPECIAL_SERVICES:
        return None
    if service.startswith("http_status:"):
        code = service[len("http_status:"):]
        if not re.fullmatch(r"[+-]?[0-9]+", code):
            return f'invalid HTTP status code: strconv.Atoi: parsing "{code}": invalid syntax'
        return None if 100 <= int(code) <= 999 else f"invalid HTTP status code: {int(code)}"
    data = service.encode("utf-8", "surrogateescape")
    data, hashed, fragment = data.partition(b"#")
    try:
        if any(c < 0x20 or c == 0x7F for c in data):
            raise ValueError("net/url: invalid control character in URL")
        scheme = re.match(rb"[A-Za-z][A-Za-z0-9+.-]*:", data)
        if data.startswith(b":"):
            raise ValueError("missing protocol scheme")
        rest = data[scheme.end():] if scheme else data
        rest = rest[:-1] if rest.endswith(b"?") and rest.count(b"?") == 1 else rest.partition(b"?")[0]
        host, path = b"", rest
        if not rest.startswith(b"/"):
            if scheme:
                path = b""  # opaque: no host
            elif b":" in rest.partition(b"/")[0]:
                raise ValueError("first path segment in URL cannot contain colon")
        elif rest.startswith(b"//") and (scheme or not rest.startswith(b"///")):
            authority, slash, tail = rest[2:].partition(b"/")
            userinfo, at, hostport = authority.rpartition(b"@")
            host = _go_host(hostport if at else authority)
            if at:
                text = userinfo.decode("utf-8", "replace")
                if any(not (ch.isascii() and ch.isalnum()) and ord(ch) not in _USERINFO_OK
                       for ch in text):
                    raise ValueError("net/url: invalid userinfo")
                for part in userinfo.split(b":", 1):
                    _go_unescape(part, "userinfo")
            path = slash + tail
        _go_unescape(path, "path")
        if hashed and fragment:
            _go_unescape(fragment, "fragment")
    except ValueError as exc:
        return f'parse "{service}": {exc}'
    if not scheme or not host:
        return (f"{service} is an invalid address, please make sure it has a scheme and a "
                "hostname")
    if path:
        return (f"{service} is an invalid address, ingress rules don't support proxying to a "
                "different path on the origin service. The path will be the same as the "
                "eyeball request's path")
    return None


def _splits_host_port(text):
    """Whether Go's net.SplitHostPort accepts ``text`` (then a rule's hostname has a port)."""
    if text.startswith("["):
        return bool(re.fullmatch(r"\[[^\[\]]*\]:[^\[\]]*", text))
    host, colon, port = text.rpartition(":")
    return bool(colon) and ":" not in host and not re.search(r"[\[\]]", text)


def validate_config(config):
    """Refuse a remote configuration as cloudflared would: ConfigRefused("deserialize", ...)
    for a rule validateIngress refuses, ConfigRefused("update", ...) for an origin that cannot
    start (a caPool file it cannot read)."""
    config = config if isinstance(config, dict) else {}
    rules = config.get("ingress") or []
    defaults = config.get("originRequest") or {}
    for index, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        problem = service_refusal(rule.get("service", ""))
        if problem:
            raise ConfigRefused("deserialize", problem)
        hostname = rule.get("hostname") or ""
        if _splits_host_port(hostname):
            raise ConfigRefused("deserialize", "Hostname cannot contain a port")
        if hostname.rfind("*") > 0:
            raise ConfigRefused("deserialize", 'Hostname patterns can have at most one wildcard '
                                'character ("*") and it can only be used for subdomains, e.g. '
                                '"*.example.com"')
        catch_all = hostname in ("", "*") and not rule.get("path")
        if index == len(rules) - 1 and not catch_all:
            raise ConfigRefused("deserialize", "The last ingress rule must match all URLs (i.e. "
                                "it should not have a hostname or path filter)")
        if index < len(rules) - 1 and catch_all:
            raise ConfigRefused("deserialize", f"Rule #{index + 1} is matching the hostname "
                                f"'{hostname}', but this will match every hostname, meaning the "
                                "rules which follow it will never be triggered.")
        if rule.get("path"):
            try:
                re.compile(rule["path"])
            except re.error as exc:
                raise ConfigRefused("deserialize", f"Rule #{index + 1} has an invalid regex: "
                                    f"{exc}") from exc
    for rule in rules:
        service = rule.get("service", "")
        if not (service.startswith(("unix:", "unix+tls:"))
                or service.split("://", 1)[0].lower() in HTTP_SCHEMES and "://" in service):
            continue
        ca_pool = ((rule.get("originRequest") or {}).get("caPool")
                   or defaults.get("caPool") or "")
        if ca_pool:
            try:
                with open(ca_pool, "rb"):
                    pass
            except OSError as exc:
                raise ConfigRefused("update", f"failed to start origin: unable to read the file "
                                    f"{ca_pool} for --origin-ca-pool: open {ca_pool}: "
                                    f"{(exc.strerror or str(exc)).lower()}") from exc


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
                self.apply_config(message.get("version", 0), message.get("config"))
            elif kind == "stream":
                threading.Thread(target=self._stream, args=(message.get("stream_id"),),
                                 daemon=True).start()

    def apply_config(self, version, config):
        """Apply a pushed configuration whole, or refuse it whole (cloudflared's orchestrator:
        the previous one stays, and the version is not taken)."""
        with self.lock:
            if version <= self.config_version:
                return
            try:
                validate_config(config)
            except ConfigRefused as exc:
                message = ("Failed to deserialize new configuration" if exc.stage == "deserialize"
                           else "Failed to update ingress")
                self.log("ERR", message, error=json.dumps(str(exc)), version=version,
                         config=json.dumps(json.dumps(config, sort_keys=True)))
                return
            self.config_version = version
            self.config = config
        self.log("INF", "Updated to new configuration", version=version,
                 config=json.dumps(json.dumps(config, sort_keys=True)))

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
            if service in ("hello_world", "hello-world"):
                edge.sendall(http_response(200, "OK", b"<html><body><h1>Congrats! You created a "
                                           b"tunnel!</h1><p>(cloudflared STAND-IN's hello "
                                           b"world)</p></body></html>\n", "text/html; charset=utf-8"))
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
        timeout = seconds(options.get("connectTimeout"), DEFAULT_CONNECT_TIMEOUT)
        if service.startswith(("unix:", "unix+tls:")):
            # HTTP over a unix socket (unix+tls: with TLS; the name to verify is the
            # originServerName, else "localhost" here).
            scheme, path = service.split(":", 1)
            secure, host = scheme == "unix+tls", "localhost"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
        else:
            match = re.fullmatch(r"(https?|wss?)://(?:[^@/]*@)?([^/:?#]+|\[[^\]]+\])(?::(\d*))?"
                                 r"(?:[?#].*)?", service, re.IGNORECASE)
            if not match:
                raise ValueError(f"the stand-in cannot proxy to service {service!r} (it proxies "
                                 "http(s), ws(s) and unix sockets only)")
            scheme, host, port = match.group(1).lower(), match.group(2).strip("[]"), match.group(3)
            secure = scheme in ("https", "wss")
            port = int(port or (443 if secure else 80))
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
                # Nor does it apply OpenSSL's RFC 5280 strict checks (an Authority Key
                # Identifier on every issued certificate), which Python 3.13 turns on.
                context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
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
    return (f"cloudflared version {VERSION} (built by selfhost.mastodon: a test STAND-IN for "
            "cloudflared, not cloudflared)")


def usage_exit(message, command="tunnel run"):
    """cloudflared's UsageError: the message and a hint on stderr, exit status 255."""
    print(f"{message}\nSee 'cloudflared {command} --help'.", file=sys.stderr)
    return EXIT_USAGE


def run(flags, log, args=()):
    # As cloudflared's runCommand: --token (or TUNNEL_TOKEN) wins over --token-file (or
    # TUNNEL_TOKEN_FILE); an unreadable token file, an empty one, no token at all or an invalid
    # token is a usage error (exit status 255).
    token = flags.get("token") or os.environ.get("TUNNEL_TOKEN", "")
    if not token:
        token_file = flags.get("token-file") or os.environ.get("TUNNEL_TOKEN_FILE", "")
        if token_file:
            try:
                with open(token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                return usage_exit(f"Failed to read token file: open {token_file}: "
                                  f"{(exc.strerror or str(exc)).lower()}")
    if len(args) > 1:
        return usage_exit('"cloudflared tunnel run" accepts only one argument, the ID or name of '
                          "the tunnel to run.")
    if not token:
        if args:
            return usage_exit(f"the cloudflared STAND-IN runs tunnels by token only, not by name "
                              f"or id ({args[0]!r})")
        return usage_exit('"cloudflared tunnel run" requires the ID or name of the tunnel to run '
                          "as the last command line argument or in the configuration file.")
    try:
        account, tunnel, secret = decode_token(token)
    except ValueError as exc:
        return usage_exit(str(exc))
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


HELP = """NAME:
   cloudflared - Cloudflare's command-line tool and agent (here: the selfhost.mastodon test
   STAND-IN for it, not cloudflared)

USAGE:
   cloudflared [global options] tunnel [tunnel command options] run [subcommand options] [TUNNEL]

See the stand-in's source for what it implements."""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags, words, args = parse_command_line(argv)
    except UsageError as exc:
        # urfave/cli: "Incorrect Usage", the help, and exit status 0 (systemd's
        # Restart=on-failure does not fire).
        print(f"Incorrect Usage: {exc}\n\n{HELP}")
        return 0
    if flags.get("version") or flags.get("v") or (not words and args[:1] == ["version"]):
        print(version_line())
        return 0
    if flags.get("help") or flags.get("h") or not words:
        print(HELP)
        return 0
    log = Logger(flags.get("logfile"))
    if words == ["tunnel", "run"]:
        return run(flags, log, args)
    log("ERR", f"the cloudflared stand-in only implements 'tunnel run' and 'version', "
        f"not {' '.join(words + args)!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
