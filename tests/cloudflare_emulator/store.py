"""State of the Cloudflare emulator (a TEST STAND-IN for Cloudflare, not Cloudflare).

:class:`Store` holds accounts, zones, API tokens, tunnels (with their remote configuration
and secret), DNS records and the live connector connections.  It enforces the rules the
real API enforces (duplicate tunnel names, deleting a tunnel with connections, the last
ingress rule being a catch-all, DNS name conflicts) and raises :class:`ApiError` with the
HTTP status and Cloudflare error code the API answers.

Everything except live connections can be persisted to a JSON *state file* (written
atomically, mode 0600 because it holds tunnel secrets) so that a restarted emulator finds
its tunnels, configurations and records again.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import os
import re
import secrets
import tempfile
import threading
import uuid

from . import seed as seed_module

TUNNEL_DOMAIN = "cfargotunnel.com"

ORIGIN_REQUEST_KEYS = {
    # key: accepted python types (bool is checked before int on purpose)
    "noTLSVerify": (bool,),
    "caPool": (str,),
    "originServerName": (str,),
    "httpHostHeader": (str,),
    "connectTimeout": (int, str),
    "tlsTimeout": (int, str),
    "tcpKeepAlive": (int, str),
    "keepAliveTimeout": (int, str),
    "keepAliveConnections": (int,),
    "noHappyEyeballs": (bool,),
    "disableChunkedEncoding": (bool,),
    "http2Origin": (bool,),
    "proxyType": (str,),
    "bastionMode": (bool,),
    "proxyAddress": (str,),
    "proxyPort": (int,),
    "access": (dict,),
    "matchSNIToHost": (bool,),
}

# A rule's hostname: DNS labels, optionally a leading "*" wildcard label (cloudflared
# accepts "*" anywhere in the first label; the common form is "*.example.com").
HOSTNAME_RE = re.compile(r"^(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                         r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# A rule's service as the API stores it. The API does not run cloudflared's validation: the
# real one accepted "https://localhost:443/" and bare "socks5", which the connector then refused
# (whole configuration). The emulator's choice: any "scheme:..." text, an http_status code, the
# special service names, and bare socks5 (seen accepted); cloudflared's own verdict is the
# connector stand-in's.
SERVICE_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+._-]*:\S*|hello_world|hello-world|bastion|socks-proxy|socks5)$")

DNS_TYPES = ("A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX",
             "NAPTR", "NS", "PTR", "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI")
PROXIABLE_TYPES = ("A", "AAAA", "CNAME")


class ApiError(Exception):
    """An error the API answers with: HTTP status plus Cloudflare ``errors`` entries."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.errors = [{"code": code, "message": message}]
        self.headers = headers or {}


def now_iso():
    """Current UTC time the way Cloudflare prints it (RFC 3339, microseconds, Z)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_hex_id():
    """A 32 hex character identifier like Cloudflare's zone and record ids."""
    return uuid.uuid4().hex


def b64_secret_ok(value):
    """True when *value* is base64 of at least 32 bytes (the documented tunnel_secret rule)."""
    try:
        return len(base64.b64decode(value, validate=True)) >= 32
    except (ValueError, TypeError):
        return False


