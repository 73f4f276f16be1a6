# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.selfhost.mastodon`` importable from a plain clone.

Under ``ansible-test units`` the clone already sits in ``ansible_collections/selfhost/mastodon``
and its parent goes on sys.path. From a clone elsewhere (``python -m pytest tests/unit``, the
benchmarks) a temporary ``ansible_collections/selfhost/mastodon`` link to the clone is made.
One place for this, used by tests/unit/conftest.py and tests/benchmarks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys
import tempfile

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def ensure_collection_importable(prefix='selfhost-mastodon-'):
    parts = REPO_ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        root = os.sep.join(parts[:-3])
        if root not in sys.path:
            sys.path.insert(0, root)
        return
    try:
        import ansible_collections.selfhost.mastodon.plugins  # noqa: F401 pylint: disable=unused-import
        return
    except ImportError:
        pass
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(os.path.join(tmp, 'ansible_collections', 'selfhost'))
    os.symlink(REPO_ROOT, os.path.join(tmp, 'ansible_collections', 'selfhost', 'mastodon'))
    sys.path.insert(0, tmp)
