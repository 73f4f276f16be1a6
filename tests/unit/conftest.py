# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for the collection's unit tests.

Works both under ``ansible-test units`` (the collection already sits in
``ansible_collections/selfhost/mastodon``) and under plain ``python -m pytest tests/unit``
from a clone (then an ``ansible_collections/selfhost/mastodon`` link to the clone is made in
a temporary directory).

The modules are tested end to end over HTTP against the project's Cloudflare emulator
(``tests/cloudflare_emulator``, a test stand-in for Cloudflare's API) started on 127.0.0.1.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys
import tempfile

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
TESTS_DIR = os.path.join(REPO_ROOT, 'tests')

if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


from support.collection_path import ensure_collection_importable  # noqa: E402

ensure_collection_importable('selfhost-mastodon-units-')

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.common.text.converters import to_bytes  # noqa: E402

from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflare  # noqa: E402


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result)
        self.result = result
        self.failed = failed

    def failure_saying(self, *fragments):
        """Assert the module failed with a message holding every fragment; return the message."""
        assert self.failed, self.result
        msg = self.result['msg']
        missing = [fragment for fragment in fragments if fragment not in msg]
        assert not missing, (missing, msg)
        return msg


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise ModuleExit(kwargs, False)


def _fail_json(self, **kwargs):
    kwargs['failed'] = True
    raise ModuleExit(kwargs, True)


@pytest.fixture(autouse=True)
def _clean_cloudflare_env(monkeypatch):
    for name in ('CLOUDFLARE_API_TOKEN', 'CLOUDFLARE_ACCOUNT_ID', 'CLOUDFLARE_API_URL'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeps(monkeypatch):
    """Replace the client's sleep so retries do not really wait; record every wait."""
    recorded = []
    monkeypatch.setattr(_cloudflare.CloudflareClient, 'sleep',
                        staticmethod(recorded.append))
    return recorded


@pytest.fixture
def emulator(sleeps):
    """A fresh Cloudflare emulator (test stand-in) with the default seed."""
    from cloudflare_emulator import Emulator
    emu = Emulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator_factory(sleeps):
    """Start emulators with a custom seed: ``emulator_factory(seed={...})``."""
    from cloudflare_emulator import Emulator
    started = []

    def make(seed=None):
        emu = Emulator(seed=seed)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() in-process with the given arguments; return ModuleExit.

    ``run_module(main, args, check_mode=False, diff=False)``
    """
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _fail_json)

    def run(main, args, check_mode=False, diff=False):
        args = dict(args)
        args['_ansible_check_mode'] = check_mode
        args['_ansible_diff'] = diff
        args.setdefault('_ansible_remote_tmp', tempfile.gettempdir())
        args.setdefault('_ansible_keep_remote_files', False)
        payload = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        try:
            from ansible.module_utils.testing import patch_module_args
        except ImportError:
            patch_module_args = None
        try:
            if patch_module_args is not None:
                with patch_module_args(args):
                    main()
            else:  # ansible-core < 2.19
                monkeypatch.setattr(basic, '_ANSIBLE_ARGS', payload)
                main()
        except ModuleExit as exc:
            return exc
        raise AssertionError('module returned without exit_json/fail_json')

    return run


@pytest.fixture
def cf_args(emulator):
    """Module arguments pointing at the default emulator, full user token."""
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL

    def make(**kwargs):
        args = dict(api_url=emulator.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL)
        args.update(kwargs)
        return args

    return make
