# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Options shared by every Cloudflare module of the collection, and the action group
    # (meta/runtime.yml) every one of them belongs to.
    DOCUMENTATION = r'''
options:
  api_token:
    description:
      - Cloudflare API token, sent in an C(Authorization) header as a Bearer token.
      - Both user tokens and account-owned tokens work.
      - The token needs C(Account / Cloudflare Tunnel / Edit) on the account. Modules that
        publish a hostname also need C(Zone / Zone / Read) and C(Zone / DNS / Edit) on the zone
        of the hostname. The R2 module needs C(Account / Workers R2 Storage / Edit) instead
        (see its notes).
      - When Cloudflare refuses a call, the module verifies the token (only then) and says
        whether the token is invalid or which permission it lacks.
      - If not set, the value of the E(CLOUDFLARE_API_TOKEN) environment variable is used.
    type: str
    required: true
  account_id:
    description:
      - Cloudflare account ID (32 hexadecimal characters) that owns the tunnel (or the R2
        bucket).
      - If not set, the value of the E(CLOUDFLARE_ACCOUNT_ID) environment variable is used.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the Cloudflare v4 API.
      - Change it only to talk to a test double such as the project's Cloudflare emulator.
      - If not set, the value of the E(CLOUDFLARE_API_URL) environment variable is used.
    type: str
    default: https://api.cloudflare.com/client/v4
  timeout:
    description:
      - Timeout in seconds for one HTTP request.
      - A request that times out is retried like a connection error.
    type: float
    default: 30
  retry_budget:
    description:
      - Total number of seconds the module may spend waiting before retries during one run.
      - The module retries a call answered with HTTP 429 after the C(Retry-After) the answer
        asks for, and a call answered with HTTP 5xx or failed by a connection error or
        timeout after an exponential backoff (1, 2, 4, ... seconds, capped by
        O(retry_max_wait)).
      - When the next wait would exceed what is left of the budget, the module stops and
        fails with a message that names the call, what Cloudflare answered and how long it
        waited.
      - Set to V(0) to never retry.
    type: float
    default: 60
  retry_max_wait:
    description:
      - Upper bound in seconds for one backoff wait after a 5xx answer or a connection
        error, and for the wait after a 429 answer that carries no C(Retry-After).
      - A C(Retry-After) given by Cloudflare is always honoured in full (within
        O(retry_budget)).
    type: float
    default: 30
attributes:
  action_group:
    description: Use C(group/selfhost.mastodon.cloudflare) in C(module_defaults) to set
      defaults for this module.
    support: full
    membership:
      - selfhost.mastodon.cloudflare
requirements:
  - requests
notes:
  - Tunnels, their configuration and DNS records are read with name filters (C(name=),
    C(is_deleted=false)), so the number of requests does not grow with the size of the
    account. Paged answers are followed to the last page.
'''

    # Attributes of the modules that change things.
    ATTRIBUTES = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying
      target. Every read is done, no write is sent.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in
      check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports
      no change and sends no write request.
    support: full
'''

    # Attributes of read-only (info) modules.
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying
      target.
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in
      check_mode), when in diff mode.
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports
      no change.
    support: full
'''
