# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Request-count benchmark of the Cloudflare modules (not a timing benchmark).

Runs selfhost.mastodon.cloudflare_tunnel and selfhost.mastodon.cloudflare_tunnel_route
in-process against the project's Cloudflare emulator (a TEST STAND-IN for Cloudflare on
127.0.0.1) and prints, from the emulator's request log, how many requests each scenario
sends:

* create from scratch: tunnel created, route published (budget: at most 10 requests)
* no-op: both modules again, nothing to change (budget: at most 5 requests, no write)
* route change: a different origin service (printed, no budget)
* no-op with the tunnel passed by name instead of id (printed, no budget: one more
  request for the name lookup; the documented usage passes the id)
* selfhost.mastodon.cloudflare_r2_bucket, media bucket with its custom domain: create
  (printed) and no-op (budget: at most 2 requests, no write)

Exit status 1 when a budget is exceeded or a no-op run sends a write.

    python tests/benchmarks/bench_requests.py
"""

from __future__ import absolute_import, division, print_function

import contextlib
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests'))


from support.collection_path import ensure_collection_importable  # noqa: E402

ensure_collection_importable('selfhost-mastodon-bench-')

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.selfhost.mastodon.plugins.modules import (  # noqa: E402
    cloudflare_r2_bucket,
    cloudflare_tunnel,
    cloudflare_tunnel_route,
)
from benchmarks.requestcount import format_summary, summarize  # noqa: E402
from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, Emulator  # noqa: E402

NOOP_BUDGET = 5
CREATE_BUDGET = 10
HOSTNAME = 'social.example.test'
R2_NOOP_BUDGET = 2


def run(main, args):
    """Run a module's main() like Ansible does; return its JSON result."""
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            main()
        except SystemExit:
            pass
    result = json.loads(out.getvalue())
    if result.get('failed'):
        raise SystemExit('module failed: %s' % result.get('msg'))
    return result


def site(emu, service='https://localhost:443', by_name=False):
    """What the cloudflare_tunnel role does: the tunnel, then its published route."""
    common = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL)
    tunnel = run(cloudflare_tunnel.main, dict(common, name='mastodon'))
    route = run(cloudflare_tunnel_route.main, dict(
        common, tunnel='mastodon' if by_name else tunnel['tunnel']['id'],
        hostname=HOSTNAME, service=service))
    return tunnel['changed'] or route['changed']


def scenario(emu, title, **kwargs):
    emu.clear_log()
    changed = site(emu, **kwargs)
    summary = summarize(emu)
    print(format_summary(summary, title='%s (changed=%s)' % (title, changed)))
    print()
    return summary, changed


def main():
    emu = Emulator()
    emu.start()
    failures = []
    try:
        create, changed = scenario(emu, 'create from scratch')
        if not changed:
            failures.append('create run reported no change')
        if create['total'] > CREATE_BUDGET:
            failures.append('create run sent %d requests (budget %d)'
                            % (create['total'], CREATE_BUDGET))

        noop, changed = scenario(emu, 'no-op')
        if changed:
            failures.append('no-op run reported a change')
        if noop['writes']:
            failures.append('no-op run sent %d write(s)' % noop['writes'])
        if noop['total'] > NOOP_BUDGET:
            failures.append('no-op run sent %d requests (budget %d)'
                            % (noop['total'], NOOP_BUDGET))

        change, changed = scenario(emu, 'route change (new origin service)',
                                   service='https://127.0.0.1:8443')
        if not changed or change['writes'] != 1:
            failures.append('route change should send exactly one write, sent %d'
                            % change['writes'])

        byname, changed = scenario(emu, 'no-op, tunnel passed by name (informational)',
                                   service='https://127.0.0.1:8443', by_name=True)
        if byname['writes']:
            failures.append('no-op run by name sent a write')

        media = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
                     name='mastodon-media', custom_domain='media.example.test')
        for title in ('R2 media bucket + custom domain: create', 'R2 media bucket: no-op'):
            emu.clear_log()
            changed = run(cloudflare_r2_bucket.main, media)['changed']
            r2 = summarize(emu)
            print(format_summary(r2, title='%s (changed=%s)' % (title, changed)))
            print()
        if changed or r2['writes'] or r2['total'] > R2_NOOP_BUDGET:
            failures.append('R2 no-op run sent %d requests, %d write(s) (budget %d, no write)'
                            % (r2['total'], r2['writes'], R2_NOOP_BUDGET))
    finally:
        emu.stop()

    print('budgets: no-op <= %d requests (measured %d), create <= %d (measured %d)'
          % (NOOP_BUDGET, noop['total'], CREATE_BUDGET, create['total']))
    for failure in failures:
        print('FAIL: %s' % failure)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
