# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: file_state
short_description: Test whether a path, as stat described it, is a file or folder with the given owner, group, mode (and content)
version_added: 0.1.0
description:
  - Takes what M(ansible.builtin.stat) (its C(stat) key) or M(selfhost.mastodon.host_probe) (an
    entry of its C(stat)) said of a path. True when the path exists, is of the kind given, and
    has exactly that owner, group and mode (and, with O(content), exactly that content, by the
    SHA-1 checksum stat gave); a task that would write or set them can then be skipped without a
    round trip to the host.
  - With O(content), the stat must have been taken with checksums (C(get_checksum) or
    C(checksum=true)); without a checksum the file counts as different.
options:
  _input:
    description: What stat said of the path.
    type: dict
    required: true
  kind:
    description: C(file) (a regular file) or C(directory).
    type: str
    required: true
    choices: [file, directory]
  owner:
    description: The owner's name.
    type: str
    required: true
  group:
    description: The group's name.
    type: str
    required: true
  mode:
    description: The mode in four octal digits, such as C(0644).
    type: str
    required: true
  content:
    description: The text the file must hold (compared by SHA-1 with the stat's C(checksum)).
    type: str
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Create the folder only when it is not already right
  ansible.builtin.file:
    path: /etc/example
    state: directory
    owner: root
    group: root
    mode: "0755"
  when: probe.stat['/etc/example'] is not selfhost.mastodon.file_state('directory', 'root', 'root', '0755')

- name: Write the file only when it is not already exactly this
  ansible.builtin.template:
    src: example.conf.j2
    dest: /etc/example/example.conf
    owner: root
    group: root
    mode: "0644"
  when: >-
    probe.stat['/etc/example/example.conf'] is not selfhost.mastodon.file_state('file', 'root', 'root', '0644',
    content=lookup('ansible.builtin.template', 'example.conf.j2'))
"""

RETURN = r"""
_value:
  description: Whether the path is as given.
  type: bool
"""

import hashlib

from ansible.module_utils.common.text.converters import to_bytes

KINDS = {'file': 'isreg', 'directory': 'isdir'}


def file_state(found, kind, owner, group, mode, content=None):
    if kind not in KINDS:
        raise ValueError("file_state: kind must be file or directory, not %r" % (kind,))
    found = found or {}
    same = bool(found.get('exists') and found.get(KINDS[kind])
                and found.get('pw_name') == owner and found.get('gr_name') == group
                and found.get('mode') == mode)
    if same and content is not None:
        same = found.get('checksum') == hashlib.sha1(to_bytes(content, errors='surrogate_or_strict')).hexdigest()
    return same


class TestModule(object):
    def tests(self):
        return {'file_state': file_state}
