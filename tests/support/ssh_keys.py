# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Well-formed and broken SSH public key lines, built in the wire format (no ssh-keygen)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import struct


def wire(*parts):
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def line(key_type, *parts, **kwargs):
    comment = kwargs.get("comment", "someone@laptop")
    blob = base64.b64encode(wire(key_type.encode(), *parts)).decode()
    return ("%s %s %s" % (key_type, blob, comment)).strip()


def ed25519(comment="someone@laptop"):
    return line("ssh-ed25519", os.urandom(32), comment=comment)


def rsa(bits=2048):
    modulus = b"\x00" + bytes([0xC5]) + os.urandom(bits // 8 - 1)
    return line("ssh-rsa", b"\x01\x00\x01", modulus)


def ecdsa256():
    return line("ecdsa-sha2-nistp256", b"nistp256", b"\x04" + os.urandom(64))


PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBmSecretSecretSecretSecretSecretSecretSecretSecretAAAAA==\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
PRIVATE_SNIPPETS = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "SecretSecretSecret"]
