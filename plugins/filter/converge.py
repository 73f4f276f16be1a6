# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Skipping what did not change: whether a role has anything to do on this run.

A role that finished a complete run writes a record on the host (its inputs' digest, the
checksums of the files it writes, the time). The next run reads the record, those files, the
role's packages and services in one selfhost.mastodon.host_probe call, and converge_plan says
whether the role's tasks run at all, and why (docs/performance.md, "Skipping what did not
change"). Unit tests: tests/unit/plugins/filter/test_converge.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible.errors import AnsibleFilterError

RECORD_VERSION = 1
# A record dated this far in the future (a clock moved back, a copied disk) is not trusted.
FUTURE_SLACK = 300


def _file_state(stat):
    """What a file looks like for the record: its SHA-1, 'directory', 'link', 'other' or None."""
    if not isinstance(stat, dict) or not stat.get('exists'):
        return None
    if stat.get('islnk'):
        return 'link'
    if stat.get('isdir'):
        return 'directory'
    if stat.get('isreg'):
        return stat.get('checksum') or 'unreadable'
    return 'other'


def _file_states(probe, files):
    stats = (probe or {}).get('stat') or {}
    return dict((str(path), _file_state(stats.get(str(path)))) for path in files)


def _list(items, limit=3):
    items = [str(i) for i in items]
    more = ' and %d more' % (len(items) - limit) if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


# The host facts the roles read that stay the same from one run to the next (never the time,
# free memory or the local facts the roles themselves write).
FACTS = ('architecture', 'default_ipv4', 'default_ipv6', 'distribution', 'distribution_major_version',
         'distribution_release', 'distribution_version', 'memtotal_mb', 'os_family',
         'processor_vcpus', 'virtualization_role', 'virtualization_type')


def converge_facts(facts):
    """The stable subset of ansible_facts that goes into a run's inputs."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError('converge_facts: the input must be ansible_facts')
    return dict((key, facts[key]) for key in FACTS if key in facts)


def converge_checks(units):
    """host_probe commands that read whether every unit runs and is enabled ({} for none)."""
    units = [str(u) for u in (units or [])]
    if not units:
        return {}
    # One `systemctl show` for all units: is-active and is-enabled exit 0 when ANY unit qualifies.
    return {'units': {'argv': ['systemctl', 'show', '--property=Id,ActiveState,UnitFileState', '--'] + units}}


# A unit counts as enabled in these file states (systemctl is-enabled exits 0 for them).
ENABLED = ('enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated')


def _units_not_ready(result, units):
    """The units of the list that do not run or are not enabled, from `systemctl show`."""
    if not isinstance(result, dict) or result.get('rc') != 0:
        return list(units)
    seen = {}
    for block in str(result.get('stdout') or '').split('\n\n'):
        props = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        if props.get('Id'):
            seen[props['Id']] = props
    bad = []
    for unit in units:
        props = seen.get(unit)
        if not props or props.get('ActiveState') != 'active' or props.get('UnitFileState') not in ENABLED:
            bad.append(unit)
    return bad


def converge_plan(probe, record, inputs, files=None, max_age_days=7, now=None, enabled=True,
                  partial=False, units=None):
    """Whether the role's tasks run: {'due': bool, 'why': str, 'record': bool}."""
    if not isinstance(probe, dict):
        raise AnsibleFilterError('converge_plan: the input must be a host_probe result')
    files = [str(f) for f in (files or [])]
    now = time.time() if now is None else float(now)
    try:
        max_age = float(max_age_days) * 86400
    except (TypeError, ValueError):
        raise AnsibleFilterError('converge_plan: max_age_days must be a number')
    write = bool(enabled) and not partial

    def plan(due, why):
        return {'due': due, 'why': why, 'record': write}

    if not enabled:
        return plan(True, 'every task runs (skipping unchanged runs is off)')
    if partial:
        return plan(True, 'tags select part of the role: the selected tasks run, no record is written')
    text = ((probe.get('content') or {}).get(str(record)))
    if text is None:
        return plan(True, 'no record of a complete run yet')
    try:
        last = json.loads(text)
    except ValueError:
        last = None
    if not isinstance(last, dict) or last.get('version') != RECORD_VERSION:
        return plan(True, 'the record of the last run cannot be read')
    if last.get('inputs') != inputs:
        return plan(True, "its inputs changed (variables, inventory groups, host facts or the collection's code)")
    try:
        at = float(last.get('at'))
    except (TypeError, ValueError):
        return plan(True, 'the record of the last run cannot be read')
    if at > now + FUTURE_SLACK:
        return plan(True, 'the record of the last run is dated in the future')
    if now - at > max_age:
        return plan(True, 'the last complete check is older than %s days' % max_age_days)
    recorded = last.get('files')
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(files):
        return plan(True, 'the files it writes are not the ones recorded')
    current = _file_states(probe, files)
    changed = [path for path in files if current[path] != recorded.get(path)]
    if changed:
        return plan(True, 'changed since the last run: ' + _list(changed))
    missing = ((probe.get('packages') or {}).get('missing')) or []
    if missing:
        return plan(True, 'packages are missing: ' + _list(missing))
    if units:
        stopped = _units_not_ready((probe.get('commands') or {}).get('units'), [str(u) for u in units])
        if stopped:
            return plan(True, 'not running or not enabled: ' + _list(stopped))
    due_at = last.get('due_at')
    if due_at is not None:
        try:
            if now >= float(due_at):
                return plan(True, 'a renewal is due')
        except (TypeError, ValueError):
            return plan(True, 'the record of the last run cannot be read')
    when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))
    return {'due': False, 'why': 'nothing changed since the complete run of ' + when, 'record': False}


def converge_record(probe, inputs, files=None, now=None, due_at=None):
    """The record a complete run leaves: its inputs' digest, its files' checksums, the time."""
    if not isinstance(probe, dict):
        raise AnsibleFilterError('converge_record: the input must be a host_probe result')
    files = [str(f) for f in (files or [])]
    record = {
        'version': RECORD_VERSION,
        'inputs': inputs,
        'at': int(time.time() if now is None else float(now)),
        'files': _file_states(probe, files),
    }
    if due_at is not None:
        record['due_at'] = int(float(due_at))
    return record


class FilterModule(object):
    """Filters for skipping the roles' tasks when nothing changed."""

    def filters(self):
        return {
            'converge_checks': converge_checks,
            'converge_facts': converge_facts,
            'converge_plan': converge_plan,
            'converge_record': converge_record,
        }
