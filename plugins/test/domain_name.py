# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: domain_name
short_description: Test whether a value is a fully qualified domain name
version_added: 0.1.0
description:
  - The one definition of a domain name used everywhere in the collection (roles and modules).
  - A lower-case DNS host name as in RFC 1123, at least two labels, each 1 to 63 characters of
    C(a-z), C(0-9) and C(-) (no C(-) at either end), at most 253 characters in all, a
    top-level label of at least two characters that starts with a letter. No scheme, no
    path, no port, no trailing dot. Internationalised names are written in their A-label
    form (C(xn--...)).
  - Use the P(selfhost.mastodon.value_problem#filter) filter for the reason a value fails.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
  wildcard:
    description: Allow one leading wildcard label C(*.).
    type: bool
    default: false
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Check the domain
  ansible.builtin.assert:
    that: mastodon_stack_domain is selfhost.mastodon.domain_name
"""

RETURN = r"""
_value:
  description: Whether the value is a domain name.
  type: bool
"""

from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import is_domain_name


def domain_name(value, wildcard=False):
    return is_domain_name(value, wildcard=wildcard)


class TestModule(object):
    def tests(self):
        return {'domain_name': domain_name}
