#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: managed_files
short_description: Write several small text files, and their folders, in one call
version_added: 0.1.0
description:
  - Writes a list of small text files (systemd units, drop-ins) with their owner, group and
    mode, in one round trip to the host. A loop over M(ansible.builtin.template) or
    M(ansible.builtin.copy) costs two round trips per file even when nothing changes (a stat,
    then a file module run for the attributes); this module compares and writes every file of
    the list in one module run.
  - A file is written only when its content differs (SHA-1 of the bytes), through a temporary
    file in the same folder and an atomic rename; owner, group and mode are set only when they
    differ.
  - Render the content on the controller, for example with the P(ansible.builtin.template#lookup)
    lookup, so that the role's templates stay files of their own.
  - The parent folder of every file must exist, or be one of O(folders). In check mode a missing
    folder means that the file would be new, since the task that makes the folder did not run
    for real.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
attributes:
  check_mode:
    support: full
    description: Every file is read and compared; nothing is written.
  diff_mode:
    support: full
    description: One entry per file whose content or attributes change.
  idempotent:
    support: full
    description: A second run with the same files finds them as given and changes nothing.
options:
  folders:
    description:
      - Folders to make (with missing parents, as M(ansible.builtin.file) does) or bring to their
        owner, group and mode, before the files are written.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the folder.
        type: path
        required: true
      owner:
        description: Owner of the folder.
        type: str
        default: root
      group:
        description: Group of the folder.
        type: str
        default: root
      mode:
        description: Mode of the folder, as an octal string such as C("0755").
        type: raw
        default: "0755"
  files:
    description:
      - The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole content of the file, as text (UTF-8).
        type: str
        required: true
      owner:
        description: Owner of the file.
        type: str
        default: root
      group:
        description: Group of the file.
        type: str
        default: root
      mode:
        description: Mode of the file, as an octal string such as C("0644").
        type: raw
        default: "0644"
notes:
  - Meant for small text files (units, configuration snippets). It holds each file in memory
    and does not validate the content; use M(ansible.builtin.template) with C(validate) for a
    file a program must check first.
"""

EXAMPLES = r"""
- name: Install two systemd units in one call
  selfhost.mastodon.managed_files:
    files:
      - path: /etc/systemd/system/example.service
        content: "{{ lookup('ansible.builtin.template', 'example.service.j2') }}"
      - path: /etc/systemd/system/example.timer
        content: "{{ lookup('ansible.builtin.template', 'example.timer.j2') }}"
        mode: "0644"
  notify: Reload systemd

- name: Make a private folder and the token file in it
  selfhost.mastodon.managed_files:
    folders:
      - path: /etc/example
        mode: "0700"
    files:
      - path: /etc/example/token
        content: "{{ example_token }}"
        mode: "0600"
  no_log: true
"""

RETURN = r"""
changed_folders:
  description: The folders made or whose attributes changed (or would, in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/example]
changed_files:
  description: The paths whose content or attributes changed (or would change in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/example.timer]
"""

import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

# Larger files are compared but not shown in a diff.
DIFF_LIMIT = 65536


def read_text(path):
    if os.path.getsize(path) > DIFF_LIMIT:
        return "(larger than %d bytes, not shown)\n" % DIFF_LIMIT
    with open(path, "rb") as handle:
        return to_text(handle.read(), errors="surrogate_or_replace")


def write_atomically(module, path, data):
    """Write data to a temporary file next to path, then rename it over path."""
    folder = os.path.dirname(path)
    handle, tmp = tempfile.mkstemp(prefix=".ansible_tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        module.atomic_move(tmp, path, unsafe_writes=False)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_file(module, spec):
    """Bring one file to its content and attributes; return (changed, diff entries)."""
    path = spec["path"]
    data = to_bytes(spec["content"], errors="surrogate_or_strict")
    folder = os.path.dirname(path)
    if not os.path.isabs(path):
        module.fail_json(msg="managed_files: %s is not an absolute path" % path)
    if not os.path.isdir(folder):
        if module.check_mode:
            # An earlier task that makes the folder did not run for real: the file would be new.
            diffs = [{"before_header": "%s (absent)" % path, "after_header": path, "before": "",
                      "after": to_text(data) if len(data) <= DIFF_LIMIT else "(larger than %d bytes, not shown)\n" % DIFF_LIMIT}]
            return True, diffs if module._diff else []
        module.fail_json(msg="managed_files: the folder %s of %s does not exist" % (folder, path))
    if os.path.isdir(path):
        module.fail_json(msg="managed_files: %s is a folder, not a file" % path)
    exists = os.path.exists(path)
    content_differs = not exists or module.sha1(path) != hashlib.sha1(data).hexdigest()
    diffs = []
    if content_differs:
        if module._diff:
            diffs.append({
                "before_header": path if exists else "%s (absent)" % path,
                "after_header": path,
                "before": read_text(path) if exists else "",
                "after": to_text(data) if len(data) <= DIFF_LIMIT else "(larger than %d bytes, not shown)\n" % DIFF_LIMIT,
            })
        if not module.check_mode:
            write_atomically(module, path, data)
    attributes = module.load_file_common_arguments(
        {"owner": spec["owner"], "group": spec["group"], "mode": spec["mode"]}, path=path)
    attributes_changed = False
    if exists or not module.check_mode:
        attr_diff = {"before": {"path": path}, "after": {"path": path}}
        attributes_changed = module.set_fs_attributes_if_different(attributes, False, diff=attr_diff)
        if attributes_changed and exists and module._diff and len(attr_diff["before"]) > 1:
            attr_diff["before_header"] = attr_diff["after_header"] = "%s (attributes)" % path
            diffs.append(attr_diff)
    return content_differs or attributes_changed, diffs


def ensure_folder(module, spec):
    """Make one folder (and missing parents) and set its attributes; return (changed, diffs)."""
    path = spec["path"]
    if not os.path.isabs(path):
        module.fail_json(msg="managed_files: %s is not an absolute path" % path)
    exists = os.path.isdir(path)
    if not exists and os.path.lexists(path):
        module.fail_json(msg="managed_files: %s exists and is not a folder" % path)
    diffs = []
    if not exists:
        if module._diff:
            diffs.append({"before": {"path": path, "state": "absent"}, "after": {"path": path, "state": "directory"}})
        if module.check_mode:
            return True, diffs
        os.makedirs(path)
    attributes = module.load_file_common_arguments(
        {"owner": spec["owner"], "group": spec["group"], "mode": spec["mode"]}, path=path)
    attr_diff = {"before": {"path": path}, "after": {"path": path}}
    attributes_changed = module.set_fs_attributes_if_different(attributes, False, diff=attr_diff)
    if attributes_changed and exists and module._diff and len(attr_diff["before"]) > 1:
        attr_diff["before_header"] = attr_diff["after_header"] = "%s (attributes)" % path
        diffs.append(attr_diff)
    return (not exists) or attributes_changed, diffs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            folders=dict(
                type="list", elements="dict", default=[],
                options=dict(
                    path=dict(type="path", required=True),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                    mode=dict(type="raw", default="0755"),
                ),
            ),
            files=dict(
                type="list", elements="dict", required=True,
                options=dict(
                    path=dict(type="path", required=True),
                    content=dict(type="str", required=True),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                    mode=dict(type="raw", default="0644"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    paths = [spec["path"] for spec in module.params["files"]]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        module.fail_json(msg="managed_files: the same path is given twice: %s" % ", ".join(repeated))
    changed = {"folders": [], "files": []}
    diffs = []
    steps = (("folders", ensure_folder, "cannot make the folder %s: %s"), ("files", ensure_file, "cannot write %s: %s"))
    for kind, ensure, failure in steps:
        for spec in module.params[kind]:
            try:
                differs, entries = ensure(module, spec)
            except (IOError, OSError) as exc:
                module.fail_json(msg="managed_files: " + failure % (spec["path"], to_native(exc)),
                                 changed_folders=changed["folders"], changed_files=changed["files"])
            if differs:
                changed[kind].append(spec["path"])
            diffs.extend(entries)
    changed_folders, changed_files = changed["folders"], changed["files"]
    result = {"changed": bool(changed_folders or changed_files), "changed_folders": changed_folders,
              "changed_files": changed_files}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
