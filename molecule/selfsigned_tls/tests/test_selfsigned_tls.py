"""What a person checks after roles/selfsigned_tls ran (converge.yml, then side_effect.yml).

The tests run commands inside the test container: openssl for the certificate itself, and
real TLS handshakes against nginx on 127.0.0.1 (converge.yml makes nginx serve the
certificates) with Python's ssl module, the way a client holding the published CA file would.
"""

import datetime
import json
from pathlib import Path

import pytest
from support.ansible_cli import ansible_playbook

DOMAIN = "mastodon.example.test"
NAMES = {DOMAIN, "www.mastodon.example.test", "*.files.mastodon.example.test"}
LIVE = f"/etc/letsencrypt/live/{DOMAIN}"
CA_FILE = f"/etc/ssl/selfhost/{DOMAIN}-origin.pem"
ECC_DIR = "/etc/ssl/selfhost-ecc"
ECC_CA_FILE = "/etc/ssl/selfhost/ecc.example.test-origin.pem"
EVIDENCE = "/root/selfsigned_tls-test"
FOREIGN_DIRS = ("/etc/letsencrypt/archive/foreign.example.test /etc/letsencrypt/live/foreign.example.test"
                " /etc/letsencrypt/live/handmade.example.test /etc/letsencrypt/archive/forced.example.test")
SCENARIO = Path(__file__).resolve().parent.parent

HANDSHAKE = r"""
import json, socket, ssl, sys
port, name, cafile, strict = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "strict"
ctx = ssl.create_default_context(cafile=cafile or None)
if strict:
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(b"GET / HTTP/1.0\r\nHost: " + name.encode() + b"\r\n\r\n")
            body = tls.recv(4096).decode(errors="replace")
            print(json.dumps({"ok": True, "version": tls.version(), "body": body}))
except ssl.SSLCertVerificationError as exc:
    print(json.dumps({"ok": False, "error": exc.verify_message or str(exc)}))
"""


def run(host, cmd):
    result = host.run(cmd)
    assert result.rc == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def cert_dates(host, path):
    out = run(host, f"openssl x509 -in {path} -noout -startdate -enddate -dateopt iso_8601")
    values = dict(line.split("=", 1) for line in out.strip().splitlines())
    return _parse_date(values["notBefore"]), _parse_date(values["notAfter"])


def _parse_date(value):
    return datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))


def fingerprint(host, path):
    return run(host, f"openssl x509 -in {path} -noout -fingerprint -sha256").strip().split("=", 1)[1]


def handshake(host, port, name, cafile, strict=True):
    script = HANDSHAKE.replace("'", "'\"'\"'")
    mode = "strict" if strict else "default"
    out = run(host, f"python3 -c '{script}' {port} {name} '{cafile}' {mode}")
    return json.loads(out)


def served_fingerprint(host, port, name):
    return run(
        host,
        f"openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256",
    ).strip().split("=", 1)[1]


# --- the certificate ------------------------------------------------------------------------

def test_subject_names_the_domain(host):
    subject = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -subject -nameopt RFC2253")
    assert subject.strip() == f"subject=CN={DOMAIN},O=selfhost.mastodon self-signed origin"
    issuer = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -issuer -nameopt RFC2253")
    assert issuer.strip() == subject.strip().replace("subject=", "issuer=")


def test_subject_alt_names_are_the_domain_and_extra_names(host):
    out = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -ext subjectAltName")
    entries = {e.strip() for e in out.splitlines()[1].split(",")}
    assert entries == {f"DNS:{n}" for n in NAMES}


def test_is_a_server_leaf_not_a_ca(host):
    out = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -ext basicConstraints,extendedKeyUsage")
    assert "X509v3 Basic Constraints: critical" in out
    assert "CA:FALSE" in out
    assert "TLS Web Server Authentication" in out


def test_rsa_2048_key_by_default(host):
    out = run(host, f"openssl pkey -in {LIVE}/privkey.pem -noout -text")
    assert "Private-Key: (2048 bit" in out
    assert "publicExponent" in out


def test_validity_is_365_days_from_now(host):
    not_before, not_after = cert_dates(host, f"{LIVE}/fullchain.pem")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert not_after - not_before == datetime.timedelta(days=365)
    assert now - datetime.timedelta(hours=2) < not_before <= now + datetime.timedelta(minutes=5)


