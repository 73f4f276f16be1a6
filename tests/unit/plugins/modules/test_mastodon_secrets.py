# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for selfhost.mastodon.mastodon_secrets: formats, precedence, never-regenerate.

Runs under ``ansible-test units`` and under plain pytest
(``python -m pytest tests/unit/plugins/modules/test_mastodon_secrets.py``); with plain pytest the
collection is found through ANSIBLE_COLLECTIONS_PATH or the repository's .build/collections.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import re
import stat

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import mastodon_secrets as mod  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

HEX128 = re.compile(r"^[0-9a-f]{128}$")
ALNUM32 = re.compile(r"^[A-Za-z0-9]{32}$")
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+=*$")


def run_module(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mod.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def assert_vapid_pair(private_b64, public_b64):
    assert URLSAFE.match(private_b64) and URLSAFE.match(public_b64)
    private = base64.urlsafe_b64decode(private_b64)
    public = base64.urlsafe_b64decode(public_b64)
    assert len(private) == 32
    assert len(private_b64) == 44 and private_b64.endswith("=")
    assert len(public) == 65 and public[0] == 4
    assert len(public_b64) == 88 and public_b64.endswith("=")
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    derived = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1()).public_key()
    assert derived.public_numbers() == point.public_numbers()


def test_hex_secret_format_matches_rake_secret():
    values = {mod.generate_hex_secret() for dummy in range(20)}
    assert len(values) == 20
    for value in values:
        assert HEX128.match(value)


def test_alphanumeric_secret_format_matches_db_encryption_init():
    values = {mod.generate_alphanumeric_secret() for dummy in range(20)}
    assert len(values) == 20
    for value in values:
        assert ALNUM32.match(value)


def test_vapid_keys_are_a_p256_pair_in_webpush_format():
    for dummy in range(20):
        private_b64, public_b64 = mod.generate_vapid_keys()
        assert_vapid_pair(private_b64, public_b64)
        assert mod.vapid_public_from_private(private_b64) == public_b64


