# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: input_problems
short_description: Check a role's inputs by class (text, numbers, ports, paths, environments, calendars)
version_added: 0.1.0
description:
  - The one check of the value classes every validate entry point uses. Takes a list of
    checks, each naming a variable, its value and its kind, and returns one message per
    problem (C(<name> ('<value>') <why>)), or an empty list when every value is fine.
  - Text never holds a control character (a trailing line break included); numbers are finite
    and in range, never a yes/no value; ports are 1-65535 and, with the kind C(distinct_ports),
    never bound twice; paths are absolute and plain, and a folder the role owns (C(owned_dir),
    or the folder of an C(owned_file)) is never a system folder or a home folder itself.
  - A check with C(secret=true) never quotes its value.
options:
  _input:
    description:
      - 'A list of checks. Each is a dictionary with C(name) (the variable), C(value) and
        C(kind): C(text) (optional C(pattern), matched against the whole value, C(what),
        C(allow_empty), C(max_length)), C(number) (optional C(min), C(max), C(integer)
        default true), C(port), C(ports) (a non-empty list of ports), C(file), C(dir),
        C(owned_dir), C(owned_file), C(controller_dir), C(env) (a mapping NAME: value;
        optional C(reserved), a mapping NAME: reason, and C(secret_names), a pattern of names
        refused as secrets), C(calendar), C(distinct_ports) (value:
        a list of [name, port or list of ports]), or a kind of P(selfhost.mastodon.value_problem#filter).'
      - C(optional=true) accepts an empty value; C(secret=true) keeps the value out of the message;
        C(protect_home=true) (paths) refuses a path under /home, /root or /run/user, which a
        unit with C(ProtectHome=yes) cannot see.
    type: list
    elements: dict
    required: true
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Check the ports and paths
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}. Nothing was changed."
  vars:
    __problems: >-
      {{ [{'name': 'my_port', 'value': my_port, 'kind': 'port'},
          {'name': 'my_dir', 'value': my_dir, 'kind': 'owned_dir'}]
         | selfhost.mastodon.input_problems }}
"""

RETURN = r"""
_value:
  description: One message per problem, each starting with the variable's name.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.selfhost.mastodon.plugins.filter.value_problem import CHECKS
from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import (
    CONTROL_RE,
    calendar_problem,
    env_problem,
    number_problem,
    path_problem,
    port_collisions,
    port_problem,
    protect_home_problem,
    text_problem,
)

PATH_KINDS = ('file', 'dir', 'owned_dir', 'owned_file', 'controller_dir')


def _one(check):
    kind = check.get('kind', 'text')
    value = check.get('value')
    if check.get('optional') and value in ('', None, [], {}):
        return []
    if kind == 'text':
        problem = text_problem(value, allow_empty=bool(check.get('allow_empty')),
                               max_length=check.get('max_length'), pattern=check.get('pattern'),
                               what=check.get('what'))
    elif kind == 'number':
        problem = number_problem(value, check.get('min'), check.get('max'),
                                 integer=check.get('integer', True))
    elif kind == 'port':
        problem = port_problem(value)
    elif kind == 'ports':
        if not isinstance(value, (list, tuple)) or not value:
            problem = 'must be a non-empty list of ports'
        else:
            problem = next((p for p in map(port_problem, value) if p), None)
    elif kind in PATH_KINDS:
        problem = path_problem(value, kind)
        if not problem and check.get('protect_home'):
            problem = protect_home_problem(value)
    elif kind == 'env':
        return ['%s %s' % (check['name'], p)
                for p in env_problem(value, check.get('reserved') or {}, check.get('secret_names'))]
    elif kind == 'calendar':
        problem = calendar_problem(value)
    elif kind == 'distinct_ports':
        return port_collisions([tuple(pair) for pair in value])
    elif kind in CHECKS:
        problem = CHECKS[kind](value)
    else:
        raise AnsibleFilterError('input_problems: unknown kind %r' % (kind,))
    if not problem:
        return []
    if check.get('secret'):
        if isinstance(value, str) and value:
            problem = problem.replace(value, '(the value, not shown)')
        return ['%s %s' % (check['name'], problem)]
    return ["%s ('%s') %s" % (check['name'], _shown(value), problem)]


def _shown(value):
    """The value as one line: control characters written as escapes, at most 200 characters."""
    text = value if isinstance(value, str) else to_text(value)
    text = text if len(text) <= 200 else text[:200] + '...'
    return CONTROL_RE.sub(lambda match: repr(match.group())[1:-1], text)


def input_problems(checks):
    if not isinstance(checks, (list, tuple)):
        raise AnsibleFilterError('input_problems: give a list of checks')
    problems = []
    for check in checks:
        if not isinstance(check, dict) or 'name' not in check:
            raise AnsibleFilterError('input_problems: each check needs a name, a value and a kind')
        problems.extend(_one(check))
    return problems


class FilterModule(object):
    def filters(self):
        return {'input_problems': input_problems}