def test_key_matches_certificate(host):
    cert_pub = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -pubkey")
    key_pub = run(host, f"openssl pkey -in {LIVE}/privkey.pem -pubout")
    assert cert_pub == key_pub
    assert "BEGIN PUBLIC KEY" in cert_pub


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        (f"{LIVE}/privkey.pem", 0o600),
        (f"{LIVE}/fullchain.pem", 0o644),
        (f"{LIVE}/cert.pem", 0o644),
        (f"{LIVE}/chain.pem", 0o644),
        (LIVE, 0o755),
        (CA_FILE, 0o644),
        ("/etc/ssl/selfhost", 0o755),
    ],
)
def test_modes_and_owners(host, path, mode):
    f = host.file(path)
    assert f.exists
    assert not f.is_symlink
    assert f.user == "root"
    assert f.group == "root"
    assert f.mode == mode


def test_certbot_layout_copies_are_the_certificate(host):
    full = host.file(f"{LIVE}/fullchain.pem").content_string
    assert full.count("BEGIN CERTIFICATE") == 1
    assert host.file(f"{LIVE}/cert.pem").content_string == full
    assert host.file(f"{LIVE}/chain.pem").content_string == full


def test_ownership_marker_records_the_certificate(host):
    marker = host.file(f"{LIVE}/.selfsigned_tls-owner").content_string
    assert "Managed by Ansible" in marker
    recorded = [line.split(":", 1)[1].strip() for line in marker.splitlines()
                if line.startswith("sha256_fingerprint:")]
    assert [r.upper() for r in recorded] == [fingerprint(host, f"{LIVE}/fullchain.pem").upper()]


def test_cryptography_installed_by_the_role(host):
    assert host.package("python3-cryptography").is_installed


# --- the published CA file and real handshakes ----------------------------------------------

def test_ca_file_is_the_certificate(host):
    assert host.file(CA_FILE).content_string == host.file(f"{LIVE}/fullchain.pem").content_string


def test_ca_file_readable_by_an_unprivileged_user(host):
    # cloudflared runs as its own user; "nobody" stands in for it here.
    assert host.run(f"runuser -u nobody -- cat {CA_FILE}").rc == 0
    assert host.run(f"runuser -u nobody -- cat {LIVE}/privkey.pem").rc != 0


@pytest.mark.parametrize("name", sorted(NAMES - {"*.files.mastodon.example.test"}) + ["a.files.mastodon.example.test"])
@pytest.mark.parametrize("strict", [True, False], ids=["x509-strict", "default-flags"])
def test_handshake_verifies_with_the_ca_file(host, name, strict):
    result = handshake(host, 443, name, CA_FILE, strict=strict)
    assert result["ok"], result
    assert "rsa origin" in result["body"]


def test_handshake_with_the_wrong_name_fails(host):
    result = handshake(host, 443, "wrong.example.test", CA_FILE)
    assert not result["ok"]
    assert "mismatch" in result["error"].lower()


def test_handshake_without_the_ca_file_fails(host):
    result = handshake(host, 443, DOMAIN, "")
    assert not result["ok"]
    assert "self-signed" in result["error"] or "self signed" in result["error"]


def test_openssl_client_verifies_name_and_chain(host):
    base = (f"openssl s_client -connect 127.0.0.1:443 -verify_return_error -CAfile {CA_FILE}"
            f" -servername {DOMAIN} </dev/null")
    good = host.run(f"{base} -verify_hostname {DOMAIN}")
    assert good.rc == 0, good.stderr
    assert "Verify return code: 0 (ok)" in good.stdout
    wrong = host.run(f"{base} -verify_hostname wrong.example.test")
    assert wrong.rc != 0
    assert "hostname mismatch" in (wrong.stdout + wrong.stderr).lower()


# --- the ECDSA option ------------------------------------------------------------------------

def test_ecc_key_is_p256(host):
    out = run(host, f"openssl pkey -in {ECC_DIR}/privkey.pem -noout -text")
    assert "ASN1 OID: prime256v1" in out
    assert host.file(f"{ECC_DIR}/privkey.pem").mode == 0o600
    sig = run(host, f"openssl x509 -in {ECC_DIR}/fullchain.pem -noout -text")
    assert "ecdsa-with-SHA256" in sig
    assert "DNS:ecc.example.test" in sig


def test_ecc_handshake_verifies(host):
    result = handshake(host, 8443, "ecc.example.test", ECC_CA_FILE)
    assert result["ok"], result
    assert "ecc origin" in result["body"]


# --- renewal (side_effect.yml) ---------------------------------------------------------------

def test_near_expiry_certificate_was_made_by_the_role(host):
    near_after = cert_dates(host, f"{EVIDENCE}/near-expiry.pem")[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=4) < near_after - now <= datetime.timedelta(days=5)


def test_renewed_certificate_is_new_and_lasts_a_year(host):
    near_after = cert_dates(host, f"{EVIDENCE}/near-expiry.pem")[1]
    after = cert_dates(host, f"{LIVE}/fullchain.pem")[1]
    assert after - near_after > datetime.timedelta(days=350)
    old_serial = run(host, f"openssl x509 -in {EVIDENCE}/near-expiry.pem -noout -serial")
    new_serial = run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -serial")
    assert old_serial != new_serial


