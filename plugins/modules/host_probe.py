#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_probe
short_description: Read several paths, files, packages and read-only commands in one call
version_added: 0.1.0
description:
  - Answers the questions a role asks the host before it decides what to change, in one round
    trip. Each M(ansible.builtin.stat), M(ansible.builtin.slurp) or read-only
    M(ansible.builtin.command) task costs a module run (about a quarter of a second over
    C(docker exec) or SSH, even when it only reads); this module does all of them in one.
  - It never changes anything and always reports C(changed=false). It runs in check mode too.
  - The commands given in O(commands) must only read. The module runs them as given, without a
    shell, as the user the task runs as; prefix C(runuser -u USER --) to run one as another user.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
attributes:
  check_mode:
    support: full
    description: The module only reads, in check mode as in a normal run.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
  idempotent:
    support: full
    description: It never changes anything.
options:
  paths:
    description:
      - Paths to describe as M(ansible.builtin.stat) would, without following a final symbolic
        link. Each is described in RV(stat).
    type: list
    elements: path
    default: []
  checksum:
    description:
      - Also give the SHA-1 checksum of each regular file of O(paths), as M(ansible.builtin.stat)
        does with C(get_checksum).
    type: bool
    default: false
  read:
    description:
      - Text files to read, at most 1 MiB each. Each is returned in RV(content), or C(null) when
        it does not exist or cannot be read.
    type: list
    elements: path
    default: []
  packages:
    description:
      - Debian package names to look up in the dpkg database (C(dpkg-query)). RV(packages)
        says which are installed and which are not. A virtual package counts as installed when
        an installed package provides it, as M(ansible.builtin.apt) sees it. A name with a
        version (C(=)) or a wildcard counts as not installed, so that M(ansible.builtin.apt)
        decides.
    type: list
    elements: str
    default: []
  commands:
    description:
      - Read-only commands to run, by a name of your choice. Each is a dictionary with C(argv)
        (the command and its arguments, run without a shell) and optionally C(chdir).
      - Their results are in RV(commands), under the same names. A command that cannot be
        started has C(rc) 127.
    type: dict
    default: {}
notes:
  - The module reports what it found; the tasks after it decide. A failed command does not fail
    the task; check its C(rc).
seealso:
  - module: ansible.builtin.stat
  - module: ansible.builtin.slurp
  - module: ansible.builtin.package_facts
"""

EXAMPLES = r"""
- name: Read what the role needs to know before it changes anything
  selfhost.mastodon.host_probe:
    paths: [/etc/needrestart/conf.d, /usr/share/zoneinfo/Etc/UTC]
    read: [/proc/sys/vm/swappiness]
    packages: [openssh-server, nftables]
    commands:
      sshd: {argv: [/usr/sbin/sshd, -T]}
  register: probe

- name: Install what is missing only
  ansible.builtin.apt:
    name: [openssh-server, nftables]
  when: probe.packages.missing | length > 0
"""

RETURN = r"""
stat:
  description:
    - For each path of O(paths), what M(ansible.builtin.stat) would say of it (a subset).
      When there is nothing at the path, C(exists), C(isreg), C(isdir) and C(islnk) are false and
      the other keys are absent.
  returned: always
  type: dict
  sample:
    /etc/needrestart/conf.d:
      exists: true
      isdir: true
      isreg: false
      islnk: false
      mode: "0755"
      pw_name: root
      gr_name: root
      uid: 0
      gid: 0
      size: 4096
      readable: true
      writeable: true
content:
  description: For each file of O(read), its text, or C(null) when it could not be read.
  returned: always
  type: dict
  sample: {/proc/sys/vm/swappiness: "60\n"}
packages:
  description: Which of O(packages) are installed (dpkg status C(install ok installed)) and which are not.
  returned: always
  type: dict
  sample: {installed: [openssh-server], missing: [nftables]}
commands:
  description: For each command of O(commands), its C(rc), C(stdout) and C(stderr).
  returned: always
  type: dict
  sample: {sshd: {rc: 0, stdout: "port 22\n", stderr: ""}}
