#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to selfhost.mastodon
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mastodon_secrets
short_description: Keep Mastodon's application secrets on the host, generating only the missing ones
version_added: 0.1.0
description:
  - Reads the secrets file on the managed host (shell C(KEY=value) lines, the format of
    C(.env.production)), keeps every value already there, takes values the user supplies
    (for example from Ansible Vault) in preference to stored ones, and generates only the
    secrets that are still missing, in exactly the formats Mastodon's own generators produce.
  - C(SECRET_KEY_BASE) and C(OTP_SECRET) are 64 random bytes as 128 lowercase hex characters
    (C(rake secret), that is C(SecureRandom.hex(64))).
  - C(VAPID_PRIVATE_KEY) and C(VAPID_PUBLIC_KEY) are a P-256 key pair, URL-safe base64 with
    padding of the 32-byte private scalar and of the 65-byte uncompressed public point
    (C(Webpush.generate_key)).
  - C(ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY), C(ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT)
    and C(ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY) are 32 random alphanumeric characters
    (C(bin/rails db:encryption:init), that is C(SecureRandom.alphanumeric(32))).
  - C(REDIS_PASSWORD) is the password Redis asks for (C(requirepass)), 32 random bytes as 64
    lowercase hex characters. Mastodon, Sidekiq and the streaming server read it from
    C(.env.production); a supplied one needs at least 16 characters.
  - A secrets file that exists but does not parse (a garbled or truncated file, a line that
    is not C(NAME=value), a known secret with an empty or malformed value) makes the module
    fail without writing anything and without showing any value. So does a secrets file
    that lacks a secret, or holds a different value, than O(env_file).
  - The file is written to a temporary file, flushed to disk (fsync), renamed over the old
    one and the folder is flushed too, so that a power cut leaves the old or the new file.
  - A secret once written is never regenerated. Changing one logs every user out
    (C(SECRET_KEY_BASE)), breaks Web Push subscriptions (VAPID) or makes encrypted database
    columns unreadable, two-factor authentication secrets among them since Mastodon 4.3
    (Active Record encryption keys).
  - C(OTP_SECRET) is kept and generated like the others, but Mastodon reads it only before 4.4
    (it encrypted the two-factor secrets until 4.3 moved them to Active Record encryption). The
    role writes it to C(.env.production) only for those releases; the secrets file keeps it for
    a restore of an older release. A C(.env.production) without it is not a disagreement.
  - The module returns no secret value, only the names of the secrets and where each came from.
    The values are for the role's template; it reads them from the file with
    M(ansible.builtin.slurp) under C(no_log).
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
requirements:
  - python cryptography (on the managed host) to generate a VAPID key pair
options:
  path:
    description:
      - The secrets file on the managed host. Created with O(mode) and O(owner) when absent.
    type: path
    required: true
  supplied:
    description:
      - Secrets the user supplies, by name. A supplied value wins over a stored one and is
        written to the file. Empty values are ignored.
      - Only the names listed under RV(names) are accepted.
    type: dict
    default: {}
  owner:
    description: Owner of the secrets file. Unset keeps the owner the file gets from the user the
      module runs as (root with become).
    type: str
  group:
    description: Group of the secrets file. Unset works like O(owner).
    type: str
  mode:
    description: Mode of the secrets file. Never world-readable.
    type: str
    default: "0600"
  env_file:
    description:
      - The C(.env.production) the secrets were last written to, on the managed host. Optional.
      - When the secrets file is absent, the secrets this file holds are adopted instead of
        generated (a lost secrets file next to a working install).
      - When the secrets file exists, every secret this file holds must be in the secrets file
        with the same value; otherwise the module fails and changes nothing, because new
        values would log everyone out and make encrypted data unreadable.
    type: path
  extra_passwords:
    description:
      - More password secrets to keep (generated like C(REDIS_PASSWORD) when missing, never
        regenerated), for example C(DB_PASS) when PostgreSQL is on another host of the LAN.
      - Names in upper case (C(NAME)). Stored ones are kept whether or not they are listed.
    type: list
    elements: str
    default: []
  force_generate:
    description:
      - Generate a completely new set of secrets (supplied values still win), ignoring the
        secrets file and O(env_file). Only for a deliberate new start, because every session,
        two-factor setup, Web Push subscription and encrypted column of the old set is lost.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the file and reports which secrets would be generated, writes nothing.
  diff_mode:
    support: none
    description: No diff is shown; it would contain secrets.
  idempotent:
    support: full
    description: A second run with the same input finds every secret and changes nothing.
