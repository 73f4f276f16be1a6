"""HTTP front of the Cloudflare v4 API emulator (a TEST STAND-IN for Cloudflare, not Cloudflare).

Serves ``/client/v4/...`` with the v4 envelope (``success``, ``errors``, ``messages``,
``result``, ``result_info``), Bearer-token authentication with permissions, pagination,
fault injection and a request log.  Test control lives under ``/client/v4/__emulator__/``
and is never counted in the request log.

Error answers chosen after Cloudflare's documented/observed behaviour (see README.md):

* no ``Authorization`` header: 400, code 9106; malformed header: 400, code 6003 (chain 6111)
* unknown, disabled or expired token: 403, code 10000 "Authentication error"
  (``/user/tokens/verify`` and ``/accounts/{id}/tokens/verify``: 401, code 1000
  "Invalid API Token"; an account-owned token at the user endpoint gets the same)
* token valid but without the permission for the endpoint: 403, code 10000
* account or zone outside the token's scope: 403, code 9109
  "Unauthorized to access requested resource"
* rate limit (injected): 429, code 971, with a ``Retry-After`` header (seconds)
* unknown route, or an account id that is not 32 hex characters: 404, code 7003
  "Could not route to ..., perhaps your object identifier is invalid?"
* a DNS record identical to an existing one: 400, code 81057 "Record already exists."
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .store import R2_JURISDICTIONS, ApiError

API_BASE = "/client/v4"
# The HTTP methods that change Cloudflare's state: a request in the emulator's log with one of
# them is a write (token verification and every read are GETs).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTROL_PREFIX = API_BASE + "/__emulator__"

TUNNEL_READ = ("account:cloudflare_tunnel:read", "account:cloudflare_tunnel:edit")
TUNNEL_EDIT = ("account:cloudflare_tunnel:edit",)
ZONE_READ = ("zone:zone:read",)
DNS_READ = ("zone:dns:read", "zone:dns:edit")
DNS_EDIT = ("zone:dns:edit",)
R2_READ = ("account:workers_r2_storage:read", "account:workers_r2_storage:edit")
R2_EDIT = ("account:workers_r2_storage:edit",)

# per_page rules from the published schema: (default, minimum, maximum)
TUNNEL_PAGING = (20, 1, 1000)
ZONE_PAGING = (20, 5, 50)
DNS_PAGING = (100, 1, 5000000)

_ID = r"(?P<{}>[^/]+)"

# The API's paths as one tree: under each path, per method, the handler (``h_<name>``) and
# the token permissions it needs (one of them), checked against the path's account or zone
# before the handler runs (None: the handler decides); the paths below it are the keys that
# start with "/". R2 (object storage): buckets and their public custom domains, paths and
# bodies as in Cloudflare's API reference.
RESOURCES = {
    "/user/tokens/verify": {"GET": ("verify_user_token", None)},
    "/accounts/{account_id}": {
        "/tokens/verify": {"GET": ("verify_account_token", None)},
        "/cfd_tunnel": {
            "GET": ("list_tunnels", TUNNEL_READ), "POST": ("create_tunnel", TUNNEL_EDIT),
            "/{tunnel_id}": {
                "GET": ("get_tunnel", TUNNEL_READ), "PATCH": ("update_tunnel", TUNNEL_EDIT),
                "DELETE": ("delete_tunnel", TUNNEL_EDIT),
                "/token": {"GET": ("get_tunnel_token", TUNNEL_EDIT)},
                "/configurations": {"GET": ("get_config", TUNNEL_READ),
                                    "PUT": ("put_config", TUNNEL_EDIT)},
                "/connections": {"GET": ("list_connections", TUNNEL_READ),
                                 "DELETE": ("cleanup_connections", TUNNEL_EDIT)},
                "/connectors/{connector_id}": {"GET": ("get_connector", TUNNEL_READ)},
            },
        },
        "/r2/buckets": {
            "GET": ("list_r2_buckets", R2_READ), "POST": ("create_r2_bucket", R2_EDIT),
            "/{bucket_name}": {
                "GET": ("get_r2_bucket", R2_READ), "DELETE": ("delete_r2_bucket", R2_EDIT),
                "/domains/custom": {
                    "GET": ("list_r2_domains", R2_READ), "POST": ("create_r2_domain", R2_EDIT),
                    "/{domain}": {"GET": ("get_r2_domain", R2_READ),
                                  "PUT": ("update_r2_domain", R2_EDIT),
                                  "DELETE": ("delete_r2_domain", R2_EDIT)},
                },
            },
        },
    },
    "/zones": {
        "GET": ("list_zones", None),
        "/{zone_id}": {
            "GET": ("get_zone", ZONE_READ),
            "/dns_records": {
                "GET": ("list_dns", DNS_READ), "POST": ("create_dns", DNS_EDIT),
                "/batch": {"POST": ("batch_dns", DNS_EDIT)},
                "/{record_id}": {"GET": ("get_dns", DNS_READ), "PUT": ("put_dns", DNS_EDIT),
                                 "PATCH": ("patch_dns", DNS_EDIT),
                                 "DELETE": ("delete_dns", DNS_EDIT)},
            },
        },
    },
}


def _routes(resources, prefix=""):
    """(method, path template, handler name, permissions) for every method in the tree."""
    for key, value in resources.items():
        if key.startswith("/"):
            yield from _routes(value, prefix + key)
        else:
            yield (key, prefix) + value


ROUTES = list(_routes(RESOURCES))
R2_BUCKET_PAGING = (20, 1, 1000)


def _compile(template):
    pattern = re.sub(r"\{(\w+)\}", lambda m: _ID.format(m.group(1)), template)
    return re.compile("^" + pattern + "/?$")


COMPILED_ROUTES = [(m, t, _compile(t), h, p) for m, t, h, p in ROUTES]


def route_template(path):
    """The documented path template for an API path (``/zones/{zone_id}``), or the path."""
    if path.startswith(API_BASE):
        path = path[len(API_BASE):]
    for _method, template, regex, _handler, _permissions in COMPILED_ROUTES:
        if regex.match(path):
            return template
    return path


class RequestLog:
    """Thread-safe list of the API requests the emulator answered."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def add(self, entry):
        with self._lock:
            self._entries.append(entry)

    def entries(self):
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self):
        with self._lock:
            self._entries.clear()


