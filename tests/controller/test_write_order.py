"""Checks of site.yml's first play that keep a run from changing the laptop when it cannot end
well (issue 25, "order of writes"), run on the controller with ansible-playbook:

- the hostname's zone at Cloudflare (the Cloudflare emulator, a TEST STAND-IN for Cloudflare's
  API, tests/cloudflare_emulator): a domain in no zone of the account, or a zone that is
  pending or moved, is refused in the first play, read only;
- the LOCAL_DOMAIN of an existing .env.production is kept unless the owner says otherwise.
"""
import json
import sys
from pathlib import Path

import pytest

from cloudflare_emulator import ACCOUNT_ID, DEFAULT_SEED, PENDING_ZONE, TOKEN_FULL, Emulator
from support.ansible_cli import ansible_playbook

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "playbooks" / "site.yml"
VALIDATE_ONLY = Path(__file__).resolve().parent / "files" / "validate_only.yml"
FIRST_PLAY = "PLAY [Check the inventory before anything changes]"
SECOND_PLAY = "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]"

HOST = {
    "selfhost_admin_user": "admin",
    "selfhost_ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"],
    "selfhost_owner_email": "owner@example.org",
    "selfhost_cloudflare_account_id": ACCOUNT_ID,
    "selfhost_cloudflare_api_token": TOKEN_FULL,
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
}


@pytest.fixture(scope="module")
def emulator():
    with Emulator(seed={"zones": DEFAULT_SEED["zones"] + [
            PENDING_ZONE, dict(PENDING_ZONE, id="6f" * 16, name="moved.test", status="moved")]}) as emu:
        yield emu


def zone_check(tmp_path, emulator, domain):
    """site.yml in check mode, the always-tagged checks and the zone check only."""
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"children": {"mastodon": {"hosts": {"laptop": dict(
        HOST, selfhost_domain=domain, cloudflare_tunnel_api_url=emulator.api_url)}}}}}))
    emulator.clear_log()
    proc = ansible_playbook(SITE, "--check", "--tags", "selfhost_cloudflare_zone",
                            inventory=inventory, timeout=600)
    return proc.returncode, proc.output


@pytest.mark.parametrize("domain, says", [
    ("social.pending.test", "Zone pending.test is pending at Cloudflare, not active"),
    ("social.moved.test", "Zone moved.test is moved at Cloudflare, not active"),
    ("social.nowhere.test", "No zone of account %s contains social.nowhere.test" % ACCOUNT_ID),
], ids=["pending zone", "moved zone", "no zone"])
def test_a_zone_that_cannot_carry_the_route_stops_the_first_play(
        tmp_path, emulator, domain, says):
    rc, out = zone_check(tmp_path, emulator, domain)
    assert rc != 0, out[-3000:]
    assert says in out, out[-3000:]
    assert "cloudflare_tunnel_hostname" in out
    assert FIRST_PLAY in out and SECOND_PLAY not in out
    assert emulator.writes() == []
    assert TOKEN_FULL not in out


def test_an_active_zone_passes_the_first_play(tmp_path, emulator):
    rc, out = zone_check(tmp_path, emulator, "social.example.test")
    assert rc == 0, out[-4000:]
    assert SECOND_PLAY in out
    assert emulator.writes() == []
    assert TOKEN_FULL not in out


# ------------------------------------------------------------------ LOCAL_DOMAIN in use

def validate_mastodon_stack(tmp_path, env_line, **extra):
    live = tmp_path / "live"
    live.mkdir(exist_ok=True)
    env = live / ".env.production"
    if env_line is None:
        env.unlink(missing_ok=True)
    else:
        env.write_text("SECRET_KEY_BASE=not-shown-0c1d\n%s\nWEB_DOMAIN=\n" % env_line)
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"laptop": dict(
        HOST, case_role="mastodon_stack", selfhost_domain="social.example.org",
        mastodon_stack_live_dir=str(live), **extra)}}}))
    proc = ansible_playbook(VALIDATE_ONLY, "--check", inventory=inventory, timeout=600)
    return proc.returncode, proc.output


@pytest.mark.parametrize("env_line, accepted", [
    (None, True),
    ("LOCAL_DOMAIN=social.example.org", True),
    ("LOCAL_DOMAIN='social.example.org'", True),
    ("LOCAL_DOMAIN=old.example.org", False),
    ("LOCAL_DOMAIN=\"old.example.org\"", False),
], ids=["no file yet", "same", "same quoted", "other", "other quoted"])
def test_local_domain_in_use_is_kept(tmp_path, env_line, accepted):
    rc, out = validate_mastodon_stack(tmp_path, env_line)
    assert ("VALIDATE-ACCEPTED" in out) is accepted, out[-3000:]
    assert "not-shown-0c1d" not in out
    if not accepted:
        assert rc != 0
        assert "mastodon_stack_domain (social.example.org) differs from the LOCAL_DOMAIN" in out
        assert "old.example.org" in out and "mastodon_stack_allow_local_domain_change" in out


def test_local_domain_change_when_the_owner_says_so(tmp_path):
    rc, out = validate_mastodon_stack(tmp_path, "LOCAL_DOMAIN=old.example.org",
                                      mastodon_stack_allow_local_domain_change=True)
    assert rc == 0 and "VALIDATE-ACCEPTED" in out, out[-3000:]