notes:
  - The secrets file holds only the secrets; the role renders C(.env.production) from it.
  - The VAPID public key is recomputed from a stored private key when it is missing; a stored
    public key that does not belong to the stored private key makes the module fail rather
    than silently replace either.
"""

EXAMPLES = r"""
- name: Ensure Mastodon's secrets exist
  selfhost.mastodon.mastodon_secrets:
    path: /etc/mastodon/secrets.env
    supplied: "{{ mastodon_stack_secrets }}"
  no_log: true

- name: Check which secrets a run would create
  selfhost.mastodon.mastodon_secrets:
    path: /etc/mastodon/secrets.env
  check_mode: true
"""

RETURN = r"""
names:
  description: Every secret name the file holds after the run, sorted.
  returned: always
  type: list
  elements: str
  sample: [SECRET_KEY_BASE, OTP_SECRET]
generated:
  description: Names of the secrets generated by this run (would be generated, in check mode).
  returned: always
  type: list
  elements: str
kept:
  description: Names of the secrets found in the file and kept unchanged.
  returned: always
  type: list
  elements: str
supplied:
  description: Names of the secrets taken from O(supplied) that differed from the file.
  returned: always
  type: list
  elements: str
adopted:
  description: Names of the secrets taken from O(env_file) because the secrets file lacked them.
  returned: always
  type: list
  elements: str
path:
  description: The secrets file.
  returned: always
  type: str
"""

import base64
import os
import re
import secrets
import string
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import serialization
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

HEX_SECRETS = ("SECRET_KEY_BASE", "OTP_SECRET")
VAPID_PRIVATE = "VAPID_PRIVATE_KEY"
VAPID_PUBLIC = "VAPID_PUBLIC_KEY"
ALNUM_SECRETS = (
    "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
    "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
    "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
)
PASSWORD_SECRETS = ("REDIS_PASSWORD",)
NAMES = HEX_SECRETS + (VAPID_PRIVATE, VAPID_PUBLIC) + ALNUM_SECRETS + PASSWORD_SECRETS
ALPHANUMERIC = string.ascii_letters + string.digits
LINE = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*?)\s*$")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_=+/.-]*$")


def generate_hex_secret():
    """Like ``rake secret`` (``SecureRandom.hex(64)``): 128 lowercase hex characters."""
    return secrets.token_hex(64)


def generate_alphanumeric_secret(length=32):
    """Like ``SecureRandom.alphanumeric(32)`` used by ``bin/rails db:encryption:init``."""
    return "".join(secrets.choice(ALPHANUMERIC) for dummy in range(length))


def _b64(data):
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_public_from_private(private_b64):
    """The URL-safe base64 65-byte uncompressed P-256 point of a URL-safe base64 private scalar."""
    scalar = int.from_bytes(_b64decode(private_b64), "big")
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(point)


def generate_vapid_keys():
    """Like ``Webpush.generate_key``: (private, public), URL-safe base64 with padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(scalar), _b64(point)


def parse_secrets_file(text):
    """Lenient reading: every NAME=value line, anything else skipped (for .env.production)."""
    values = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


def _value_problem(name, value):
    """Why a stored value of a known secret is malformed, or None. Never quotes the value."""
    if value == "":
        return "is empty"
    if not SAFE_VALUE.fullmatch(value):
        return "holds characters a secret never has"
    if name in HEX_SECRETS and not re.fullmatch(r"[0-9a-f]{64,}", value):
        return "is not a hexadecimal secret of at least 64 characters"
    if name in ALNUM_SECRETS and not re.fullmatch(r"[A-Za-z0-9]{16,}", value):
        return "is not an alphanumeric secret of at least 16 characters"
    if name in PASSWORD_SECRETS and len(value) < 16:
        return "is shorter than 16 characters"
    if name in (VAPID_PRIVATE, VAPID_PUBLIC):
        try:
            size = len(_b64decode(value))
        except (ValueError, TypeError):
            return "is not URL-safe base64"
        if size != (32 if name == VAPID_PRIVATE else 65):
            return "does not decode to a P-256 %s key" % ("private" if name == VAPID_PRIVATE else "public")
    return None