class Faults:
    """Injected faults: each applies to the next ``count`` matching API requests.

    A fault is a dict with ``count`` and any of ``status`` (e.g. 429, 502, 503),
    ``retry_after`` (seconds, for the Retry-After header), ``delay`` (seconds to wait
    before answering normally or with ``status``), ``close_connection`` (drop the TCP
    connection without an answer), ``lose_answer`` (carry the request out, then drop the
    connection: the write happened but the client never hears of it), ``html`` (answer a
    5xx with an HTML page instead of the JSON envelope, as Cloudflare's front does),
    ``code`` / ``message`` (the error in the envelope of a ``status`` answer), and filters
    ``method`` / ``path`` (substring of the path).
    """

    KEYS = {"status", "count", "retry_after", "delay", "close_connection", "lose_answer",
            "html", "method", "path", "code", "message"}

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def set(self, **fault):
        with self._lock:
            self._faults = []
        self.add(**fault)

    def add(self, **fault):
        unknown = set(fault) - self.KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        fault.setdefault("count", 1)
        if fault["count"] > 0:
            with self._lock:
                self._faults.append(dict(fault))

    def clear(self):
        with self._lock:
            self._faults = []

    def pending(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def take(self, method, path):
        with self._lock:
            for fault in self._faults:
                if fault.get("method") and fault["method"].upper() != method:
                    continue
                if fault.get("path") and fault["path"] not in path:
                    continue
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self._faults.remove(fault)
                return dict(fault)
        return None


def envelope(result=None, errors=None, messages=None, result_info=None):
    """The Cloudflare v4 response envelope."""
    body = {"success": not errors, "errors": errors or [], "messages": messages or [],
            "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def paginate(items, query, paging):
    """Slice *items* by ``page``/``per_page`` and build ``result_info``."""
    default, minimum, maximum = paging
    try:
        page = int(float(query.get("page", 1)))
        per_page = int(float(query.get("per_page", default)))
    except ValueError as exc:
        raise ApiError(400, 1001, "Invalid request: page and per_page must be numbers") from exc
    page = max(page, 1)
    per_page = min(max(per_page, minimum), maximum)
    total = len(items)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": total,
            "total_pages": (total + per_page - 1) // per_page if total else 0}
    return chunk, info


def _bool_param(value):
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ApiError(400, 1001, f"Invalid request: {value!r} is not a boolean")


def _match_filter(value, expression):
    """Zone name filters: ``contains:``, ``starts_with:``, ``ends_with:`` or exact."""
    value = value.lower()
    for prefix, test in (("contains:", lambda v, e: e in v),
                         ("starts_with:", lambda v, e: v.startswith(e)),
                         ("ends_with:", lambda v, e: v.endswith(e)),
                         ("equal:", lambda v, e: v == e)):
        if expression.startswith(prefix):
            return test(value, expression[len(prefix):].lower())
    return value == expression.lower().rstrip(".")


class ApiContext:
    """What the handlers need: the store, the log, the faults and a reset hook."""

    def __init__(self, store, log, faults, reset_callback=None):
        self.store = store
        self.log = log
        self.faults = faults
        self.reset_callback = reset_callback


class ApiHandler(BaseHTTPRequestHandler):
    """One API request.  ``server.context`` is an :class:`ApiContext`."""

    protocol_version = "HTTP/1.1"
    server_version = "cloudflare-emulator"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - silence default stderr logging
        pass

    # entry points
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # plumbing
    @property
    def ctx(self):
        return self.server.context

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return raw

    def _send(self, status, body, headers=None, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("CF-RAY", secrets.token_hex(8) + "-EMU")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        raw = self._read_body()
        if path.startswith(CONTROL_PREFIX):
            self._control(method, path[len(CONTROL_PREFIX):], raw)
            return
        entry = {"method": method, "path": path, "route": route_template(path),
                 "query": query, "status": None, "json": None, "time": time.time(),
                 "fault": None}
        try:
            entry["json"] = json.loads(raw) if raw else None
        except ValueError:
            entry["json"] = raw.decode("utf-8", "replace")
        fault = self.ctx.faults.take(method, path)
        if fault:
            entry["fault"] = {k: v for k, v in fault.items() if k != "count"}
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("close_connection"):
                entry["status"] = 0
                self.ctx.log.add(entry)
                self._hang_up()
                return
            if fault.get("status"):
                entry["status"] = fault["status"]
                self.ctx.log.add(entry)
                self._send_fault(fault)
                return
        status, body, headers = self._answer(method, path, query, raw, entry["json"])
        entry["status"] = status
        self.ctx.log.add(entry)
        if fault and fault.get("lose_answer"):
            self._hang_up()
            return
        self._send(status, body, headers)

    def _hang_up(self):
        """Close the connection without an answer (an injected network fault)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_fault(self, fault):
        status = fault["status"]
        headers = {}
        if status == 429:
            headers["Retry-After"] = str(fault.get("retry_after", 1))
            body = envelope(errors=[{"code": 971, "message": "Please wait and consider "
                                     "throttling your request speed"}])
        elif fault.get("html"):
            page = (f"<html><head><title>{status} Service unavailable</title></head><body>"
                    f"<h1>{status}</h1><p>cloudflare (emulator stand-in)</p></body></html>")
            self._send(status, page.encode(), headers, content_type="text/html")
            return
        else:
            body = envelope(errors=[{
                "code": fault.get("code", 10000 + status % 1000 if status < 600 else 10000),
                "message": fault.get("message", f"Service unavailable (injected {status} fault)")}])
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        self._send(status, body, headers)

    def _answer(self, method, path, query, raw, body):
        """Route and run one API call; return (status, envelope, headers)."""
        if not path.startswith(API_BASE):
            return 404, envelope(errors=[{"code": 7003, "message": f"Could not route to "
                                          f"{path}, perhaps your object identifier is "
                                          "invalid?"}]), {}
        sub = path[len(API_BASE):] or "/"
        match = handler = permissions = None
        path_matched = False
        for route_method, _template, regex, name, needs in COMPILED_ROUTES:
            found = regex.match(sub)
            if found:
                path_matched = True
                if route_method == method:
                    match, handler, permissions = found, name, needs
                    break
        try:
            if handler is None:
                if path_matched:
                    raise ApiError(405, 10405, f"Method {method} not allowed for this route")
                raise ApiError(404, 7003, f"Could not route to {sub}, perhaps your object "
                               "identifier is invalid?")
            if raw and not isinstance(body, (dict, list)):
                raise ApiError(400, 6007, "Malformed JSON in request body")
            token = self._authenticate(handler)
            ids = match.groupdict()
            if permissions is not None:
                self._require_scope(token, ids, permissions)
            result = getattr(self, "h_" + handler)(token, query, body or {}, **ids)
            status, payload = 200, result
            if isinstance(result, tuple):
                payload_result, info, messages = (result + (None,))[:3]
                payload = envelope(payload_result, result_info=info, messages=messages)
            else:
                payload = envelope(result)
            return status, payload, {}
        except ApiError as err:
            return err.status, envelope(errors=err.errors), err.headers

    # authentication and permissions
    def _authenticate(self, handler):
        header = self.headers.get("Authorization")
        if not header:
            raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization "
                           "headers")
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].strip():
            err = ApiError(400, 6003, "Invalid request headers")
            err.errors[0]["error_chain"] = [{"code": 6111, "message": "Invalid format for "
                                             "Authorization header"}]
            raise err
        token = self.ctx.store.token(parts[1].strip())
        verify = handler.startswith("verify_")
        if token is None:
            if verify:
                raise ApiError(401, 1000, "Invalid API Token")
            raise ApiError(403, 10000, "Authentication error")
        if token["status"] != "active" and not verify:
            raise ApiError(403, 10000, "Authentication error")
        return token

    def _require_account(self, token, account_id, permissions):
        store = self.ctx.store
        scope = token["accounts"]
        if not re.match(r"^[0-9a-f]{32}$", account_id):
            # Cloudflare routes only well-formed identifiers; a malformed one is not a
            # permission problem.
            raise ApiError(404, 7003, f"Could not route to /accounts/{account_id}, perhaps your "
                           "object identifier is invalid?")
        if account_id not in store.accounts or (scope != "*" and account_id not in scope):
            raise ApiError(403, 9109, "Unauthorized to access requested resource")
        if not any(p in token["permissions"] for p in permissions):
            raise ApiError(403, 10000, "Authentication error")

    def _require_scope(self, token, ids, permissions):
        """The token reaches the path's account (or zone) with one of *permissions*."""
        if "account_id" in ids:
            self._require_account(token, ids["account_id"], permissions)
        else:
            self._require_zone(token, ids["zone_id"], permissions)

    def _zone_in_scope(self, token, zone):
        accounts, zones = token["accounts"], token["zones"]
        if accounts != "*" and zone["account"]["id"] not in accounts:
            return False
        return zones == "*" or zone["id"] in zones or zone["name"] in zones

    def _require_zone(self, token, zone_id, permissions):
        zone = self.ctx.store.zones.get(zone_id)
        if zone is None:
            raise ApiError(404, 7003, f"Could not route to /zones/{zone_id}, perhaps your "
                           "object identifier is invalid?")
        if not self._zone_in_scope(token, zone):
            raise ApiError(403, 9109, "Unauthorized to access requested resource")
        if not any(p in token["permissions"] for p in permissions):
            raise ApiError(403, 10000, "Authentication error")
        return zone

    # token verification
    @staticmethod
    def _verify_result(token):
        result = {"id": token["id"], "status": token["status"]}
        messages = []
        if token["status"] == "active":
            messages = [{"code": 10000, "message": "This API Token is valid and active",
                         "type": None}]
        if token["status"] == "expired":
            result["expires_on"] = "2020-01-01T00:00:00Z"
        return result, None, messages

    def h_verify_user_token(self, token, query, body):
        if token["owner"] != "user":
            raise ApiError(401, 1000, "Invalid API Token")
        return self._verify_result(token)

    def h_verify_account_token(self, token, query, body, account_id):
        if token["owner"] != account_id:
            raise ApiError(401, 1000, "Invalid API Token")
        return self._verify_result(token)

    # tunnels
    def h_list_tunnels(self, token, query, body, account_id):
        items = self.ctx.store.list_tunnels(
            account_id, name=query.get("name"), is_deleted=_bool_param(query.get("is_deleted")),
            uuid_filter=query.get("uuid"), include_prefix=query.get("include_prefix"),
            exclude_prefix=query.get("exclude_prefix"), status=query.get("status"))
        return paginate(items, query, TUNNEL_PAGING)

    def h_create_tunnel(self, token, query, body, account_id):
        return self.ctx.store.create_tunnel(account_id, body)

    def h_get_tunnel(self, token, query, body, account_id, tunnel_id):
        store = self.ctx.store
        with store.lock:
            return store.public_tunnel(store.get_tunnel(account_id, tunnel_id))

    def h_update_tunnel(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.update_tunnel(account_id, tunnel_id, body)

    def h_delete_tunnel(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.delete_tunnel(account_id, tunnel_id)

    def h_get_tunnel_token(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.get_token(account_id, tunnel_id)

    def h_get_config(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.get_configuration(account_id, tunnel_id)

    def h_put_config(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.put_configuration(account_id, tunnel_id, body)

    def h_list_connections(self, token, query, body, account_id, tunnel_id):
        items = self.ctx.store.list_connections(account_id, tunnel_id)
        return items, {"page": 1, "per_page": max(len(items), 1), "count": len(items),
                       "total_count": len(items), "total_pages": 1 if items else 0}

    def h_cleanup_connections(self, token, query, body, account_id, tunnel_id):
        return self.ctx.store.cleanup_connections(account_id, tunnel_id,
                                                  query.get("client_id") or None)

    def h_get_connector(self, token, query, body, account_id, tunnel_id, connector_id):
        for client in self.ctx.store.list_connections(account_id, tunnel_id):
            if client["id"] == connector_id:
                return client
        raise ApiError(404, 1003, "Connector not found")

    # zones
    def h_list_zones(self, token, query, body):
        zones = []
        store = self.ctx.store
        with store.lock:
            for zone in sorted(store.zones.values(), key=lambda z: z["name"]):
                if not self._zone_in_scope(token, zone):
                    continue
                if not any(p in token["permissions"] for p in ZONE_READ):
                    continue
                if "name" in query and not _match_filter(zone["name"], query["name"]):
                    continue
                if "account.id" in query and zone["account"]["id"] != query["account.id"]:
                    continue
                if "account.name" in query and not _match_filter(zone["account"]["name"],
                                                                 query["account.name"]):
                    continue
                if "status" in query and zone["status"] != query["status"]:
                    continue
                zones.append(dict(zone))
        if query.get("direction") == "desc":
            zones.reverse()
        return paginate(zones, query, ZONE_PAGING)

    def h_get_zone(self, token, query, body, zone_id):
        return dict(self.ctx.store.zones[zone_id])

    # DNS records
    def h_list_dns(self, token, query, body, zone_id):
        records = self.ctx.store.list_dns_records(zone_id)
        tests = []
        name = query.get("name.exact", query.get("name"))
        if name:
            tests.append(lambda r, n=name.lower().rstrip("."): r["name"] == n)
        if query.get("type"):
            tests.append(lambda r, t=query["type"].upper(): r["type"] == t)
        content = query.get("content.exact", query.get("content"))
        if content:
            tests.append(lambda r, c=content: r["content"].lower() == c.lower().rstrip("."))
        proxied = _bool_param(query.get("proxied"))
        if proxied is not None:
            tests.append(lambda r, p=proxied: r["proxied"] == p)
        combine = any if query.get("match") == "any" else all
        records = [r for r in records if not tests or combine(t(r) for t in tests)]
        order = query.get("order", "type")
        if order not in ("type", "name", "content", "ttl", "proxied"):
            order = "type"
        records.sort(key=lambda r: (str(r[order]), r["name"], r["content"]),
                     reverse=query.get("direction") == "desc")
        return paginate(records, query, DNS_PAGING)

    def h_create_dns(self, token, query, body, zone_id):
        return self.ctx.store.create_dns_record(zone_id, body)

    def h_batch_dns(self, token, query, body, zone_id):
        return self.ctx.store.batch_dns_records(zone_id, body)

    def h_get_dns(self, token, query, body, zone_id, record_id):
        return dict(self.ctx.store.get_dns_record(zone_id, record_id))

    def h_put_dns(self, token, query, body, zone_id, record_id):
        return self.ctx.store.update_dns_record(zone_id, record_id, body, patch=False)

    def h_patch_dns(self, token, query, body, zone_id, record_id):
        return self.ctx.store.update_dns_record(zone_id, record_id, body, patch=True)

    def h_delete_dns(self, token, query, body, zone_id, record_id):
        return self.ctx.store.delete_dns_record(zone_id, record_id)

    # R2 buckets and custom domains
    def _r2_jurisdiction(self):
        """The ``cf-r2-jurisdiction`` header (buckets live per account and jurisdiction)."""
        value = (self.headers.get("cf-r2-jurisdiction") or "default").strip().lower()
        if value not in R2_JURISDICTIONS:
            raise ApiError(400, 1001, f"Invalid request: cf-r2-jurisdiction must be one of "
                           f"{', '.join(R2_JURISDICTIONS)}")
        return value

    def h_list_r2_buckets(self, token, query, body, account_id):
        start_after = query.get("start_after")
        cursor = query.get("cursor")
        if cursor:
            try:
                start_after = base64.urlsafe_b64decode(cursor.encode()).decode()
            except ValueError as exc:
                raise ApiError(400, 1001, "Invalid request: bad cursor") from exc
        items = self.ctx.store.list_r2_buckets(account_id, self._r2_jurisdiction(),
                                               query.get("name_contains"), start_after)
        if query.get("direction") == "desc":
            items.reverse()
        default, minimum, maximum = R2_BUCKET_PAGING
        try:
            per_page = min(max(int(float(query.get("per_page", default))), minimum), maximum)
        except ValueError as exc:
            raise ApiError(400, 1001, "Invalid request: per_page must be a number") from exc
        chunk = items[:per_page]
        next_cursor = ""
        if len(items) > per_page:
            next_cursor = base64.urlsafe_b64encode(chunk[-1]["name"].encode()).decode()
        return {"buckets": chunk}, {"cursor": next_cursor, "per_page": per_page}

    def h_create_r2_bucket(self, token, query, body, account_id):
        return self.ctx.store.create_r2_bucket(account_id, self._r2_jurisdiction(), body)

    def h_get_r2_bucket(self, token, query, body, account_id, bucket_name):
        store = self.ctx.store
        with store.lock:
            return store.public_r2_bucket(
                store.get_r2_bucket(account_id, self._r2_jurisdiction(), bucket_name))

    def h_delete_r2_bucket(self, token, query, body, account_id, bucket_name):
        return self.ctx.store.delete_r2_bucket(account_id, self._r2_jurisdiction(),
                                               bucket_name)

    def h_list_r2_domains(self, token, query, body, account_id, bucket_name):
        return {"domains": self.ctx.store.list_r2_domains(account_id, self._r2_jurisdiction(),
                                                          bucket_name)}

    def h_create_r2_domain(self, token, query, body, account_id, bucket_name):
        jurisdiction = self._r2_jurisdiction()
        store = self.ctx.store
        with store.lock:
            store.get_r2_bucket(account_id, jurisdiction, bucket_name)
        if not body.get("domain") or not body.get("zoneId"):
            raise ApiError(400, 1001, "Invalid request: domain and zoneId are required")
        zone = store.zones.get(body["zoneId"])
        if zone is None or zone["account"]["id"] != account_id:
            raise ApiError(404, 7003, f"Could not route to /zones/{body['zoneId']}, perhaps "
                           "your object identifier is invalid?")
        if not self._zone_in_scope(token, zone):
            raise ApiError(403, 9109, "Unauthorized to access requested resource")
        return store.create_r2_domain(account_id, jurisdiction, bucket_name, body, zone)

    def h_get_r2_domain(self, token, query, body, account_id, bucket_name, domain):
        store = self.ctx.store
        with store.lock:
            return dict(store.get_r2_domain(account_id, self._r2_jurisdiction(), bucket_name,
                                            domain))

    def h_update_r2_domain(self, token, query, body, account_id, bucket_name, domain):
        return self.ctx.store.update_r2_domain(account_id, self._r2_jurisdiction(),
                                               bucket_name, domain, body)

    def h_delete_r2_domain(self, token, query, body, account_id, bucket_name, domain):
        return self.ctx.store.delete_r2_domain(account_id, self._r2_jurisdiction(),
                                               bucket_name, domain)

    # test control (never logged)
    def _control(self, method, sub, raw):
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {"error": "malformed JSON"})
            return
        sub = sub.rstrip("/")
        ctx = self.ctx
        if sub == "/requests" and method == "GET":
            self._send(200, {"requests": ctx.log.entries()})
        elif sub == "/requests" and method == "DELETE":
            ctx.log.clear()
            self._send(200, {"cleared": True})
        elif sub == "/faults" and method == "GET":
            self._send(200, {"faults": ctx.faults.pending()})
        elif sub == "/faults" and method == "POST":
            try:
                if data.pop("append", False):
                    ctx.faults.add(**data)
                else:
                    ctx.faults.set(**data)
            except (TypeError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, {"faults": ctx.faults.pending()})
        elif sub == "/faults" and method == "DELETE":
            ctx.faults.clear()
            self._send(200, {"faults": []})
        elif sub == "/reset" and method == "POST":
            if ctx.reset_callback:
                ctx.reset_callback(data.get("seed"))
            self._send(200, {"reset": True})
        elif sub == "/state" and method == "GET":
            self._send(200, ctx.store.snapshot())
        else:
            self._send(404, {"error": f"no control endpoint {method} {sub}"})


class ApiServer(ThreadingHTTPServer):
    """Threaded HTTP server for the API; ``context`` is shared with handlers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, context):
        self.context = context
        super().__init__(address, ApiHandler)
