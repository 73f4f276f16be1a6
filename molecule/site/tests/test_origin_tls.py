"""The story's 502 and the verified origin, as side_effect.yml (Molecule's side_effect step)
observed them through the emulated edge and recorded them in <ephemeral>/origin-tls/: the
route switched with the collection's module (No TLS Verify off, no CA pool: cloudflared cannot
verify the self-signed origin, the edge answers 502), then site.yml converged in verify mode
(caPool = the CA selfsigned_tls published, originServerName = the domain: 200), then the route
back to the story's No TLS Verify (200)."""
import json

from conftest import CA_FILE, DOMAIN, ephemeral, site_runs


def phase(name):
    path = ephemeral() / "origin-tls" / f"{name}.json"
    assert path.exists(), f"side_effect.yml recorded no {name} phase"
    record = json.loads(path.read_text())
    rules = [r for r in record["ingress"] if r.get("hostname") == DOMAIN]
    assert rules, f"no ingress rule for {DOMAIN} in the {name} phase: {record['ingress']}"
    return int(record["status"]), record["body"], rules[0].get("originRequest", {})


def test_without_no_tls_verify_and_without_ca_pool_the_edge_answers_502():
    status, body, origin = phase("broken")
    assert origin.get("noTLSVerify") is not True
    assert not origin.get("caPool")
    assert status == 502, body


def test_verify_mode_checks_the_origin_against_the_published_ca():
    runs = site_runs()
    assert len(runs) >= 3, "ansible.log has no verify mode converge (side_effect.yml)"
    assert "Route the hostname to the origin, TLS mode verify" in runs[2][3]
    status, body, origin = phase("verify")
    # noTLSVerify off: false or left out (cloudflared's default is to verify).
    assert origin.get("noTLSVerify") is not True
    assert origin.get("caPool") == CA_FILE
    assert origin.get("originServerName") == DOMAIN
    assert status == 200, body


def test_no_tls_verify_is_back_after_the_flip():
    status, body, origin = phase("restored")
    assert origin.get("noTLSVerify") is True
    assert status == 200, body