def test_renewal_kept_the_key(host):
    before = host.file(f"{EVIDENCE}/privkey-before.sha256").content_string.strip()
    assert before and host.file(f"{LIVE}/privkey.pem").sha256sum == before
    near_pub = run(host, f"openssl x509 -in {EVIDENCE}/near-expiry.pem -noout -pubkey")
    assert near_pub == run(host, f"openssl x509 -in {LIVE}/fullchain.pem -noout -pubkey")


def test_nginx_was_reloaded_with_the_renewed_certificate(host):
    # Before the renewal nginx served the short-lived certificate; now it serves the renewed
    # one, from the same main process: the role's handler reloaded (not restarted) nginx.
    assert fingerprint(host, f"{EVIDENCE}/served-before.pem") == fingerprint(host, f"{EVIDENCE}/near-expiry.pem")
    assert served_fingerprint(host, 443, DOMAIN) == fingerprint(host, f"{LIVE}/fullchain.pem")
    pid_before = host.file(f"{EVIDENCE}/nginx-pid-before").content_string.strip()
    assert pid_before != "0"
    assert run(host, "systemctl show -p MainPID --value nginx").strip() == pid_before
    journal = run(host, "journalctl -u nginx --no-pager -o cat")
    assert journal.count("Reloaded nginx") >= 2, journal


def test_published_ca_follows_the_renewal(host):
    assert fingerprint(host, CA_FILE) == fingerprint(host, f"{LIVE}/fullchain.pem")


# --- foreign certificates --------------------------------------------------------------------

def test_foreign_certificates_are_byte_identical(host):
    recorded = run(host, f"cat {EVIDENCE}/foreign.sha256")
    assert recorded.count("\n") == 10  # 2 x 4 archive files + 2 hand-made files
    check = host.run(f"sha256sum --check --strict {EVIDENCE}/foreign.sha256")
    assert check.rc == 0, check.stdout + check.stderr
    listing = run(host, f"find {FOREIGN_DIRS} -printf '%p %y %m %l\\n' | sort")
    assert listing == host.file(f"{EVIDENCE}/foreign.list").content_string


def test_no_marker_or_ca_file_for_foreign_certificates(host):
    for d in ("foreign.example.test", "handmade.example.test"):
        assert not host.file(f"/etc/letsencrypt/live/{d}/.selfsigned_tls-owner").exists
    assert not host.file("/etc/ssl/selfhost/foreign.example.test-origin.pem").exists
    assert not host.file("/etc/ssl/selfhost/other.example.test-origin.pem").exists
    assert host.file("/etc/letsencrypt/live/foreign.example.test/fullchain.pem").is_symlink


def test_force_replaces_certbot_links_but_not_the_archive(host):
    live = "/etc/letsencrypt/live/forced.example.test"
    for name in ("privkey.pem", "fullchain.pem", "cert.pem", "chain.pem"):
        f = host.file(f"{live}/{name}")
        assert f.is_file and not f.is_symlink, name
    assert host.file(f"{live}/privkey.pem").mode == 0o600
    subject = run(host, f"openssl x509 -in {live}/fullchain.pem -noout -subject -nameopt RFC2253")
    assert subject.strip() == "subject=CN=forced.example.test,O=selfhost.mastodon self-signed origin"
    assert host.file(f"{live}/.selfsigned_tls-owner").exists
    assert fingerprint(host, "/etc/ssl/selfhost/forced.example.test-origin.pem") == fingerprint(
        host, f"{live}/fullchain.pem")
    # certbot's own certificate is still in the archive, untouched (see the checksum test).
    old = run(host, "openssl x509 -in /etc/letsencrypt/archive/forced.example.test/cert1.pem -noout -subject -nameopt RFC2253")
    assert old.strip() == "subject=CN=forced.example.test"


# --- the role run by hand, as a user would see it -----------------------------------------------

def test_foreign_run_says_it_leaves_the_certificate_alone():
    result = ansible_playbook(SCENARIO / "foreign.yml", timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.count("NOT touching") == 2, out
    assert "symbolic links" in out
    assert "no ownership marker" in out
    assert "selfsigned_tls_force: true" in out
    assert "changed=0" in out


def test_invalid_domain_fails_before_any_change(host):
    result = ansible_playbook(SCENARIO / "foreign.yml", "-e", "selfsigned_tls_domain=Not_A..Name", timeout=600)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    # The validate entry point names the variable and says that nothing changed.
    assert "selfsigned_tls_domain ('Not_A..Name') must be lower case" in out
    assert "Nothing was changed." in out
    assert "changed=0" in result.stdout
    assert not host.file("/etc/letsencrypt/live/Not_A..Name").exists
