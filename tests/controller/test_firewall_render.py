"""base_os's firewall file must not depend on the order of the hosts that may reach a port.

site.yml lists the app hosts' addresses from the inventory's groups, and the inventory's host
order changes from run to run (Molecule regenerates it; dynamic inventories do too). If the
rendered file followed that order, a re-run with nothing to do would rewrite and reload the
firewall (the multi scenario's idempotence step caught exactly that). The file is rendered on
the controller from the role's own template, defaults and vars."""
import json
import sys
from pathlib import Path

from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "firewall_render.yml"


def render(tmp_path, name, allow):
    out = tmp_path / name
    extra = {"base_os_firewall_allow": allow, "out": str(out),
             "ansible_python_interpreter": sys.executable}
    proc = ansible_playbook(PLAYBOOK, "-c", "local", "-e", json.dumps(extra), inventory="localhost,", timeout=300)
    assert proc.returncode == 0, proc.output[-3000:]
    return out.read_text()


def rule(sources):
    return [{"port": 5432, "sources": sources, "comment": "PostgreSQL for the app hosts"}]


def test_the_order_of_the_sources_does_not_change_the_file(tmp_path):
    one = render(tmp_path, "a.nft", rule(["192.168.1.51", "192.168.1.50", "fd00::2", "fd00::1"]))
    other = render(tmp_path, "b.nft", rule(["fd00::1", "192.168.1.50", "fd00::2", "192.168.1.51"]))
    assert one == other
    # Both addresses of each family are in the one rule (the file can still tell hosts apart).
    assert "192.168.1.50" in one and "192.168.1.51" in one and "tcp dport 5432 accept" in one
    assert "fd00::1" in one and "fd00::2" in one


def test_other_sources_change_the_file(tmp_path):
    # The comparison above can fail: a different set of clients renders a different file.
    assert render(tmp_path, "a.nft", rule(["192.168.1.50"])) != render(tmp_path, "b.nft", rule(["192.168.1.52"]))
