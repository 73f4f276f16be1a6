"""Wire protocol between the emulated edge and the cloudflared stand-in (TEST STAND-IN).

The real cloudflared talks QUIC or HTTP/2 over TLS to Cloudflare's edge on port 7844 and
registers with capnp RPC.  This stand-in protocol keeps the same *shape* with plain TCP and
newline-delimited JSON, so it needs only the standard library:

Control connection (connector dials OUT to the edge's connector port)::

    C -> E  {"type": "register", "account": A, "tunnel": T, "secret": S,
             "client_id": UUID, "conn_index": N, "version": V, "arch": ARCH}
    E -> C  {"type": "registered", "connection_id": UUID, "colo_name": "EMU"}
            or {"type": "error", "message": "Unauthorized: Invalid tunnel secret"} + close
    E -> C  {"type": "config", "version": N, "config": {...}}   (at once and on every PUT)
    E -> C  {"type": "stream", "stream_id": ID}                 (a visitor request waits)
    E -> C  {"type": "ping"}                                    (every few seconds)

Stream connection (the connector dials OUT again for each announced stream)::

    C -> E  {"type": "stream", "stream_id": ID, "account": A, "tunnel": T, "secret": S}
    then raw bytes: the edge writes the visitor's HTTP request, the connector writes the
    origin's HTTP response; after a 101 the bytes flow both ways (websocket).

The helpers that write and read a message line, and the one that copies a stream's bytes,
are defined once in ``cloudflared_standin.py`` (it must stay a single self-contained file: a
role installs it as /usr/local/bin/cloudflared); the emulator's side imports them from here.
"""

from __future__ import annotations

from .cloudflared_standin import MAX_LINE, pipe, read_message, send_message

__all__ = ["MAX_LINE", "pipe", "read_message", "send_message"]
