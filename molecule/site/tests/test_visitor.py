"""A visitor's view: https://social.example.test through the emulated edge (TEST STAND-IN for
Cloudflare) on 127.0.0.1, the tunnel, the connector STAND-IN, nginx (self-signed) and the
Mastodon TEST DOUBLE's Puma and streaming processes."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import base64
import json
import os
import re
import socket
import ssl
import subprocess

from conftest import DOMAIN, EMULATOR_CONTAINER, visit_until


def test_health_reaches_puma_through_the_tunnel(emulator):
    status, headers, body = visit_until(emulator, "/health", 200)
    assert status == 200, body
    assert body.strip() == "OK"
    assert headers.get("server") == "cloudflare"  # answered through the edge
    assert headers.get("cf-ray", "").endswith("-EMU")


def test_root_reaches_the_web_process_over_the_origin_tls(emulator):
    status, _, body = visit_until(emulator, "/", 200)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["double"] == "mastodon-web TEST DOUBLE"
    assert answer["host"] == DOMAIN
    assert answer["x_forwarded_proto"] == "https"


def test_the_app_sees_the_visitor_address_not_localhost(emulator):
    status, _, body = visit_until(emulator, "/whoami", 200)
    assert status == 200, body
    seen = json.loads(body)["client_ip"]
    assert seen and seen not in ("127.0.0.1", "::1")
    # The address the edge saw this visitor come from (its log line for this request).
    logs = subprocess.run(["docker", "logs", EMULATOR_CONTAINER], capture_output=True,
                          text=True, check=True).stderr
    edge_saw = re.findall(rf"edge: GET {re.escape(DOMAIN)}/whoami from (\S+) -> 200", logs)
    assert edge_saw, logs[-2000:]
    assert seen == edge_saw[-1]


def test_streaming_upgrades_to_a_websocket(emulator):
    key = base64.b64encode(os.urandom(16)).decode()
    context = ssl.create_default_context(cafile=emulator["edge_ca"])
    with socket.create_connection(("127.0.0.1", int(emulator["edge_port"])), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            tls.sendall((f"GET /api/v1/streaming?stream=public HTTP/1.1\r\nHost: {DOMAIN}\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            data = b""
            while b"mastodon-streaming TEST DOUBLE" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data[:300]
    assert b"mastodon-streaming TEST DOUBLE" in data  # a websocket frame from the streaming process