"""

import grp
import os
import pwd
import stat as statmod

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

MAX_READ = 1024 * 1024
# What a path that does not exist reads as: the kind flags too, so that a condition needs no default.
MISSING = {"exists": False, "isreg": False, "isdir": False, "islnk": False}


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def describe(module, path, checksum=False):
    """What ansible.builtin.stat (follow=false) says of *path*, the keys the roles use."""
    try:
        info = os.lstat(path)
    except OSError:
        return dict(MISSING)
    mode = info.st_mode
    result = {
        "exists": True,
        "isreg": statmod.S_ISREG(mode),
        "isdir": statmod.S_ISDIR(mode),
        "islnk": statmod.S_ISLNK(mode),
        "mode": "%04o" % statmod.S_IMODE(mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "pw_name": _name(pwd.getpwuid, info.st_uid),
        "gr_name": _name(grp.getgrgid, info.st_gid),
        "size": info.st_size,
        "readable": os.access(path, os.R_OK),
        "writeable": os.access(path, os.W_OK),
    }
    if result["islnk"]:
        result["lnk_target"] = os.readlink(path)
    if checksum and result["isreg"] and result["readable"]:
        result["checksum"] = module.sha1(path)
    return result


def read_text(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_READ + 1)
    except (OSError, IOError):
        return None
    if len(data) > MAX_READ:
        return None
    return to_text(data, errors="surrogate_or_replace")


def package_states(module, names):
    """Split *names* into installed and missing by one dpkg-query."""
    plain = [n for n in names if not any(c in n for c in "=*?[")]
    installed = set()
    dpkg = module.get_bin_path("dpkg-query") if plain else None
    if dpkg:
        # Exit status 1 when a name is unknown to dpkg: the known ones are still printed.
        dummy, out, dummy = module.run_command(
            [dpkg, "-W", "-f", "${binary:Package}\t${Package}\t${db:Status-Status}\n"] + plain)
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) == 3 and fields[2] == "installed":
                installed.update(fields[:2])
    unknown = [n for n in plain if n not in installed]
    if unknown and dpkg:
        # A virtual package (such as postgresql-contrib on Debian 13) counts as installed when an
        # installed package provides it, as apt's state=present sees it: one more dpkg-query,
        # over every package, only when a name was not found.
        dummy, out, dummy = module.run_command([dpkg, "-W", "-f", "${db:Status-Status}\t${Provides}\n"])
        for line in out.splitlines():
            status, dummy, provides = line.partition("\t")
            if status == "installed" and provides:
                installed.update(p.split()[0] for p in provides.split(",") if p.strip())
    found = [n for n in names if n in installed]
    return {"installed": found, "missing": [n for n in names if n not in installed]}


def run_commands(module, commands):
    results = {}
    for name, spec in commands.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("argv"), list) or not spec["argv"]:
            module.fail_json(msg="commands.%s needs argv, a non-empty list (the command and its arguments)" % name)
        unknown = sorted(set(spec) - {"argv", "chdir"})
        if unknown:
            module.fail_json(msg="commands.%s: unknown keys %s (argv and chdir are known)" % (name, ", ".join(unknown)))
        argv = [to_text(a) for a in spec["argv"]]
        chdir = spec.get("chdir")
        if chdir and not os.path.isdir(chdir):
            results[name] = {"rc": 127, "stdout": "", "stderr": "no folder %s" % chdir}
            continue
        try:
            rc, out, err = module.run_command(argv, cwd=chdir or None, handle_exceptions=False)
        except (OSError, IOError) as exc:
            rc, out, err = 127, "", to_text(exc)
        results[name] = {"rc": rc, "stdout": out, "stderr": err}
    return results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=[]),
            checksum=dict(type="bool", default=False),
            read=dict(type="list", elements="path", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            commands=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = {
        "changed": False,
        "stat": dict((p, describe(module, p, params["checksum"])) for p in params["paths"]),
        "content": dict((p, read_text(p)) for p in params["read"]),
        "packages": package_states(module, params["packages"]),
        "commands": run_commands(module, params["commands"]),
    }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
