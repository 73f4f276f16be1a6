"""The emulated Cloudflare edge (a TEST STAND-IN for Cloudflare, not Cloudflare).

Two listeners:

* :class:`ConnectorServer` accepts the *outbound* connections of the cloudflared stand-in:
  control connections (register, configuration push, stream announcements) and stream
  connections (one per visitor request).  See :mod:`.protocol`.
* :class:`EdgeServer` plays the edge for visitors.  A request whose Host is a hostname with
  a proxied CNAME to ``<tunnel id>.cfargotunnel.com`` is carried through a connected
  connector of that tunnel.  The edge adds CF-Connecting-IP, X-Forwarded-For,
  X-Forwarded-Proto: https, CF-Ray and CF-Visitor.

Error pages, as Cloudflare shows them:

* hostname in no zone, no record, a DNS-only record or a record not pointing at a live
  tunnel of the zone's account: 530 "Error 1001 DNS resolution error" (the visitor of a
  real hostname would not even reach the edge; 530/1001 is what Cloudflare answers when it
  cannot resolve the origin of a hostname it serves);
* tunnel without a connected connector: 530 "Error 1033 Cloudflare Tunnel error";
* origin failures are answered by the connector with 502 Bad Gateway and passed through.
"""

from __future__ import annotations

import http.client
import queue
import secrets
import socket
import socketserver
import ssl
import threading
import uuid

from .protocol import pipe, read_message, send_message
from .store import now_iso

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"}
STREAM_WAIT = 10.0
PING_INTERVAL = 5.0