def tunnel_token(account_id, tunnel_id, secret_b64):
    """The connector token in the real format: base64 of JSON {"a", "t", "s"}."""
    payload = json.dumps({"a": account_id, "t": tunnel_id, "s": secret_b64},
                         separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def validate_tunnel_config(config):
    """Check a remote tunnel configuration like Cloudflare does before storing it.

    Raises :class:`ApiError` (400) naming the offending rule.  The ingress rules need
    ``hostname`` and ``service`` except the last one, which must be a catch-all without
    hostname or path.  ``originRequest`` keys must be the camelCase names cloudflared knows.
    """
    if not isinstance(config, dict):
        raise ApiError(400, 1001, "Invalid request: 'config' must be an object")
    ingress = config.get("ingress", [])
    if not isinstance(ingress, list):
        raise ApiError(400, 1001, "Invalid request: 'config.ingress' must be a list")
    _validate_origin_request(config.get("originRequest"), "config.originRequest")
    for index, rule in enumerate(ingress):
        where = f"ingress rule #{index + 1}"
        if not isinstance(rule, dict):
            raise ApiError(400, 1001, f"Invalid request: {where} must be an object")
        unknown = set(rule) - {"hostname", "service", "path", "originRequest"}
        if unknown:
            raise ApiError(400, 1001, f"Invalid request: {where} has unknown keys: "
                           + ", ".join(sorted(unknown)))
        service = rule.get("service")
        if not service:
            raise ApiError(400, 1056, f"Validation failed: {where} is missing a service")
        if not isinstance(service, str) or not SERVICE_RE.match(service):
            raise ApiError(400, 1056, f"Validation failed: {where} has an invalid service "
                           f"{service!r}: use http(s)://host[:port] or http_status:NNN")
        origin_path = re.match(r"^(?:https?|wss?)://[^/?#]*([^?#]*)", service)
        if origin_path and origin_path.group(1) not in ("", "/"):
            raise ApiError(400, 1056, f"Validation failed: {where}: {service} is an invalid "
                           "address, ingress rules don't support proxying to a different path "
                           "on the origin service. The path will be the same as the eyeball "
                           "request's path")
        hostname = rule.get("hostname")
        if hostname not in (None, "") and (not isinstance(hostname, str) or not HOSTNAME_RE.match(hostname)):
            raise ApiError(400, 1056, f"Validation failed: {where} has an invalid hostname "
                           f"{hostname!r}")
        _validate_origin_request(rule.get("originRequest"), f"{where} originRequest")
        last = index == len(ingress) - 1
        if last and (rule.get("hostname") or rule.get("path")):
            raise ApiError(400, 1056, "Validation failed: the last ingress rule must match all "
                           "URLs (i.e. it should not have a hostname or path filter)")
        if not last and not rule.get("hostname"):
            raise ApiError(400, 1056, f"Validation failed: {where} has no hostname; only the "
                           "last ingress rule may be a catch-all without hostname")


def _validate_origin_request(origin_request, where):
    if origin_request is None:
        return
    if not isinstance(origin_request, dict):
        raise ApiError(400, 1001, f"Invalid request: {where} must be an object")
    for key, value in origin_request.items():
        if key not in ORIGIN_REQUEST_KEYS:
            raise ApiError(400, 1001, f"Invalid request: {where} has unknown key {key!r} "
                           "(originRequest keys are camelCase, e.g. noTLSVerify)")
        types = ORIGIN_REQUEST_KEYS[key]
        if isinstance(value, bool) and bool not in types:
            raise ApiError(400, 1001, f"Invalid request: {where}.{key} has the wrong type")
        if not isinstance(value, types):
            raise ApiError(400, 1001, f"Invalid request: {where}.{key} has the wrong type")


def normalize_config(config):
    """Return the configuration as Cloudflare echoes it (every rule gets originRequest {})."""
    result = copy.deepcopy(config)
    for rule in result.get("ingress", []) or []:
        rule.setdefault("originRequest", {})
    return result


class Store:
    """All emulated Cloudflare state, guarded by one re-entrant lock."""

    def __init__(self, seed=None, state_file=None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.seed = seed_module.with_defaults(seed)
        self._config_listeners = []
        self._connection_listeners = []
        self.live = {}  # tunnel_id -> {client_id: client dict with "conns": {conn_id: conn}}
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as handle:
                self._load_state(json.load(handle))
        else:
            self.load_seed(self.seed)

    # ------------------------------------------------------------------ listeners
    def on_config_change(self, callback):
        """Register ``callback(tunnel_id)`` called after a tunnel's configuration changes."""
        self._config_listeners.append(callback)

    def on_connections_removed(self, callback):
        """Register ``callback(tunnel_id, client_ids)`` called when connections are cleaned up."""
        self._connection_listeners.append(callback)

    # ------------------------------------------------------------------ seed / persistence
    def load_seed(self, seed):
        """Replace all state with the content of *seed* (see :mod:`.seed`)."""
        with self.lock:
            self.accounts = {a["id"]: {"id": a["id"], "name": a.get("name", a["id"])}
                             for a in seed.get("accounts", [])}
            self.zones = {}
            for zone in seed.get("zones", []):
                account = zone.get("account") or next(iter(self.accounts))
                created = now_iso()
                self.zones[zone["id"]] = {
                    "id": zone["id"], "name": zone["name"].lower().rstrip("."),
                    "status": zone.get("status", "active"), "paused": False, "type": "full",
                    "account": {"id": account,
                                "name": self.accounts.get(account, {}).get("name", account)},
                    "created_on": created, "modified_on": created,
                    "activated_on": created if zone.get("status", "active") == "active" else None,
                    "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                }
            self.tokens = {}
            for token in seed.get("tokens", []):
                entry = {"value": token["value"], "id": token.get("id") or new_hex_id(),
                         "status": token.get("status", "active"),
                         "owner": token.get("owner", "user"),
                         "permissions": list(token.get("permissions", [])),
                         "accounts": token.get("accounts", "*"),
                         "zones": token.get("zones", "*")}
                if entry["owner"] != "user" and entry["accounts"] == "*":
                    entry["accounts"] = [entry["owner"]]
                self.tokens[entry["value"]] = entry
            self.tunnels = {}
            self.dns_records = {}
            self.r2_buckets = {}
            self.live = {}
            default_account = next(iter(self.accounts), seed_module.ACCOUNT_ID)
            for spec in seed.get("tunnels", []):
                self._seed_tunnel(spec, default_account)
            bulk = seed.get("bulk_tunnels")
            if bulk:
                every = bulk.get("deleted_every", 0)
                for index in range(bulk.get("count", 0)):
                    self._seed_tunnel({
                        "name": f"{bulk.get('prefix', 'bulk-')}{index:05d}",
                        "account": bulk.get("account", default_account),
                        "config_src": bulk.get("config_src", "cloudflare"),
                        "deleted": bool(every) and index % every == 0,
                    }, default_account)
            for spec in seed.get("dns_records", []):
                zone = self.zone_by_ref(spec["zone"])
                body = {k: v for k, v in spec.items() if k != "zone"}
                self.create_dns_record(zone["id"], body, persist=False)
            for spec in seed.get("r2_buckets", []):
                self._seed_r2_bucket(spec, default_account)
            self.save()

    def _seed_tunnel(self, spec, default_account):
        tunnel = self._new_tunnel(spec.get("account", default_account), spec["name"],
                                  spec.get("config_src", "cloudflare"), spec.get("secret"),
                                  spec.get("id"))
        if spec.get("config") is not None:
            validate_tunnel_config(spec["config"])
            tunnel["config"] = normalize_config(spec["config"])
            tunnel["config_version"] = 1
        if spec.get("deleted"):
            tunnel["deleted_at"] = now_iso()
        self.tunnels[tunnel["id"]] = tunnel

    def _load_state(self, state):
        self.accounts = state["accounts"]
        self.zones = state["zones"]
        self.tokens = state["tokens"]
        self.tunnels = state["tunnels"]
        self.dns_records = state["dns_records"]
        self.r2_buckets = state.get("r2_buckets", {})
        self.live = {}

    def snapshot(self):
        """A JSON-serialisable deep copy of the persistent state plus live connections."""
        with self.lock:
            return copy.deepcopy({
                "accounts": self.accounts, "zones": self.zones, "tokens": self.tokens,
                "tunnels": self.tunnels, "dns_records": self.dns_records,
                "r2_buckets": self.r2_buckets,
                "connections": {t: {c: dict(v, conns=list(v["conns"].values()))
                                    for c, v in clients.items()}
                                for t, clients in self.live.items()},
            })

    def save(self):
        """Write the state file atomically (mode 0600), if one is configured."""
        if not self.state_file:
            return
        with self.lock:
            state = {"accounts": self.accounts, "zones": self.zones, "tokens": self.tokens,
                     "tunnels": self.tunnels, "dns_records": self.dns_records}
            state["r2_buckets"] = self.r2_buckets
            directory = os.path.dirname(os.path.abspath(self.state_file))
            fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(state, handle, indent=1, sort_keys=True)
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.state_file)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    # ------------------------------------------------------------------ tokens
    def token(self, value):
        return self.tokens.get(value)

    # ------------------------------------------------------------------ zones
    def zone_by_ref(self, ref):
        """Find a zone by id or by name; raise KeyError if absent."""
        if ref in self.zones:
            return self.zones[ref]
        for zone in self.zones.values():
            if zone["name"] == str(ref).lower().rstrip("."):
                return zone
        raise KeyError(ref)

    def zone_for_hostname(self, hostname):
        """The longest zone whose name equals or is a suffix of *hostname*, or None."""
        hostname = hostname.lower().rstrip(".")
        best = None
        for zone in self.zones.values():
            name = zone["name"]
            if hostname == name or hostname.endswith("." + name):
                if best is None or len(name) > len(best["name"]):
                    best = zone
        return best

    # ------------------------------------------------------------------ tunnels
    def _new_tunnel(self, account_id, name, config_src, secret=None, tunnel_id=None):
        if secret is None:
            secret = base64.b64encode(secrets.token_bytes(32)).decode()
        return {
            "id": tunnel_id or str(uuid.uuid4()),
            "account_tag": account_id,
            "name": name,
            "created_at": now_iso(),
            "deleted_at": None,
            "config_src": config_src,
            "remote_config": config_src == "cloudflare",
            "tun_type": "cfd_tunnel",
            "metadata": {},
            "secret": secret,
            "config": None,
            "config_version": 0,
            "config_created_at": None,
            "conns_active_at": None,
            "conns_inactive_at": None,
        }

    def tunnel_status(self, tunnel):
        if self.live.get(tunnel["id"]):
            return "healthy"
        return "down" if tunnel["conns_active_at"] else "inactive"

    def tunnel_connections_flat(self, tunnel_id):
        result = []
        for client in self.live.get(tunnel_id, {}).values():
            result.extend(copy.deepcopy(list(client["conns"].values())))
        return result

    def public_tunnel(self, tunnel):
        """The tunnel object as the API shows it (no secret)."""
        with self.lock:
            return {
                "id": tunnel["id"], "account_tag": tunnel["account_tag"],
                "created_at": tunnel["created_at"], "deleted_at": tunnel["deleted_at"],
                "name": tunnel["name"], "connections": self.tunnel_connections_flat(tunnel["id"]),
                "conns_active_at": tunnel["conns_active_at"],
                "conns_inactive_at": tunnel["conns_inactive_at"],
                "tun_type": tunnel["tun_type"], "metadata": copy.deepcopy(tunnel["metadata"]),
                "status": self.tunnel_status(tunnel),
                "remote_config": tunnel["remote_config"], "config_src": tunnel["config_src"],
            }

    def get_tunnel(self, account_id, tunnel_id, allow_deleted=True):
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is None or tunnel["account_tag"] != account_id:
            raise ApiError(404, 1003, "Tunnel not found")
        if tunnel["deleted_at"] and not allow_deleted:
            raise ApiError(404, 1003, "Tunnel not found (it has been deleted)")
        return tunnel

    def list_tunnels(self, account_id, name=None, is_deleted=None, uuid_filter=None,
                     include_prefix=None, exclude_prefix=None, status=None):
        with self.lock:
            result = []
            for tunnel in sorted(self.tunnels.values(), key=lambda t: (t["created_at"], t["id"])):
                if tunnel["account_tag"] != account_id:
                    continue
                if name is not None and tunnel["name"] != name:
                    continue
                if is_deleted is True and not tunnel["deleted_at"]:
                    continue
                if is_deleted is False and tunnel["deleted_at"]:
                    continue
                if uuid_filter and tunnel["id"] != uuid_filter:
                    continue
                if include_prefix and not tunnel["name"].startswith(include_prefix):
                    continue
                if exclude_prefix and tunnel["name"].startswith(exclude_prefix):
                    continue
                if status and self.tunnel_status(tunnel) != status:
                    continue
                result.append(self.public_tunnel(tunnel))
            return result

    def create_tunnel(self, account_id, body):
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, 1001, "Invalid request: 'name' is required")
        config_src = body.get("config_src", "local")
        if config_src not in ("local", "cloudflare"):
            raise ApiError(400, 1001, "Invalid request: config_src must be 'local' or "
                           "'cloudflare'")
        secret = body.get("tunnel_secret")
        if secret is not None and not b64_secret_ok(secret):
            raise ApiError(400, 1001, "Invalid request: tunnel_secret must be at least 32 "
                           "bytes encoded as base64")
        with self.lock:
            for tunnel in self.tunnels.values():
                if (tunnel["account_tag"] == account_id and tunnel["name"] == name
                        and not tunnel["deleted_at"]):
                    raise ApiError(409, 1013, "You already have a tunnel with this name")
            tunnel = self._new_tunnel(account_id, name, config_src, secret)
            self.tunnels[tunnel["id"]] = tunnel
            self.save()
            result = self.public_tunnel(tunnel)
            result["token"] = tunnel_token(account_id, tunnel["id"], tunnel["secret"])
            result["credentials_file"] = {"AccountTag": account_id, "TunnelID": tunnel["id"],
                                          "TunnelName": name, "TunnelSecret": tunnel["secret"]}
            return result

    def update_tunnel(self, account_id, tunnel_id, body):
        with self.lock:
            tunnel = self.get_tunnel(account_id, tunnel_id, allow_deleted=False)
            if "name" in body:
                for other in self.tunnels.values():
                    if (other is not tunnel and other["account_tag"] == account_id
                            and other["name"] == body["name"] and not other["deleted_at"]):
                        raise ApiError(409, 1013, "You already have a tunnel with this name")
                tunnel["name"] = body["name"]
            if "tunnel_secret" in body:
                if not b64_secret_ok(body["tunnel_secret"]):
                    raise ApiError(400, 1001, "Invalid request: tunnel_secret must be at "
                                   "least 32 bytes encoded as base64")
                tunnel["secret"] = body["tunnel_secret"]
            self.save()
            return self.public_tunnel(tunnel)

    def delete_tunnel(self, account_id, tunnel_id):
        with self.lock:
            tunnel = self.get_tunnel(account_id, tunnel_id, allow_deleted=False)
            if self.live.get(tunnel_id):
                raise ApiError(400, 1022, "Cannot delete tunnel because it has active "
                               "connections. Clean up the connections first.")
            tunnel["deleted_at"] = now_iso()
            self.save()
            return self.public_tunnel(tunnel)

    def get_token(self, account_id, tunnel_id):
        with self.lock:
            tunnel = self.get_tunnel(account_id, tunnel_id, allow_deleted=False)
            return tunnel_token(account_id, tunnel_id, tunnel["secret"])

    def get_configuration(self, account_id, tunnel_id):
        with self.lock:
            tunnel = self.get_tunnel(account_id, tunnel_id, allow_deleted=False)
            return self._config_result(tunnel)

    @staticmethod
    def _config_result(tunnel):
        return {"tunnel_id": tunnel["id"], "version": tunnel["config_version"],
                "config": copy.deepcopy(tunnel["config"]), "source": tunnel["config_src"],
                "created_at": tunnel["config_created_at"] or tunnel["created_at"]}

    def put_configuration(self, account_id, tunnel_id, body):
        if not isinstance(body, dict) or "config" not in body:
            raise ApiError(400, 1001, "Invalid request: body must be {\"config\": {...}}")
        validate_tunnel_config(body["config"])
        with self.lock:
            tunnel = self.get_tunnel(account_id, tunnel_id, allow_deleted=False)
            if tunnel["config_src"] != "cloudflare":
                raise ApiError(400, 1001, "This tunnel is locally managed (config_src: local); "
                               "its configuration cannot be managed through the API")
            tunnel["config"] = normalize_config(body["config"])
            tunnel["config_version"] += 1
            tunnel["config_created_at"] = now_iso()
            self.save()
            result = self._config_result(tunnel)
        for callback in list(self._config_listeners):
            callback(tunnel_id)
        return result

    def list_connections(self, account_id, tunnel_id):
        with self.lock:
            self.get_tunnel(account_id, tunnel_id)
            result = []
            for client in self.live.get(tunnel_id, {}).values():
                entry = {k: copy.deepcopy(v) for k, v in client.items() if k != "conns"}
                entry["conns"] = copy.deepcopy(list(client["conns"].values()))
                result.append(entry)
            return result

    def cleanup_connections(self, account_id, tunnel_id, client_id=None):
        with self.lock:
            self.get_tunnel(account_id, tunnel_id)
            clients = self.live.get(tunnel_id, {})
            removed = [c for c in clients if client_id in (None, c)]
            for cid in removed:
                clients.pop(cid, None)
            self._after_disconnect(tunnel_id)
        for callback in list(self._connection_listeners):
            callback(tunnel_id, removed)
        return {}

    # live connections (called by the connector server)
    def add_connection(self, tunnel_id, client_info, conn):
        with self.lock:
            clients = self.live.setdefault(tunnel_id, {})
            client = clients.get(client_info["id"])
            if client is None:
                client = dict(client_info, conns={})
                clients[client_info["id"]] = client
            client["conns"][conn["id"]] = conn
            tunnel = self.tunnels[tunnel_id]
            if not tunnel["conns_active_at"]:
                tunnel["conns_active_at"] = conn["opened_at"]
            tunnel["conns_inactive_at"] = None
            self.save()

    def remove_connection(self, tunnel_id, client_id, conn_id):
        with self.lock:
            client = self.live.get(tunnel_id, {}).get(client_id)
            if client is not None:
                client["conns"].pop(conn_id, None)
                if not client["conns"]:
                    self.live[tunnel_id].pop(client_id, None)
            self._after_disconnect(tunnel_id)

    def _after_disconnect(self, tunnel_id):
        if not self.live.get(tunnel_id):
            self.live.pop(tunnel_id, None)
            tunnel = self.tunnels.get(tunnel_id)
            if tunnel and tunnel["conns_active_at"] and not tunnel["conns_inactive_at"]:
                tunnel["conns_inactive_at"] = now_iso()
                self.save()

    def is_connected(self, tunnel_id, client_id, conn_id):
        with self.lock:
            return conn_id in self.live.get(tunnel_id, {}).get(client_id, {}).get("conns", {})

    # ------------------------------------------------------------------ DNS
    def list_dns_records(self, zone_id):
        with self.lock:
            return [copy.deepcopy(r) for r in self.dns_records.values()
                    if r["zone_id"] == zone_id]

    def get_dns_record(self, zone_id, record_id):
        record = self.dns_records.get(record_id)
        if record is None or record["zone_id"] != zone_id:
            raise ApiError(404, 81044, "Record does not exist.")
        return record

    def _normalize_record(self, zone, body, existing=None):
        merged = dict(existing or {})
        merged.update(body)
        rtype = str(merged.get("type", "")).upper()
        if rtype not in DNS_TYPES:
            raise ApiError(400, 9000 if not rtype else 1004,
                           "DNS record type is invalid." if rtype else "DNS record type is "
                           "required.")
        name = str(merged.get("name") or "").lower().rstrip(".")
        if not name:
            raise ApiError(400, 9005, "DNS name is invalid.")
        if name == "@":
            name = zone["name"]
        elif name != zone["name"] and not name.endswith("." + zone["name"]):
            name = f"{name}.{zone['name']}"
        content = merged.get("content")
        if content in (None, ""):
            raise ApiError(400, 9007, "Content for the record is invalid.")
        content = str(content)
        if rtype == "CNAME":
            content = content.lower().rstrip(".")
            if content == name:
                raise ApiError(400, 9007, "Content for CNAME record is invalid: it must not "
                               "match the record's name.")
        proxied = merged.get("proxied", False)
        if not isinstance(proxied, bool):
            raise ApiError(400, 9003, "Invalid 'proxied' value, must be a boolean")
        if proxied and rtype not in PROXIABLE_TYPES:
            raise ApiError(400, 9004, "This record type cannot be proxied.")
        ttl = merged.get("ttl", 1)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not (
                ttl == 1 or 60 <= ttl <= 86400):
            raise ApiError(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, "
                           "or 1 for Automatic.")
        if proxied:
            ttl = 1
        stamp = now_iso()
        record = {
            "id": (existing or {}).get("id") or new_hex_id(),
            "zone_id": zone["id"], "zone_name": zone["name"], "name": name, "type": rtype,
            "content": content, "proxiable": rtype in PROXIABLE_TYPES, "proxied": proxied,
            "ttl": ttl, "locked": False, "settings": {},
            "meta": {"auto_added": False, "managed_by_apps": False,
                     "managed_by_argo_tunnel": False, "source": "primary"},
            "comment": merged.get("comment"), "tags": list(merged.get("tags") or []),
            "created_on": (existing or {}).get("created_on") or stamp, "modified_on": stamp,
        }
        if "priority" in merged:
            record["priority"] = merged["priority"]
        return record

    def _check_conflicts(self, record):
        for other in self.dns_records.values():
            if other["zone_id"] != record["zone_id"] or other["id"] == record["id"]:
                continue
            if other["name"] != record["name"]:
                continue
            if other["type"] == record["type"] and other["content"] == record["content"]:
                raise ApiError(400, 81057, "Record already exists.")
            if record["type"] == "CNAME" and other["type"] in ("A", "AAAA", "CNAME"):
                raise ApiError(400, 81053, "An A, AAAA, or CNAME record with that host "
                               "already exists.")
            if other["type"] == "CNAME":
                raise ApiError(400, 81054, "A CNAME record with that host already exists.")

    def create_dns_record(self, zone_id, body, persist=True):
        with self.lock:
            zone = self.zones[zone_id]
            if not isinstance(body, dict):
                raise ApiError(400, 1001, "Invalid request: body must be a DNS record object")
            record = self._normalize_record(zone, body)
            self._check_conflicts(record)
            self.dns_records[record["id"]] = record
            if persist:
                self.save()
            return copy.deepcopy(record)

    def update_dns_record(self, zone_id, record_id, body, patch, persist=True):
        with self.lock:
            zone = self.zones[zone_id]
            existing = self.get_dns_record(zone_id, record_id)
            if not isinstance(body, dict):
                raise ApiError(400, 1001, "Invalid request: body must be a DNS record object")
            base = existing if patch else {"id": existing["id"],
                                           "created_on": existing["created_on"]}
            record = self._normalize_record(zone, body, base)
            self._check_conflicts(record)
            self.dns_records[record_id] = record
            if persist:
                self.save()
            return copy.deepcopy(record)

    def delete_dns_record(self, zone_id, record_id):
        with self.lock:
            self.get_dns_record(zone_id, record_id)
            del self.dns_records[record_id]
            self.save()
            return {"id": record_id}

    def batch_dns_records(self, zone_id, body):
        """POST /zones/{zone_id}/dns_records/batch: deletes, patches, puts, posts in that
        order, in one transaction. Like Cloudflare's single database transaction, the batch
        is applied whole or not at all: the first refused operation restores every record."""
        if not isinstance(body, dict):
            raise ApiError(400, 1001, "Invalid request: body must be an object")
        ops = {key: body.get(key) or [] for key in ("deletes", "patches", "puts", "posts")}
        if any(not isinstance(v, list) for v in ops.values()) or not any(ops.values()):
            raise ApiError(400, 1001, "Invalid request: give deletes, patches, puts or posts "
                           "as lists")
        with self.lock:
            before = copy.deepcopy(self.dns_records)
            result = {key: [] for key in ops}
            try:
                for item in ops["deletes"]:
                    record_id = (item or {}).get("id") if isinstance(item, dict) else None
                    result["deletes"].append(copy.deepcopy(self.get_dns_record(zone_id,
                                                                               record_id)))
                    del self.dns_records[record_id]
                for key, patch in (("patches", True), ("puts", False)):
                    for item in ops[key]:
                        if not isinstance(item, dict) or not item.get("id"):
                            raise ApiError(400, 1001, f"Invalid request: every item of {key} "
                                           "needs an id")
                        fields = {k: v for k, v in item.items() if k != "id"}
                        result[key].append(self.update_dns_record(zone_id, item["id"], fields,
                                                                  patch=patch, persist=False))
                for item in ops["posts"]:
                    result["posts"].append(self.create_dns_record(zone_id, item, persist=False))
            except ApiError:
                self.dns_records = before
                raise
            self.save()
            return result

    # ------------------------------------------------------------------ edge routing
    def route_for_hostname(self, hostname):
        """Resolve a visitor hostname like the edge does.

        Returns ``(zone, record, tunnel)``; each may be None when the lookup stops there.
        Only a proxied CNAME to ``<tunnel id>.cfargotunnel.com`` routes into a tunnel.
        """
        with self.lock:
            zone = self.zone_for_hostname(hostname)
            if zone is None:
                return None, None, None
            hostname = hostname.lower().rstrip(".")
            record = None
            for candidate in self.dns_records.values():
                if candidate["zone_id"] == zone["id"] and candidate["name"] == hostname:
                    record = candidate
                    if candidate["type"] == "CNAME":
                        break
            if record is None or record["type"] != "CNAME" or not record["proxied"]:
                return zone, copy.deepcopy(record), None
            target = record["content"]
            if not target.endswith("." + TUNNEL_DOMAIN):
                return zone, copy.deepcopy(record), None
            tunnel = self.tunnels.get(target[: -len(TUNNEL_DOMAIN) - 1])
            if tunnel is None or tunnel["deleted_at"]:
                return zone, copy.deepcopy(record), None
            if tunnel["account_tag"] != zone["account"]["id"]:
                return zone, copy.deepcopy(record), None
            return zone, copy.deepcopy(record), copy.deepcopy(tunnel)

    def tunnel_for_connector(self, account_id, tunnel_id):
        """The stored tunnel (with secret) for a connector registration, or None."""
        with self.lock:
            tunnel = self.tunnels.get(tunnel_id)
            if tunnel is None or tunnel["account_tag"] != account_id:
                return None
            return copy.deepcopy(tunnel)

    # ------------------------------------------------------------------ R2 buckets
    # Shapes follow Cloudflare's published API (cloudflare-python, generated from the
    # OpenAPI schema: types/r2/bucket.py, types/r2/bucket_create_params.py,
    # types/r2/buckets/domains/custom_*.py) and the error codes R2 documents
    # (developers.cloudflare.com/r2/api/error-codes: 10005, 10006, 10008) or that the API
    # was seen answering (10004 "The bucket you tried to create already exists, and you own
    # it."; 404/10006 from the custom domain endpoints of a missing bucket). Codes for the
    # custom domain errors are not documented; the emulator's choices are in README.md.

    def _seed_r2_bucket(self, spec, default_account):
        account_id = spec.get("account", default_account)
        jurisdiction = spec.get("jurisdiction", "default")
        bucket = self._new_r2_bucket(account_id, jurisdiction, spec["name"],
                                     spec.get("location", "enam"),
                                     spec.get("storage_class", "Standard"))
        bucket["object_count"] = int(spec.get("object_count", 0))
        for domain in spec.get("domains", []):
            zone = self.zone_by_ref(domain["zone"])
            bucket["domains"][domain["domain"]] = self._r2_domain_entry(
                domain["domain"], zone, domain.get("enabled", True),
                domain.get("min_tls", "1.0"))
        self.r2_buckets[r2_key(account_id, jurisdiction, spec["name"])] = bucket

    @staticmethod
    def _new_r2_bucket(account_id, jurisdiction, name, location, storage_class):
        return {"name": name, "account": account_id, "jurisdiction": jurisdiction,
                "location": location, "storage_class": storage_class,
                "creation_date": now_iso(), "object_count": 0, "domains": {}}

    @staticmethod
    def public_r2_bucket(bucket):
        return {"name": bucket["name"], "creation_date": bucket["creation_date"],
                "location": bucket["location"], "storage_class": bucket["storage_class"],
                "jurisdiction": bucket["jurisdiction"]}

    def get_r2_bucket(self, account_id, jurisdiction, name):
        bucket = self.r2_buckets.get(r2_key(account_id, jurisdiction, name))
        if bucket is None:
            raise ApiError(404, R2_NO_SUCH_BUCKET, "The specified bucket does not exist.")
        return bucket

    def list_r2_buckets(self, account_id, jurisdiction, name_contains=None, start_after=None):
        with self.lock:
            found = [b for b in self.r2_buckets.values()
                     if b["account"] == account_id and b["jurisdiction"] == jurisdiction
                     and (not name_contains or name_contains in b["name"])
                     and (not start_after or b["name"] > start_after)]
            return [self.public_r2_bucket(b) for b in sorted(found, key=lambda b: b["name"])]

    def create_r2_bucket(self, account_id, jurisdiction, body):
        if not isinstance(body, dict):
            raise ApiError(400, 1001, "Invalid request: body must be an object")
        name = body.get("name")
        if not isinstance(name, str) or not R2_BUCKET_NAME_RE.match(name):
            raise ApiError(400, R2_INVALID_BUCKET_NAME, "The specified bucket name is not "
                           "valid.")
        hint = body.get("locationHint")
        if hint is not None and str(hint).lower() not in R2_LOCATIONS:
            raise ApiError(400, 1001, f"Invalid request: locationHint must be one of "
                           f"{', '.join(R2_LOCATIONS)}")
        storage_class = body.get("storageClass", "Standard")
        if storage_class not in R2_STORAGE_CLASSES:
            raise ApiError(400, 1001, "Invalid request: storageClass must be Standard or "
                           "InfrequentAccess")
        with self.lock:
            key = r2_key(account_id, jurisdiction, name)
            if key in self.r2_buckets:
                raise ApiError(409, R2_BUCKET_EXISTS, "The bucket you tried to create already "
                               "exists, and you own it.")
            bucket = self._new_r2_bucket(account_id, jurisdiction, name,
                                         str(hint).lower() if hint else "enam", storage_class)
            self.r2_buckets[key] = bucket
            self.save()
            return self.public_r2_bucket(bucket)

    def delete_r2_bucket(self, account_id, jurisdiction, name):
        with self.lock:
            bucket = self.get_r2_bucket(account_id, jurisdiction, name)
            if bucket["object_count"]:
                raise ApiError(409, R2_BUCKET_NOT_EMPTY, "The bucket you tried to delete is "
                               "not empty.")
            del self.r2_buckets[r2_key(account_id, jurisdiction, name)]
            self.save()
            return {}

    @staticmethod
    def _r2_domain_entry(domain, zone, enabled, min_tls):
        return {"domain": domain, "enabled": enabled, "minTLS": min_tls,
                "zoneId": zone["id"], "zoneName": zone["name"],
                "status": {"ownership": "active", "ssl": "active"}}

    def list_r2_domains(self, account_id, jurisdiction, name):
        with self.lock:
            bucket = self.get_r2_bucket(account_id, jurisdiction, name)
            return [copy.deepcopy(d) for _k, d in sorted(bucket["domains"].items())]

    def get_r2_domain(self, account_id, jurisdiction, name, domain):
        with self.lock:
            bucket = self.get_r2_bucket(account_id, jurisdiction, name)
            entry = bucket["domains"].get(str(domain).lower())
            if entry is None:
                raise ApiError(404, R2_NO_SUCH_DOMAIN, "The custom domain does not exist on "
                               "this bucket.")
            return entry

    def create_r2_domain(self, account_id, jurisdiction, name, body, zone):
        """Connect ``body["domain"]`` (in *zone*, already checked by the API) to the bucket."""
        domain = str(body.get("domain") or "").lower().rstrip(".")
        enabled = body.get("enabled", True)
        min_tls = body.get("minTLS", "1.0")
        _check_r2_domain_settings(enabled, min_tls)
        if not domain or (domain != zone["name"] and not domain.endswith("." + zone["name"])):
            raise ApiError(400, 1001, f"Invalid request: domain {domain!r} is not in zone "
                           f"{zone['name']}")
        with self.lock:
            bucket = self.get_r2_bucket(account_id, jurisdiction, name)
            for other in self.r2_buckets.values():
                if domain in other["domains"]:
                    where = "this bucket" if other is bucket else "another bucket"
                    raise ApiError(409, R2_DOMAIN_IN_USE, f"The custom domain {domain} is "
                                   f"already connected to {where}.")
            entry = self._r2_domain_entry(domain, zone, enabled, min_tls)
            bucket["domains"][domain] = entry
            self.save()
            return {"domain": domain, "enabled": enabled, "minTLS": min_tls}

    def update_r2_domain(self, account_id, jurisdiction, name, domain, body):
        if not isinstance(body, dict):
            raise ApiError(400, 1001, "Invalid request: body must be an object")
        with self.lock:
            entry = self.get_r2_domain(account_id, jurisdiction, name, domain)
            enabled = body.get("enabled", entry["enabled"])
            min_tls = body.get("minTLS", entry["minTLS"])
            _check_r2_domain_settings(enabled, min_tls)
            entry["enabled"], entry["minTLS"] = enabled, min_tls
            self.save()
            return {"domain": entry["domain"], "enabled": enabled, "minTLS": min_tls}

    def delete_r2_domain(self, account_id, jurisdiction, name, domain):
        with self.lock:
            entry = self.get_r2_domain(account_id, jurisdiction, name, domain)
            bucket = self.get_r2_bucket(account_id, jurisdiction, name)
            del bucket["domains"][entry["domain"]]
            self.save()
            return {"domain": entry["domain"]}


R2_BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
R2_LOCATIONS = ("apac", "eeur", "enam", "weur", "wnam", "oc")
R2_STORAGE_CLASSES = ("Standard", "InfrequentAccess")
R2_JURISDICTIONS = ("default", "eu", "fedramp", "us")
R2_MIN_TLS = ("1.0", "1.1", "1.2", "1.3")
R2_BUCKET_EXISTS = 10004
R2_INVALID_BUCKET_NAME = 10005
R2_NO_SUCH_BUCKET = 10006
R2_BUCKET_NOT_EMPTY = 10008
# Not documented by Cloudflare; chosen by the emulator (see README.md, "Choices").
R2_DOMAIN_IN_USE = 10090
R2_NO_SUCH_DOMAIN = 10091


def r2_key(account_id, jurisdiction, name):
    """Buckets are unique per account and jurisdiction."""
    return f"{account_id}:{jurisdiction}:{name}"


def _check_r2_domain_settings(enabled, min_tls):
    if not isinstance(enabled, bool):
        raise ApiError(400, 1001, "Invalid request: enabled must be a boolean")
    if min_tls not in R2_MIN_TLS:
        raise ApiError(400, 1001, "Invalid request: minTLS must be one of "
                       + ", ".join(R2_MIN_TLS))