def parse_secrets_file_strict(text):
    """Read a secrets file this module wrote (or a person wrote like it).

    Returns ``(values, problems)``; problems name lines and secrets, never values. A file
    that does not end with a newline was cut off (every file this module writes ends with
    one).
    """
    values, problems = {}, []
    if text.strip() == "":
        return values, ["the file is empty"]
    if not text.endswith("\n"):
        problems.append("the file does not end with a newline (it looks cut off)")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            problems.append("line %d is not NAME=value" % number)
            continue
        name, value = match.group(1), match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name in values:
            problems.append("line %d sets %s a second time" % (number, name))
        if name in NAMES:
            problem = _value_problem(name, value)
            if problem:
                problems.append("line %d: %s %s" % (number, name, problem))
        values[name] = value
    return values, problems


def compare_with_env(stored, env):
    """Secrets .env.production has that the secrets file lacks or holds differently."""
    missing = sorted(n for n in NAMES if env.get(n) and not stored.get(n))
    different = sorted(n for n in NAMES if env.get(n) and stored.get(n) and env[n] != stored[n])
    return missing, different


def render_secrets_file(values):
    lines = [
        "# Mastodon application secrets, kept by selfhost.mastodon.mastodon_secrets.",
        "# Generated once and never regenerated: changing them logs everyone out, breaks",
        "# two-factor authentication and Web Push, and makes encrypted columns unreadable.",
    ]
    for name in sorted(values):
        lines.append("%s=%s" % (name, values[name]))
    return "\n".join(lines) + "\n"


def plan(stored, supplied, vapid_available=True, extra_passwords=()):
    """Return (values, generated, kept, taken) without touching any file."""
    values = dict(stored)
    generated, kept, taken = [], [], []
    for name, value in sorted(supplied.items()):
        if value in (None, ""):
            continue
        if stored.get(name) != value:
            taken.append(name)
        values[name] = value
    for name in NAMES:
        if values.get(name) and name not in taken:
            kept.append(name)
    for name in HEX_SECRETS:
        if not values.get(name):
            values[name] = generate_hex_secret()
            generated.append(name)
    for name in ALNUM_SECRETS:
        if not values.get(name):
            values[name] = generate_alphanumeric_secret()
            generated.append(name)
    for name in PASSWORD_SECRETS + tuple(n for n in extra_passwords if n not in PASSWORD_SECRETS):
        if not values.get(name):
            values[name] = secrets.token_hex(32)
            generated.append(name)
    if not values.get(VAPID_PRIVATE):
        if values.get(VAPID_PUBLIC):
            raise ValueError(
                "%s is set but %s is missing: a public key without its private key cannot be "
                "kept; supply both or remove both" % (VAPID_PUBLIC, VAPID_PRIVATE)
            )
        if not vapid_available:
            raise ImportError("cryptography")
        values[VAPID_PRIVATE], values[VAPID_PUBLIC] = generate_vapid_keys()
        generated.extend([VAPID_PRIVATE, VAPID_PUBLIC])
    elif not values.get(VAPID_PUBLIC):
        if not vapid_available:
            raise ImportError("cryptography")
        values[VAPID_PUBLIC] = vapid_public_from_private(values[VAPID_PRIVATE])
        generated.append(VAPID_PUBLIC)
    elif vapid_available and vapid_public_from_private(values[VAPID_PRIVATE]) != values[VAPID_PUBLIC]:
        raise ValueError(
            "%s does not belong to %s; refusing to replace either" % (VAPID_PUBLIC, VAPID_PRIVATE)
        )
    return values, generated, kept, taken


def fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, content):
    """Write to a temporary file, fsync it, rename it over ``path``, fsync the folder."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".mastodon-secrets-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
        fsync_dir(directory)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            supplied=dict(type="dict", default={}, no_log=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="str", default="0600"),
            env_file=dict(type="path"),
            extra_passwords=dict(type="list", elements="str", default=[], no_log=False),
            force_generate=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    supplied = module.params["supplied"] or {}
    unknown = sorted(set(supplied) - set(NAMES))
    if unknown:
        module.fail_json(msg="Unknown secret names in supplied: %s (known: %s)" % (
            ", ".join(unknown), ", ".join(NAMES)))
    for name, value in supplied.items():
        if value not in (None, "") and (not isinstance(value, str) or not SAFE_VALUE.fullmatch(value)):
            module.fail_json(msg="The supplied value for %s is not a plain token "
                                 "(letters, digits and _=+/.- only)" % name)
        if name in PASSWORD_SECRETS and value not in (None, "") and len(value) < 16:
            module.fail_json(msg="The supplied value for %s is shorter than 16 characters "
                                 "(the value is not shown); nothing was changed" % name)
    extra_passwords = module.params["extra_passwords"] or []
    bad = [n for n in extra_passwords if not re.fullmatch(r"[A-Z][A-Z0-9_]*", n) or (n in NAMES and n not in PASSWORD_SECRETS)]
    if bad:
        module.fail_json(msg="extra_passwords takes NAME-style names other than the fixed secrets: %s"
                         % ", ".join(bad))
    mode = module.params["mode"]
    try:
        if int(mode, 8) & 0o007:
            module.fail_json(msg="mode %s would make the secrets file world-accessible" % mode)
    except ValueError:
        module.fail_json(msg="mode must be an octal string such as 0600, got %s" % mode)

    force = module.params["force_generate"]
    stored, adopted = {}, []
    exists = os.path.lexists(path)
    if exists and not force:
        if not os.path.isfile(path):
            module.fail_json(msg="%s exists but is not a regular file; nothing was changed" % path)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg="Cannot read %s: %s" % (path, exc))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text, problems = None, ["the file is not text"]
        if text is not None:
            stored, problems = parse_secrets_file_strict(text)
        if problems:
            source = module.params["env_file"] or ".env.production"
            module.fail_json(msg=(
                "The secrets file %s exists but does not parse: %s. Nothing was changed and no "
                "secret was generated: new secrets would log everyone out, break two-factor "
                "authentication and make encrypted data unreadable. Restore the file from a "
                "backup (or from %s), or set force_generate=true for a deliberate new set "
                "(values are not shown)." % (path, "; ".join(problems), source)))
    env = {}
    env_file = module.params["env_file"]
    if env_file and not force and os.path.isfile(env_file):
        try:
            with open(env_file, "r", encoding="utf-8", errors="replace") as handle:
                env = parse_secrets_file(handle.read())
        except (IOError, OSError) as exc:
            module.fail_json(msg="Cannot read %s: %s" % (env_file, exc))
    if env and not exists:
        # A lost secrets file next to a working install: adopt, never regenerate.
        for name in NAMES:
            if env.get(name) and _value_problem(name, env[name]) is None:
                stored[name] = env[name]
                adopted.append(name)
    elif env:
        missing, different = compare_with_env(stored, env)
        missing = [n for n in missing if not supplied.get(n)]
        different = [n for n in different if not supplied.get(n)]
        if missing or different:
            module.fail_json(msg=(
                "The secrets file %s and %s disagree: %s. Nothing was changed. Copy the "
                "values that %s uses into %s (or move the secrets file away to adopt every "
                "secret from %s), or set force_generate=true for a deliberate new set "
                "(values are not shown)." % (
                    path, env_file,
                    "; ".join(filter(None, [
                        ("missing from the secrets file: " + ", ".join(missing)) if missing else "",
                        ("different values: " + ", ".join(different)) if different else ""])),
                    env_file, path, env_file)))

    try:
        values, generated, kept, taken = plan(
            stored, supplied, vapid_available=CRYPTOGRAPHY_IMPORT_ERROR is None,
            extra_passwords=tuple(extra_passwords))
    except ImportError:
        module.fail_json(msg=missing_required_lib("cryptography"),
                         exception=CRYPTOGRAPHY_IMPORT_ERROR)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    kept = [name for name in kept if name not in adopted]
    changed = bool(generated or taken or adopted or (force and exists))
    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        write_file(path, render_secrets_file(values))
    if os.path.exists(path):
        file_args = module.load_file_common_arguments(dict(
            path=path, owner=module.params["owner"], group=module.params["group"], mode=mode))
        changed = module.set_fs_attributes_if_different(file_args, changed)

    module.exit_json(changed=changed, path=path, names=sorted(values), generated=generated,
                     kept=kept, supplied=taken, adopted=adopted)


if __name__ == "__main__":
    main()
