"""Cloudflare emulator: a TEST STAND-IN for Cloudflare's v4 API and edge, not Cloudflare.

Test infrastructure owned by the selfhost.mastodon project (standard library only).  See
README.md in this folder.  Typical use from pytest, with ``tests/`` on ``sys.path``::

    from cloudflare_emulator import Emulator, TOKEN_FULL, ACCOUNT_ID
"""

from .api import WRITE_METHODS
from .emulator import Emulator
from .seed import (
    ACCOUNT_ID,
    DEFAULT_SEED,
    OTHER_ACCOUNT_ID,
    PENDING_ZONE,
    PENDING_ZONE_ID,
    PENDING_ZONE_NAME,
    SUB_ZONE_ID,
    SUB_ZONE_NAME,
    TOKEN_ACCOUNT_OWNED,
    TOKEN_DISABLED,
    TOKEN_EXPIRED,
    TOKEN_FULL,
    TOKEN_INVALID,
    TOKEN_NO_DNS_EDIT,
    TOKEN_NO_R2_EDIT,
    TOKEN_NO_TUNNEL_EDIT,
    TOKEN_NO_ZONE_READ,
    TOKEN_READ_ONLY,
    UNRELATED_ZONE_ID,
    UNRELATED_ZONE_NAME,
    ZONE_ID,
    ZONE_NAME,
)

__all__ = [
    "ACCOUNT_ID", "DEFAULT_SEED", "Emulator", "OTHER_ACCOUNT_ID", "PENDING_ZONE", "PENDING_ZONE_ID",
    "PENDING_ZONE_NAME", "SUB_ZONE_ID",
    "SUB_ZONE_NAME", "TOKEN_ACCOUNT_OWNED", "TOKEN_DISABLED", "TOKEN_EXPIRED", "TOKEN_FULL",
    "TOKEN_INVALID", "TOKEN_NO_DNS_EDIT", "TOKEN_NO_R2_EDIT",
    "TOKEN_NO_TUNNEL_EDIT", "TOKEN_NO_ZONE_READ",
    "TOKEN_READ_ONLY", "UNRELATED_ZONE_ID", "UNRELATED_ZONE_NAME", "WRITE_METHODS", "ZONE_ID", "ZONE_NAME",
]
