"""A visitor's HTTPS request through the emulated Cloudflare edge (a TEST STAND-IN), as a
browser sends it: TLS to the edge on 127.0.0.1 with the Mastodon domain as SNI and Host.
One helper for the scenarios that visit the site (site, multi)."""

import socket
import ssl


def visit_edge(edge_port, edge_ca, domain, path, agent="selfhost-test", timeout=30):
    """GET https://<domain><path> through the edge; return (status, headers, body)."""
    context = ssl.create_default_context(cafile=edge_ca)
    with socket.create_connection(("127.0.0.1", int(edge_port)), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=domain) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: {agent}\r\n"
                        "Connection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, dummy, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, dummy, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body.decode("utf-8", "replace")