def test_first_run_generates_everything_and_returns_no_value(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    result, raw = run_module({"path": str(path)}, capsys)
    assert result["changed"] is True
    assert sorted(result["generated"]) == sorted(mod.NAMES)
    assert result["kept"] == []
    values = mod.parse_secrets_file(path.read_text())
    assert sorted(values) == sorted(mod.NAMES)
    for name in mod.HEX_SECRETS:
        assert HEX128.match(values[name])
    for name in mod.ALNUM_SECRETS:
        assert ALNUM32.match(values[name])
    assert_vapid_pair(values["VAPID_PRIVATE_KEY"], values["VAPID_PUBLIC_KEY"])
    assert re.match(r"^[0-9a-f]{64}$", values["REDIS_PASSWORD"])
    for value in values.values():
        assert value not in raw
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_second_run_never_regenerates(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    run_module({"path": str(path)}, capsys)
    before = path.read_bytes()
    result, dummy = run_module({"path": str(path)}, capsys)
    assert result["changed"] is False
    assert result["generated"] == []
    assert sorted(result["kept"]) == sorted(mod.NAMES)
    assert path.read_bytes() == before


def test_only_missing_secrets_are_generated(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    existing = "SECRET_KEY_BASE=%s\nUNRELATED=keep-me\n" % ("ab" * 64)
    path.write_text(existing)
    result, dummy = run_module({"path": str(path)}, capsys)
    assert "SECRET_KEY_BASE" not in result["generated"]
    assert "SECRET_KEY_BASE" in result["kept"]
    values = mod.parse_secrets_file(path.read_text())
    assert values["SECRET_KEY_BASE"] == "ab" * 64
    assert values["UNRELATED"] == "keep-me"


def test_supplied_values_win_and_are_kept_afterwards(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    run_module({"path": str(path)}, capsys)
    vault_value = "cd" * 64
    args = {"path": str(path), "supplied": {"OTP_SECRET": vault_value}}
    result, raw = run_module(args, capsys)
    assert result["changed"] is True
    assert result["supplied"] == ["OTP_SECRET"]
    assert vault_value not in raw
    assert mod.parse_secrets_file(path.read_text())["OTP_SECRET"] == vault_value
    result, dummy = run_module(args, capsys)
    assert result["changed"] is False


def test_missing_public_key_is_derived_from_stored_private_key(tmp_path, capsys):
    private_b64, public_b64 = mod.generate_vapid_keys()
    path = tmp_path / "secrets.env"
    path.write_text("VAPID_PRIVATE_KEY=%s\n" % private_b64)
    result, dummy = run_module({"path": str(path)}, capsys)
    assert "VAPID_PRIVATE_KEY" in result["kept"]
    assert "VAPID_PUBLIC_KEY" in result["generated"]
    assert mod.parse_secrets_file(path.read_text())["VAPID_PUBLIC_KEY"] == public_b64


def test_mismatched_vapid_pair_fails_without_writing(tmp_path, capsys):
    private_b64, dummy = mod.generate_vapid_keys()
    dummy, other_public = mod.generate_vapid_keys()
    path = tmp_path / "secrets.env"
    content = "VAPID_PRIVATE_KEY=%s\nVAPID_PUBLIC_KEY=%s\n" % (private_b64, other_public)
    path.write_text(content)
    result, dummy = run_module({"path": str(path)}, capsys)
    assert result["failed"] is True
    assert "does not belong" in result["msg"]
    assert path.read_text() == content


def test_check_mode_reports_but_writes_nothing(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    result, dummy = run_module({"path": str(path)}, capsys, check_mode=True)
    assert result["changed"] is True
    assert sorted(result["generated"]) == sorted(mod.NAMES)
    assert not path.exists()


def test_unknown_names_and_world_readable_mode_are_refused(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    result, dummy = run_module({"path": str(path), "supplied": {"NOPE": "x"}}, capsys)
    assert result["failed"] is True and "NOPE" in result["msg"]
    result, dummy = run_module({"path": str(path), "mode": "0644"}, capsys)
    assert result["failed"] is True and "world" in result["msg"]
    assert not path.exists()


# --- Never regenerated by accident (issue 12) ---------------------------------------------


def _full_set(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    run_module({"path": str(path)}, capsys)
    return path, mod.parse_secrets_file(path.read_text())


def _env_from(values, extra=""):
    return "LOCAL_DOMAIN=social.example.com\n" + "".join(
        "%s=%s\n" % (k, v) for k, v in sorted(values.items())) + extra


@pytest.mark.parametrize("damage", [
    "truncated in a value",
    "garbled line",
    "empty file",
    "binary",
    "empty value",
    "short hex",
    "bad vapid",
])
def test_damaged_secrets_file_fails_and_writes_nothing(tmp_path, capsys, damage):
    path, values = _full_set(tmp_path, capsys)
    text = path.read_text()
    if damage == "truncated in a value":
        content = text[:len(text) - 40]
    elif damage == "garbled line":
        content = text.replace("OTP_SECRET=", "OTP_SECRET ", 1)
    elif damage == "empty file":
        content = ""
    elif damage == "binary":
        content = None
    elif damage == "empty value":
        content = text.replace("OTP_SECRET=%s" % values["OTP_SECRET"], "OTP_SECRET=")
    elif damage == "short hex":
        content = text.replace(values["SECRET_KEY_BASE"], values["SECRET_KEY_BASE"][:20])
    else:
        content = text.replace(values["VAPID_PRIVATE_KEY"], "AAAA")
    if content is None:
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_text(content)
    before = path.read_bytes()
    result, raw = run_module({"path": str(path)}, capsys)
    assert result["failed"] is True
    assert "does not parse" in result["msg"] and "force_generate" in result["msg"]
    assert path.read_bytes() == before
    for value in values.values():
        assert value not in raw and value[:20] not in raw


def test_secrets_file_lacking_a_secret_of_env_production_fails(tmp_path, capsys):
    path, values = _full_set(tmp_path, capsys)
    env = tmp_path / ".env.production"
    env.write_text(_env_from(values))
    path.write_text("".join("%s=%s\n" % (k, v) for k, v in values.items() if k != "OTP_SECRET"))
    before = path.read_bytes()
    result, raw = run_module({"path": str(path), "env_file": str(env)}, capsys)
    assert result["failed"] is True
    assert "OTP_SECRET" in result["msg"] and "missing from the secrets file" in result["msg"]
    assert path.read_bytes() == before
    assert values["OTP_SECRET"] not in raw


def test_secrets_file_disagreeing_with_env_production_fails(tmp_path, capsys):
    path, values = _full_set(tmp_path, capsys)
    env = tmp_path / ".env.production"
    env.write_text(_env_from(dict(values, SECRET_KEY_BASE="ef" * 64)))
    result, raw = run_module({"path": str(path), "env_file": str(env)}, capsys)
    assert result["failed"] is True
    assert "different values: SECRET_KEY_BASE" in result["msg"]
    assert "ef" * 64 not in raw


def test_agreeing_env_production_changes_nothing(tmp_path, capsys):
    path, values = _full_set(tmp_path, capsys)
    env = tmp_path / ".env.production"
    env.write_text(_env_from(values))
    before = path.read_bytes()
    result, dummy = run_module({"path": str(path), "env_file": str(env)}, capsys)
    assert result["changed"] is False and result["generated"] == []
    assert path.read_bytes() == before


def test_env_production_without_otp_secret_keeps_it_in_the_secrets_file(tmp_path, capsys):
    """Mastodon 4.4 and newer do not read OTP_SECRET, so the role leaves it out of
    .env.production: that is no disagreement, and the secrets file keeps the same value (run
    twice: never regenerated, never dropped)."""
    path, values = _full_set(tmp_path, capsys)
    env = tmp_path / ".env.production"
    env.write_text(_env_from(dict((k, v) for k, v in values.items() if k != "OTP_SECRET")))
    before = path.read_bytes()
    for dummy in range(2):
        result, raw = run_module({"path": str(path), "env_file": str(env)}, capsys)
        assert result.get("failed") is not True, result
        assert result["changed"] is False and result["generated"] == []
        assert "OTP_SECRET" in result["kept"]
        assert values["OTP_SECRET"] not in raw
    assert path.read_bytes() == before
    assert mod.parse_secrets_file(path.read_text())["OTP_SECRET"] == values["OTP_SECRET"]


def test_lost_secrets_file_is_adopted_from_env_production(tmp_path, capsys):
    path, values = _full_set(tmp_path, capsys)
    env = tmp_path / ".env.production"
    env.write_text(_env_from(values))
    path.unlink()
    result, raw = run_module({"path": str(path), "env_file": str(env)}, capsys)
    assert result["changed"] is True
    assert sorted(result["adopted"]) == sorted(mod.NAMES)
    assert result["generated"] == []
    assert mod.parse_secrets_file(path.read_text()) == values
    for value in values.values():
        assert value not in raw


def test_force_generate_makes_a_new_set_on_purpose(tmp_path, capsys):
    path, values = _full_set(tmp_path, capsys)
    path.write_text("garbage\n")
    env = tmp_path / ".env.production"
    env.write_text(_env_from(values))
    result, dummy = run_module({"path": str(path), "env_file": str(env), "force_generate": True}, capsys)
    assert result["changed"] is True
    assert sorted(result["generated"]) == sorted(mod.NAMES)
    new = mod.parse_secrets_file(path.read_text())
    assert all(new[name] != values[name] for name in mod.NAMES)


def test_write_is_fsynced_file_then_folder(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        calls.append(("fsync", os.path.isdir("/proc/self/fd/%d" % fd)))
        return real_fsync(fd)

    def rename(src, dst):
        calls.append(("rename", None))
        return real_rename(src, dst)

    monkeypatch.setattr(mod.os, "fsync", fsync)
    monkeypatch.setattr(mod.os, "rename", rename)
    target = tmp_path / "secrets.env"
    mod.write_file(str(target), "A=b\n")
    assert calls == [("fsync", False), ("rename", None), ("fsync", True)]
    assert target.read_text() == "A=b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.env"]


def test_redis_password_is_added_to_an_older_secrets_file_and_kept(tmp_path, capsys):
    """A secrets file from before REDIS_PASSWORD: only the password is generated, once."""
    path = tmp_path / "secrets.env"
    run_module({"path": str(path)}, capsys)
    older = "".join(line + "\n" for line in path.read_text().splitlines()
                    if not line.startswith("REDIS_PASSWORD="))
    path.write_text(older)
    result, raw = run_module({"path": str(path)}, capsys)
    assert result["changed"] is True and result["generated"] == ["REDIS_PASSWORD"]
    password = mod.parse_secrets_file(path.read_text())["REDIS_PASSWORD"]
    assert password not in raw
    again, dummy = run_module({"path": str(path)}, capsys)
    assert again["changed"] is False
    assert mod.parse_secrets_file(path.read_text())["REDIS_PASSWORD"] == password


def test_a_short_supplied_redis_password_is_refused_without_a_write(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    result, raw = run_module({"path": str(path), "supplied": {"REDIS_PASSWORD": "short-pw"}},
                             capsys)
    assert result["failed"] is True
    assert "REDIS_PASSWORD" in result["msg"] and "16" in result["msg"]
    assert "short-pw" not in raw
    assert not path.exists()


def test_extra_password_is_generated_once_kept_without_the_option_and_never_shown(tmp_path, capsys):
    """DB_PASS for a database on another host: generated once, kept by a run that does not
    list it (the role's single-host call), never in the output."""
    path = tmp_path / "secrets.env"
    run_module({"path": str(path)}, capsys)
    result, raw = run_module({"path": str(path), "extra_passwords": ["DB_PASS"]}, capsys)
    assert result["changed"] is True and result["generated"] == ["DB_PASS"]
    password = mod.parse_secrets_file(path.read_text())["DB_PASS"]
    assert re.match(r"^[0-9a-f]{64}$", password) and password not in raw
    for args in ({"path": str(path), "extra_passwords": ["DB_PASS"]}, {"path": str(path)}):
        again, raw = run_module(args, capsys)
        assert again["changed"] is False and password not in raw
        assert mod.parse_secrets_file(path.read_text())["DB_PASS"] == password


@pytest.mark.parametrize("name", ["db_pass", "SECRET_KEY_BASE", "DB PASS"])
def test_extra_passwords_refuse_bad_or_fixed_names(tmp_path, capsys, name):
    path = tmp_path / "secrets.env"
    result, dummy = run_module({"path": str(path), "extra_passwords": [name]}, capsys)
    assert result["failed"] is True and "extra_passwords" in result["msg"]
    assert not path.exists()