class ControlConnection:
    """One registered connector connection, able to announce streams and push config."""

    def __init__(self, sock, tunnel_id, client_id, conn_id):
        self.sock = sock
        self.tunnel_id = tunnel_id
        self.client_id = client_id
        self.conn_id = conn_id
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def send(self, message):
        with self.lock:
            send_message(self.sock, message)

    def close(self):
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ConnectorServer(socketserver.ThreadingTCPServer):
    """Accepts connector control and stream connections (the edge's port 7844)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store, log=None):
        self.store = store
        self.log = log or (lambda message: None)
        self.controls = {}  # tunnel_id -> list[ControlConnection]
        self.controls_lock = threading.Lock()
        self.pending = {}  # stream_id -> queue.Queue
        self.pending_lock = threading.Lock()
        super().__init__(address, ConnectorHandler)
        store.on_config_change(self.push_config)
        store.on_connections_removed(self.drop_clients)

    # bookkeeping
    def add_control(self, control):
        with self.controls_lock:
            self.controls.setdefault(control.tunnel_id, []).append(control)

    def remove_control(self, control):
        with self.controls_lock:
            items = self.controls.get(control.tunnel_id, [])
            if control in items:
                items.remove(control)

    def pick_control(self, tunnel_id):
        with self.controls_lock:
            live = [c for c in self.controls.get(tunnel_id, []) if not c.closed.is_set()]
        return secrets.choice(live) if live else None

    def push_config(self, tunnel_id):
        with self.store.lock:
            tunnel = self.store.tunnels.get(tunnel_id)
            message = {"type": "config", "version": tunnel["config_version"],
                       "config": tunnel["config"]}
        with self.controls_lock:
            targets = list(self.controls.get(tunnel_id, []))
        for control in targets:
            try:
                control.send(message)
            except OSError:
                control.close()

    def drop_clients(self, tunnel_id, client_ids):
        with self.controls_lock:
            targets = [c for c in self.controls.get(tunnel_id, []) if c.client_id in client_ids]
        for control in targets:
            control.close()

    def drop_all(self):
        with self.controls_lock:
            targets = [c for items in self.controls.values() for c in items]
        for control in targets:
            control.close()

    def open_stream(self, tunnel_id):
        """Ask a connector of *tunnel_id* to dial back; return (sock, rfile, done) or None."""
        control = self.pick_control(tunnel_id)
        if control is None:
            return None
        stream_id = uuid.uuid4().hex
        waiter = queue.Queue(maxsize=1)
        with self.pending_lock:
            self.pending[stream_id] = (tunnel_id, waiter)
        try:
            control.send({"type": "stream", "stream_id": stream_id})
            return waiter.get(timeout=STREAM_WAIT)
        except (OSError, queue.Empty):
            return None
        finally:
            with self.pending_lock:
                self.pending.pop(stream_id, None)

    def claim_stream(self, stream_id, tunnel_id):
        with self.pending_lock:
            entry = self.pending.pop(stream_id, None)
        if entry is None or entry[0] != tunnel_id:
            return None
        return entry[1]


class ConnectorHandler(socketserver.StreamRequestHandler):
    """Handles one inbound connection from a connector (control or stream)."""

    def handle(self):
        server = self.server
        self.connection.settimeout(30)
        try:
            hello = read_message(self.rfile)
        except (OSError, ValueError):
            return
        if not isinstance(hello, dict):
            return
        store = server.store
        tunnel = store.tunnel_for_connector(hello.get("account"), hello.get("tunnel"))
        problem = None
        if tunnel is None or tunnel["deleted_at"]:
            problem = "Unauthorized: Tunnel not found"
        elif hello.get("secret") != tunnel["secret"]:
            problem = "Unauthorized: Invalid tunnel secret"
        if problem:
            server.log(f"connector refused ({hello.get('type')}) for tunnel "
                       f"{hello.get('tunnel')}: {problem}")
            try:
                send_message(self.connection, {"type": "error", "message": problem})
            except OSError:
                pass
            return
        if hello.get("type") == "register":
            self._control(hello, tunnel)
        elif hello.get("type") == "stream":
            self._stream(hello, tunnel)

    def _control(self, hello, tunnel):
        server = self.server
        store = server.store
        client_id = str(hello.get("client_id") or uuid.uuid4())
        conn_id = str(uuid.uuid4())
        opened = now_iso()
        client_info = {"id": client_id, "arch": hello.get("arch", "linux_amd64"),
                       "version": hello.get("version", "stand-in"),
                       "config_version": tunnel["config_version"],
                       "features": ["stand-in"], "run_at": opened}
        conn = {"id": conn_id, "uuid": conn_id, "client_id": client_id,
                "client_version": client_info["version"], "colo_name": "EMU",
                "is_pending_reconnect": False, "opened_at": opened,
                "origin_ip": self.client_address[0]}
        control = ControlConnection(self.connection, tunnel["id"], client_id, conn_id)
        store.add_connection(tunnel["id"], client_info, conn)
        server.add_control(control)
        server.log(f"connector {client_id} registered connection {conn_id} for tunnel "
                   f"{tunnel['id']} from {self.client_address[0]}")
        pinger = threading.Thread(target=self._ping, args=(control,), daemon=True)
        try:
            control.send({"type": "registered", "connection_id": conn_id, "colo_name": "EMU"})
            server.push_config(tunnel["id"])
            pinger.start()
            self.connection.settimeout(None)
            while not control.closed.is_set():
                message = read_message(self.rfile)
                if message is None:
                    break
        except (OSError, ValueError):
            pass
        finally:
            control.close()
            server.remove_control(control)
            store.remove_connection(tunnel["id"], client_id, conn_id)
            server.log(f"connector {client_id} connection {conn_id} closed")

    @staticmethod
    def _ping(control):
        while not control.closed.wait(PING_INTERVAL):
            try:
                control.send({"type": "ping"})
            except OSError:
                control.close()

    def _stream(self, hello, tunnel):
        waiter = self.server.claim_stream(hello.get("stream_id"), tunnel["id"])
        if waiter is None:
            return
        self.connection.settimeout(None)
        done = threading.Event()
        waiter.put((self.connection, self.rfile, done))
        done.wait()


class EdgeServer(socketserver.ThreadingTCPServer):
    """The visitor-facing edge listener (HTTP, or HTTPS with a certificate)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store, connectors, certfile=None, keyfile=None, log=None):
        self.store = store
        self.connectors = connectors
        self.log = log or (lambda message: None)
        self.ssl_context = None
        if certfile:
            self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl_context.load_cert_chain(certfile, keyfile)
        super().__init__(address, EdgeHandler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock.settimeout(10)
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr


def _error_page(code, title, detail):
    return (f"<!DOCTYPE html><html><head><title>{title} | Cloudflare (emulator stand-in)"
            f"</title></head><body><h1>Error {code}</h1><h2>{title}</h2><p>{detail}</p>"
            "<p>Served by the project's Cloudflare edge stand-in, not by Cloudflare.</p>"
            "</body></html>")


class EdgeHandler(socketserver.StreamRequestHandler):
    """One visitor connection: one request, then close (Connection: close)."""

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                self.request.close()
                raise
        self.request.settimeout(60)
        super().setup()

    def _reply(self, status, reason, body, ray):
        data = body.encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nServer: cloudflare\r\nCF-RAY: {ray}\r\n"
                f"Content-Type: text/html; charset=UTF-8\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n")
        self.wfile.write(head.encode() + data)

    def handle(self):
        ray = secrets.token_hex(8) + "-EMU"
        try:
            request_line = self.rfile.readline(65537).decode("latin-1")
            if not request_line.strip():
                return
            method, target, _version = request_line.split()
            headers = http.client.parse_headers(self.rfile)
        except (ValueError, http.client.HTTPException, OSError):
            self._reply(400, "Bad Request", _error_page(400, "Bad request", ""), ray)
            return
        host = (headers.get("Host") or "").strip().lower()
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        zone, record, tunnel = self.server.store.route_for_hostname(hostname)
        if tunnel is None:
            self.server.log(f"edge: {hostname}: no route (zone={zone and zone['name']}, "
                            f"record={record and record['type']})")
            self._reply(530, "Origin DNS error", _error_page(
                1001, "DNS resolution error",
                f"{hostname} has no proxied CNAME to a live Cloudflare Tunnel."), ray)
            return
        stream = self.server.connectors.open_stream(tunnel["id"])
        if stream is None:
            self._reply(530, "Origin Unreachable", _error_page(
                1033, "Cloudflare Tunnel error",
                f"The tunnel {tunnel['id']} for {hostname} has no connected connector "
                "(cloudflared)."), ray)
            return
        sock, rfile, done = stream
        try:
            self._forward(method, target, headers, hostname, ray, sock, rfile)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            done.set()

    def _forward(self, method, target, headers, hostname, ray, sock, rfile):
        visitor_ip = self.client_address[0]
        upgrade = (headers.get("Upgrade", "").lower() == "websocket"
                   and "upgrade" in headers.get("Connection", "").lower())
        lines = [f"{method} {target} HTTP/1.1"]
        drop = HOP_BY_HOP | {"cf-connecting-ip", "cf-ray", "cf-visitor", "x-forwarded-proto",
                             "x-forwarded-for", "content-length"}
        for key, value in headers.items():
            if key.lower() not in drop:
                lines.append(f"{key}: {value}")
        previous = headers.get("X-Forwarded-For")
        lines += [f"CF-Connecting-IP: {visitor_ip}",
                  f"X-Forwarded-For: {previous + ', ' if previous else ''}{visitor_ip}",
                  "X-Forwarded-Proto: https", f"CF-RAY: {ray}",
                  'CF-Visitor: {"scheme":"https"}', "CDN-Loop: cloudflare"]
        length = int(headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if length:
            lines.append(f"Content-Length: {length}")
        if upgrade:
            lines += ["Connection: Upgrade", f"Upgrade: {headers.get('Upgrade')}"]
        else:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        # response head from the connector (origin's answer or the connector's error)
        try:
            status_line = rfile.readline(65537).decode("latin-1")
            response_headers = http.client.parse_headers(rfile)
            _proto, status, *reason = status_line.split(None, 2)
            status = int(status)
        except (ValueError, http.client.HTTPException, OSError):
            self._reply(502, "Bad Gateway", _error_page(
                502, "Bad gateway", "The tunnel stream ended without an answer."), ray)
            return
        reason = reason[0].strip() if reason else ""
        out = [f"HTTP/1.1 {status} {reason}"]
        for key, value in response_headers.items():
            if key.lower() in ("server", "cf-ray") or (
                    status != 101 and key.lower() in ("connection", "keep-alive")):
                continue
            out.append(f"{key}: {value}")
        out += ["Server: cloudflare", f"CF-RAY: {ray}"]
        if status != 101:
            out.append("Connection: close")
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()
        self.server.log(f"edge: {method} {hostname}{target} from {visitor_ip} -> {status}")
        if status == 101:
            threading.Thread(target=pipe, args=(self.rfile.read1, sock, socket.SHUT_WR),
                             daemon=True).start()
            pipe(rfile.read1, self.connection, socket.SHUT_WR)
            return
        remaining = response_headers.get("Content-Length")
        if remaining is not None and method != "HEAD":
            remaining = int(remaining)
            while remaining > 0:
                data = rfile.read1(min(65536, remaining))
                if not data:
                    break
                self.wfile.write(data)
                remaining -= len(data)
        elif method != "HEAD" and status not in (204, 304):
            while True:
                data = rfile.read1(65536)
                if not data:
                    break
                self.wfile.write(data)
