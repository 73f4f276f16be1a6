# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: content_digest
short_description: One SHA-256 digest of the files under some folders on the controller
version_added: 0.1.0
description:
  - Reads every regular file under the given folders (and the given files) on the controller, in
    the order of their relative paths, and returns one SHA-256 digest of the paths and their bytes.
    Python's byte-code caches (C(__pycache__), C(.pyc)) are left out.
  - The roles put it in the inputs of a run (see "Skipping what did not change" in
    docs/performance.md), so that a role whose code changed (a new release of the collection,
    or a developer's edit) runs in full on the next run.
options:
  _terms:
    description: Folders or files on the controller. A path that does not exist counts as empty.
    type: list
    elements: path
    required: true
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: The digest of this role's code and the collection's plugins
  ansible.builtin.debug:
    msg: "{{ lookup('selfhost.mastodon.content_digest', role_path, role_path ~ '/../../plugins') }}"
"""

RETURN = r"""
_raw:
  description: One hexadecimal SHA-256 digest.
  type: list
  elements: str
"""

import hashlib
import os

from ansible.plugins.lookup import LookupBase


def _files(top):
    if os.path.isfile(top):
        yield '', top
        return
    for folder, subfolders, names in os.walk(top):
        subfolders[:] = sorted(d for d in subfolders if d != '__pycache__')
        for name in sorted(names):
            if name.endswith('.pyc'):
                continue
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                yield os.path.relpath(path, top), path


def content_digest(paths):
    """The SHA-256 of every file's relative path and bytes, per given path, in a fixed order."""
    digest = hashlib.sha256()
    for index, top in enumerate(paths):
        top = os.path.realpath(os.path.expanduser(str(top)))
        entries = sorted(_files(top)) if os.path.exists(top) else []
        digest.update(('%d\0%d\0' % (index, len(entries))).encode())
        for relative, path in entries:
            with open(path, 'rb') as handle:
                data = handle.read()
            digest.update(relative.encode('utf-8', 'surrogateescape') + b'\0')
            digest.update(('%d\0' % len(data)).encode() + data)
    return digest.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [content_digest(terms or [])]
