"""Seed data for the Cloudflare API emulator (a TEST STAND-IN for Cloudflare, not Cloudflare).

The emulator starts from a *seed*: accounts, zones, API tokens and, optionally, tunnels and
DNS records that already exist.  When no seed is given, :data:`DEFAULT_SEED` is used.

The token values below are fixed test values for the stand-in, not secrets: tests import
them (``from cloudflare_emulator.seed import TOKEN_FULL``).

Seed format (a dict, or the same as a JSON file for ``--seed``)::

    {
      "accounts": [{"id": "<32 hex>", "name": "..."}],
      "zones": [{"id": "<32 hex>", "name": "example.test", "account": "<account id>",
                 "status": "active"}],
      "tokens": [{"value": "...", "id": "<32 hex>", "status": "active|disabled|expired",
                  "owner": "user" | "<account id>",
                  "permissions": ["account:cloudflare_tunnel:edit", ...],
                  "accounts": "*" | ["<account id>"],      # scope of account:* permissions
                  "zones": "*" | ["<zone id or name>"]}],  # scope of zone:* permissions
      "tunnels": [{"name": "...", "account": "<account id>", "config_src": "cloudflare",
                   "id": "<uuid, optional>", "secret": "<base64, optional>",
                   "deleted": false, "config": {"ingress": [...]}}],
      "bulk_tunnels": {"count": 250, "prefix": "bulk-", "account": "<account id>",
                       "deleted_every": 0},
      "dns_records": [{"zone": "<zone id or name>", "type": "CNAME", "name": "...",
                       "content": "...", "proxied": true, "ttl": 1}],
      "r2_buckets": [{"name": "...", "account": "<account id>", "jurisdiction": "default",
                      "location": "enam", "storage_class": "Standard", "object_count": 0,
                      "domains": [{"domain": "...", "zone": "<zone id or name>",
                                   "enabled": true, "min_tls": "1.0"}]}]
    }
"""

from __future__ import annotations

import copy

PERMISSIONS = (
    "account:cloudflare_tunnel:edit",
    "account:cloudflare_tunnel:read",
    "zone:zone:read",
    "zone:dns:edit",
    "zone:dns:read",
    "account:workers_r2_storage:edit",
    "account:workers_r2_storage:read",
)

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
OTHER_ACCOUNT_ID = "fedcba9876543210fedcba9876543210"

ZONE_ID = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"  # example.test
SUB_ZONE_ID = "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b"  # sub.example.test (longest-zone match)
UNRELATED_ZONE_ID = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"  # unrelated.test
OTHER_ACCOUNT_ZONE_ID = "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"  # other-account.test
# A zone whose nameservers are not Cloudflare's yet: not in DEFAULT_SEED, add it with
# ``Emulator(seed={"zones": DEFAULT_SEED["zones"] + [PENDING_ZONE]})``.
PENDING_ZONE_ID = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
PENDING_ZONE_NAME = "pending.test"
PENDING_ZONE = {"id": PENDING_ZONE_ID, "name": PENDING_ZONE_NAME, "account": ACCOUNT_ID,
                "status": "pending"}

ZONE_NAME = "example.test"
SUB_ZONE_NAME = "sub.example.test"
UNRELATED_ZONE_NAME = "unrelated.test"

# Test values for the stand-in (not secrets).
TOKEN_FULL = "emu-user-token-full-000000000000000000000"
TOKEN_ACCOUNT_OWNED = "emu-account-token-full-0000000000000000"
TOKEN_NO_DNS_EDIT = "emu-user-token-no-dns-edit-00000000000000"
TOKEN_NO_TUNNEL_EDIT = "emu-user-token-no-tunnel-edit-00000000000"
TOKEN_NO_ZONE_READ = "emu-user-token-no-zone-read-0000000000000"
TOKEN_READ_ONLY = "emu-user-token-read-only-00000000000000000"
TOKEN_DISABLED = "emu-user-token-disabled-000000000000000000"
TOKEN_EXPIRED = "emu-user-token-expired-0000000000000000000"
TOKEN_NO_R2_EDIT = "emu-user-token-no-r2-edit-000000000000000"
TOKEN_INVALID = "emu-token-that-does-not-exist-000000000000"

ALL_PERMISSIONS = list(PERMISSIONS)


def _token(value, token_id, permissions, status="active", owner="user"):
    return {
        "value": value,
        "id": token_id,
        "status": status,
        "owner": owner,
        "permissions": list(permissions),
        "accounts": "*" if owner == "user" else [owner],
        "zones": "*",
    }


DEFAULT_SEED = {
    "accounts": [
        {"id": ACCOUNT_ID, "name": "Emulated account"},
        {"id": OTHER_ACCOUNT_ID, "name": "Another emulated account"},
    ],
    "zones": [
        {"id": ZONE_ID, "name": ZONE_NAME, "account": ACCOUNT_ID, "status": "active"},
        {"id": SUB_ZONE_ID, "name": SUB_ZONE_NAME, "account": ACCOUNT_ID, "status": "active"},
        {"id": UNRELATED_ZONE_ID, "name": UNRELATED_ZONE_NAME, "account": ACCOUNT_ID,
         "status": "active"},
        {"id": OTHER_ACCOUNT_ZONE_ID, "name": "other-account.test", "account": OTHER_ACCOUNT_ID,
         "status": "active"},
    ],
    "tokens": [
        _token(TOKEN_FULL, "a0000000000000000000000000000001", ALL_PERMISSIONS),
        _token(TOKEN_ACCOUNT_OWNED, "a0000000000000000000000000000002", ALL_PERMISSIONS,
               owner=ACCOUNT_ID),
        _token(TOKEN_NO_DNS_EDIT, "a0000000000000000000000000000003",
               [p for p in ALL_PERMISSIONS if p != "zone:dns:edit"]),
        _token(TOKEN_NO_TUNNEL_EDIT, "a0000000000000000000000000000004",
               [p for p in ALL_PERMISSIONS if p != "account:cloudflare_tunnel:edit"]),
        _token(TOKEN_NO_ZONE_READ, "a0000000000000000000000000000005",
               [p for p in ALL_PERMISSIONS if p != "zone:zone:read"]),
        _token(TOKEN_READ_ONLY, "a0000000000000000000000000000006",
               ["account:cloudflare_tunnel:read", "zone:zone:read", "zone:dns:read"]),
        _token(TOKEN_NO_R2_EDIT, "a0000000000000000000000000000009",
               [p for p in ALL_PERMISSIONS if p != "account:workers_r2_storage:edit"]),
        _token(TOKEN_DISABLED, "a0000000000000000000000000000007", ALL_PERMISSIONS,
               status="disabled"),
        _token(TOKEN_EXPIRED, "a0000000000000000000000000000008", ALL_PERMISSIONS,
               status="expired"),
    ],
    "tunnels": [],
    "dns_records": [],
}


def default_seed():
    """Return a fresh deep copy of :data:`DEFAULT_SEED`."""
    return copy.deepcopy(DEFAULT_SEED)


def with_defaults(seed):
    """Fill the keys a partial seed omits from :data:`DEFAULT_SEED`.

    A seed that only lists ``tunnels`` or ``dns_records`` keeps the default accounts, zones
    and tokens, so tests can say ``Emulator(seed={"bulk_tunnels": {"count": 120}})``.
    """
    result = default_seed()
    if seed:
        result.update(copy.deepcopy(seed))
    return result
