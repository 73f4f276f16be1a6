"""mastodon_stack's loopback guard (issue 25): the unit that loads the nftables table which lets
only root, the mastodon user and nginx open connections to Puma and the streaming ports.

The unit is rendered on the controller from the role's template, defaults and vars; its
ExecStart (systemd joins the continued lines) must hold one accept rule for exactly those
accounts and a reject rule for everyone else, on exactly the configured ports, and nothing that
filters other ports or other hosts' traffic. molecule/mastodon_stack checks the loaded table on a
host (an unprivileged account is refused, nginx still serves)."""
import json
import re
import sys
from pathlib import Path

from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "loopback_guard_render.yml"


def render(tmp_path, name, **extra):
    out = tmp_path / name
    extra.update({"out": str(out), "ansible_python_interpreter": sys.executable})
    proc = ansible_playbook(PLAYBOOK, "-c", "local", "-e", json.dumps(extra), inventory="localhost,", timeout=300)
    assert proc.returncode == 0, proc.output[-3000:]
    return out.read_text()


def exec_lines(unit, key):
    """The values of key= in the [Service] section, continuation lines joined as systemd does."""
    joined = re.sub(r"\\\n", " ", unit)
    return [line.split("=", 1)[1] for line in joined.splitlines() if line.startswith(key + "=")]


def rules(unit):
    start = exec_lines(unit, "ExecStart")
    assert len(start) == 1, start
    command = start[0]
    assert command.startswith("/usr/sbin/nft '") and command.rstrip().endswith("'"), command
    script = command.split("'", 1)[1].rsplit("'", 1)[0]
    return [" ".join(rule.split()) for rule in script.split(";") if rule.strip()]


def test_only_root_mastodon_and_nginx_may_open_puma_and_streaming(tmp_path):
    found = rules(render(tmp_path, "default.service"))
    table = "inet selfhost_mastodon_loopback"
    # The table is replaced in one transaction; base_os's own table is not touched.
    assert found[:2] == [f"table {table}", f"delete table {table}"], found
    assert "selfhost_filter" not in " ".join(found)
    assert found[2] == f"table {table} {{ chain output {{ type filter hook output priority filter"
    assert found[3] == "policy accept"
    first = 'oif "lo" tcp dport { 443, 3000, 4000 } tcp flags & (syn | ack) == syn'
    assert found[4] == first + " meta skuid { root, mastodon, www-data } accept", found
    assert found[5] == first + " counter reject with tcp reset", found
    assert found[6:] == ["}", "}"], found
    # Stopping the guard removes the table (mastodon_stack_loopback_guard: false stops it).
    assert exec_lines(render(tmp_path, "again.service"), "ExecStop") == [
        f"-/usr/sbin/nft delete table {table}"]


def test_the_configured_ports_and_user_are_the_ones_guarded(tmp_path):
    unit = render(tmp_path, "custom.service", mastodon_stack_web_port=3100,
                  mastodon_stack_streaming_ports=[4002, 4001, "4003"], mastodon_stack_user="masto",
                  mastodon_stack_nginx_listen=["127.0.0.1:8443", "[::1]:8443"])
    found = rules(unit)
    guarded = [rule for rule in found if rule.startswith('oif "lo"')]
    assert len(guarded) == 2, found
    for rule in guarded:
        assert "tcp dport { 3100, 4001, 4002, 4003, 8443 }" in rule, rule
    assert "meta skuid { root, masto, www-data } accept" in guarded[0]
    assert not {"443", "3000", "4000"} & set(re.findall(r"\d+", " ".join(found))), found
    # Reloaded after base_os's nftables.service, whose restart flushes every table.
    assert "PartOf=nftables.service" in unit.splitlines()
    assert "Before=mastodon-web.service mastodon-streaming.service" in unit.splitlines()
