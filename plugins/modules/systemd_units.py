#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: systemd_units
short_description: Enable and start several systemd units in one call
version_added: 0.1.0
description:
  - Makes sure that every unit of a list is enabled and running, in one round trip to the host.
    A loop over M(ansible.builtin.systemd_service) costs one module run per unit even when
    every unit already runs; this module reads the state of all of them with one
    C(systemctl show) and calls C(systemctl enable) and C(systemctl start) only for the units
    that need it.
  - A unit counts as enabled when C(systemctl) reports its unit file state as C(enabled),
    C(enabled-runtime), C(static), C(generated) or C(transient), and as running when its active
    state is C(active), C(activating) or C(reloading), as M(ansible.builtin.systemd_service) does.
  - It does not reload systemd; notify a handler that does (C(daemon_reload)) when unit files
    change, and flush it before this task.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
attributes:
  check_mode:
    support: full
    description: The states are read; nothing is enabled or started.
  diff_mode:
    support: none
    description: The returned lists name the units that were (or would be) enabled and started.
  idempotent:
    support: full
    description: A second run finds every unit enabled and running and changes nothing.
options:
  names:
    description:
      - The units, with their suffix (C(.service), C(.timer), ...), template instances too
        (C(example@4000.service)).
    type: list
    elements: str
    required: true
notes:
  - A unit that systemd does not know, or that is masked, fails the task before anything is
    changed, naming the unit. In check mode a unit that is not found counts as one that would
    be enabled and started (the task that installs it did not write it).
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Enable and start the clean-up timers
  selfhost.mastodon.systemd_units:
    names:
      - example-cleanup.timer
      - example-backup.timer
"""

RETURN = r"""
enabled_units:
  description: The units enabled by this run (or that would be, in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: [example-backup.timer]
started_units:
  description: The units started by this run (or that would be, in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: [example-backup.timer]
"""

from ansible.module_utils.basic import AnsibleModule

PROPERTIES = ("Id", "LoadState", "UnitFileState", "ActiveState")
ENABLED_STATES = frozenset(("enabled", "enabled-runtime", "static", "generated", "transient"))
RUNNING_STATES = frozenset(("active", "activating", "reloading"))


def parse_show(text):
    """The blocks of `systemctl show` for several units (one per unit, in the order asked,
    separated by an empty line) as a list of {property: value}."""
    blocks = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, _sep, value = line.partition("=")
        blocks[-1][key] = value
    return [block for block in blocks if block]


def run_systemctl(module, systemctl, args):
    rc, out, err = module.run_command([systemctl] + args)
    if rc != 0:
        module.fail_json(msg="systemd_units: systemctl %s failed (exit %d): %s"
                         % (" ".join(args), rc, (err or out).strip()))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(names=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    names = module.params["names"]
    if not names:
        module.exit_json(changed=False, enabled_units=[], started_units=[])
    systemctl = module.get_bin_path("systemctl", required=True)
    out = run_systemctl(module, systemctl, ["show", "--property=" + ",".join(PROPERTIES), "--"] + names)
    states = parse_show(out)
    if len(states) != len(names):
        module.fail_json(msg="systemd_units: systemctl show answered for %d units, not %d"
                         % (len(states), len(names)), output=out)
    # In check mode a unit that an earlier task would have installed is not there yet: it would
    # be enabled and started, as below; otherwise an unknown unit is an error.
    unknown = [name for name, state in zip(names, states) if state.get("LoadState") != "loaded"
               and not state.get("LoadState", "").startswith("masked")
               and not (module.check_mode and state.get("LoadState") == "not-found")]
    masked = [name for name, state in zip(names, states)
              if state.get("LoadState", "").startswith("masked") or state.get("UnitFileState", "").startswith("masked")]
    if unknown or masked:
        module.fail_json(msg="systemd_units: %s" % "; ".join(
            (["systemd does not know %s" % ", ".join(unknown)] if unknown else [])
            + (["masked (systemctl unmask first): %s" % ", ".join(masked)] if masked else [])))
    to_enable = [name for name, state in zip(names, states) if state.get("UnitFileState") not in ENABLED_STATES]
    to_start = [name for name, state in zip(names, states) if state.get("ActiveState") not in RUNNING_STATES]
    if not module.check_mode:
        if to_enable:
            run_systemctl(module, systemctl, ["enable", "--"] + to_enable)
        if to_start:
            run_systemctl(module, systemctl, ["start", "--"] + to_start)
    module.exit_json(changed=bool(to_enable or to_start), enabled_units=to_enable, started_units=to_start)


if __name__ == "__main__":
    main()
