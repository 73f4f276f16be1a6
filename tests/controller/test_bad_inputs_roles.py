"""Bad inputs for every role's validate entry point (and site.yml's first play), run on the
controller with ansible-playbook: each must be refused in the validate entry point, before any
change, with a message that names the variable, and without printing any secret.

One ansible-playbook run per role: every case is a host of its own in a generated inventory
(local connection, check mode), so that one run measures many cases. The JSON callback gives
each host's result; the raw output is searched for the secrets.
"""
import json
import sys
from pathlib import Path

import pytest

from bad_inputs.recorder import record
from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "validate_only.yml"

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "QyNTUxOQAAACBsecretbodysecretbodysecretbodysecretbodysecretbodyAAAA==\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
SECRETS = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "secretbodysecretbody",
           "pw-ssh-login-9f3a", "tok-en-0b7e-not-real", "smtp-pw-51c0", "ab12" * 32, "short-pw-1",
           "s3-keyid-4d2a-not-real", "s3-secret-8e5f-not-real"]
TOKEN = "tok-en-0b7e-not-real"

BASE = {
    "base_os": {"base_os_ssh_authorized_keys": [KEY], "base_os_admin_user": "admin"},
    "selfsigned_tls": {"selfsigned_tls_domain": "social.example.org"},
    "mastodon_stack": {"mastodon_stack_domain": "social.example.org",
                       "mastodon_stack_owner_email": "owner@example.org",
                       "mastodon_stack_smtp_password": "smtp-pw-51c0",
                       # Valid queues in the baseline: the accepted case shows the check lets them pass.
                       "mastodon_stack_sidekiq_queues": ["default,8", "push", "scheduler"]},
    "cloudflare_tunnel": {"cloudflare_tunnel_hostname": "social.example.org",
                          "cloudflare_tunnel_account_id": "0123456789abcdef0123456789abcdef",
                          "cloudflare_tunnel_api_token": TOKEN},
    "mastodon_ops": {},
}


# Object storage on, every value valid: a case changes one thing. The key pair is secret.
S3_ON = {"mastodon_stack_s3_enabled": True, "mastodon_stack_s3_bucket": "mastodon-media",
         "mastodon_stack_s3_endpoint": "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
         "mastodon_stack_s3_alias_host": "media.example.org",
         "mastodon_stack_s3_access_key_id": "s3-keyid-4d2a-not-real",
         "mastodon_stack_s3_secret_access_key": "s3-secret-8e5f-not-real"}
R2_ON = {"cloudflare_tunnel_r2_bucket": "mastodon-media",
         "cloudflare_tunnel_r2_custom_domain": "media.example.org"}


def private_key_file(tmp):
    path = Path(tmp) / "id_ed25519"
    path.write_text(PRIVATE)
    return str(path)


def files(tmp):
    tmp = Path(tmp)
    (tmp / "empty.pub").write_text("")
    (tmp / "comments.pub").write_text("# my key\n\n# nothing else\n")
    (tmp / "garbage.pub").write_text("this is not a key\n")
    return tmp


# (role, variable named in the message, overrides). Paths under {tmp} are filled in.
CASES = {
    # base_os: keys
    "base_os keys empty list": ("base_os", "base_os_ssh_authorized_keys", {"base_os_ssh_authorized_keys": []}),
    "base_os private key file": ("base_os", "base_os_ssh_authorized_keys",
                                 {"base_os_ssh_authorized_keys": ["{private}"]}),
    "base_os pasted private key": ("base_os", "base_os_ssh_authorized_keys",
                                   {"base_os_ssh_authorized_keys": [PRIVATE]}),
    "base_os empty pub file": ("base_os", "base_os_ssh_authorized_keys",
                               {"base_os_ssh_authorized_keys": ["{tmp}/empty.pub"]}),
    "base_os comment-only pub file": ("base_os", "base_os_ssh_authorized_keys",
                                      {"base_os_ssh_authorized_keys": ["{tmp}/comments.pub"]}),
    "base_os garbage pub file": ("base_os", "base_os_ssh_authorized_keys",
                                 {"base_os_ssh_authorized_keys": ["{tmp}/garbage.pub"]}),
    "base_os missing key file": ("base_os", "base_os_ssh_authorized_keys",
                                 {"base_os_ssh_authorized_keys": ["/nonexistent/id_ed25519.pub"]}),
    "base_os key not base64": ("base_os", "base_os_ssh_authorized_keys",
                               {"base_os_ssh_authorized_keys": ["ssh-ed25519 AAAA!!!! x"]}),
    "base_os key type mismatch": ("base_os", "base_os_ssh_authorized_keys",
                                  {"base_os_ssh_authorized_keys": ["ssh-rsa " + KEY.split()[1]]}),
    "base_os dss key": ("base_os", "base_os_ssh_authorized_keys",
                        {"base_os_ssh_authorized_keys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP x"]}),
    "base_os one good one bad": ("base_os", "base_os_ssh_authorized_keys",
                                 {"base_os_ssh_authorized_keys": [KEY, "ssh-ed25519 AAAA"]}),
    "base_os key entry a number": ("base_os", "base_os_ssh_authorized_keys",
                                   {"base_os_ssh_authorized_keys": [KEY, 42]}),
    # base_os: the password login guard (ssh connection with a password; no connection is made)
    # The message names the variables involved; "ansible_ssh_private_key_file" appears only in
    # the password guard's message (it says how to prove a key).
    "base_os password login without provable key": (
        "base_os", "ansible_ssh_private_key_file",
        {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9,
         "ansible_password": "pw-ssh-login-9f3a", "HOME": "{tmp}"}),
    # base_os: sources and other values
    "base_os sources garbage": ("base_os", "base_os_ssh_allowed_sources",
                                {"base_os_ssh_allowed_sources": ["lan"]}),
    "base_os sources bad prefix": ("base_os", "base_os_ssh_allowed_sources",
                                   {"base_os_ssh_allowed_sources": ["10.0.0.0/33"]}),
    "base_os sources empty": ("base_os", "base_os_ssh_allowed_sources", {"base_os_ssh_allowed_sources": []}),
    "base_os sources comma list": ("base_os", "base_os_ssh_allowed_sources",
                                   {"base_os_ssh_allowed_sources": ["10.0.0.0/8,192.168.0.0/16"]}),
    "base_os port zero": ("base_os", "base_os_ssh_port", {"base_os_ssh_port": 0}),
    "base_os port too high": ("base_os", "base_os_ssh_port", {"base_os_ssh_port": 70000}),
    "base_os port wrong type": ("base_os", "base_os_ssh_port", {"base_os_ssh_port": "twenty-two"}),
    "base_os admin user root": ("base_os", "base_os_admin_user", {"base_os_admin_user": "root"}),
    "base_os admin user bad chars": ("base_os", "base_os_admin_user", {"base_os_admin_user": "Ad Min"}),
    "base_os swappiness": ("base_os", "base_os_swappiness", {"base_os_swappiness": 300}),
    "base_os swap size": ("base_os", "base_os_swap_size_mb", {"base_os_swap_size_mb": -5}),
    "base_os swap file relative": ("base_os", "base_os_swap_file", {"base_os_swap_file": "swapfile"}),
    "base_os reboot time": ("base_os", "base_os_unattended_upgrades_reboot_time",
                            {"base_os_unattended_upgrades_reboot_time": "25:00"}),
    "base_os timezone": ("base_os", "base_os_timezone", {"base_os_timezone": "Europe/../etc"}),
    "base_os upgrade choice": ("base_os", "base_os_upgrade", {"base_os_upgrade": "yolo"}),
    "base_os root login yes": ("base_os", "base_os_ssh_permit_root_login", {"base_os_ssh_permit_root_login": "yes"}),
    "base_os shell relative": ("base_os", "base_os_admin_shell", {"base_os_admin_shell": "bash"}),
    # selfsigned_tls
    "tls domain with scheme": ("selfsigned_tls", "selfsigned_tls_domain",
                               {"selfsigned_tls_domain": "https://social.example.org"}),
    "tls domain upper case": ("selfsigned_tls", "selfsigned_tls_domain", {"selfsigned_tls_domain": "Social.Example.org"}),
    "tls domain single label": ("selfsigned_tls", "selfsigned_tls_domain", {"selfsigned_tls_domain": "localhost"}),
    "tls domain wildcard": ("selfsigned_tls", "selfsigned_tls_domain", {"selfsigned_tls_domain": "*.example.org"}),
    "tls extra name bad": ("selfsigned_tls", "selfsigned_tls_extra_names",
                           {"selfsigned_tls_extra_names": ["ok.example.org", "bad_name"]}),
    "tls valid days zero": ("selfsigned_tls", "selfsigned_tls_valid_days", {"selfsigned_tls_valid_days": 0}),
    "tls renew not before expiry": ("selfsigned_tls", "selfsigned_tls_renew_before_days",
                                    {"selfsigned_tls_valid_days": 30, "selfsigned_tls_renew_before_days": 30}),
    "tls rsa small": ("selfsigned_tls", "selfsigned_tls_key_size",
                      {"selfsigned_tls_key_type": "RSA", "selfsigned_tls_key_size": 1024}),
    "tls dir relative": ("selfsigned_tls", "selfsigned_tls_dir", {"selfsigned_tls_dir": "ssl"}),
    "tls ca file dotdot": ("selfsigned_tls", "selfsigned_tls_ca_file", {"selfsigned_tls_ca_file": "/etc/../tmp/ca.pem"}),
    "tls key type choice": ("selfsigned_tls", "selfsigned_tls_key_type", {"selfsigned_tls_key_type": "DSA"}),
    # mastodon_stack
    "stack domain with path": ("mastodon_stack", "mastodon_stack_domain", {"mastodon_stack_domain": "social.example.org/x"}),
    "stack domain empty": ("mastodon_stack", "mastodon_stack_domain", {"mastodon_stack_domain": ""}),
    "stack domain one-letter tld": ("mastodon_stack", "mastodon_stack_domain", {"mastodon_stack_domain": "social.example.c"}),
    "stack web domain bad": ("mastodon_stack", "mastodon_stack_web_domain", {"mastodon_stack_web_domain": "web example"}),
    "stack email no at": ("mastodon_stack", "mastodon_stack_owner_email", {"mastodon_stack_owner_email": "owner.example.org"}),
    "stack email bad domain": ("mastodon_stack", "mastodon_stack_owner_email",
                               {"mastodon_stack_owner_email": "owner@localhost"}),
    "stack username too long": ("mastodon_stack", "mastodon_stack_owner_username",
                                {"mastodon_stack_owner_username": "x" * 31}),
    "stack username dash": ("mastodon_stack", "mastodon_stack_owner_username", {"mastodon_stack_owner_username": "the-owner"}),
    "stack version": ("mastodon_stack", "mastodon_stack_version", {"mastodon_stack_version": "4.5"}),
    "stack streaming ports empty": ("mastodon_stack", "mastodon_stack_streaming_ports", {"mastodon_stack_streaming_ports": []}),
    "stack streaming port range": ("mastodon_stack", "mastodon_stack_streaming_ports",
                                   {"mastodon_stack_streaming_ports": [4000, 70000]}),
    "stack web port": ("mastodon_stack", "mastodon_stack_web_port", {"mastodon_stack_web_port": 0}),
    "stack relay http": ("mastodon_stack", "mastodon_stack_relays", {"mastodon_stack_relays": ["http://relay.example/inbox"]}),
    "stack secrets file relative": ("mastodon_stack", "mastodon_stack_secrets_file",
                                    {"mastodon_stack_secrets_file": "secrets.env"}),
    "stack secrets unknown name": ("mastodon_stack", "mastodon_stack_secrets",
                                   {"mastodon_stack_secrets": {"SECRET_KEY_BAS": "ab12" * 32}}),
    "stack secrets value with quote": ("mastodon_stack", "mastodon_stack_secrets",
                                       {"mastodon_stack_secrets": {"OTP_SECRET": "ab12" * 32 + "'"}}),
    "stack redis password too short": ("mastodon_stack", "mastodon_stack_secrets",
                                       {"mastodon_stack_secrets": {"REDIS_PASSWORD": "short-pw-1"}}),
    "stack password file relative": ("mastodon_stack", "mastodon_stack_owner_password_file",
                                     {"mastodon_stack_owner_password_file": "pw.txt"}),
    # mastodon_stack: object storage (checked only when it is on)
    "stack s3 bucket upper case": ("mastodon_stack", "mastodon_stack_s3_bucket",
                                   dict(S3_ON, mastodon_stack_s3_bucket="Mastodon_Media")),
    "stack s3 bucket empty": ("mastodon_stack", "mastodon_stack_s3_bucket", dict(S3_ON, mastodon_stack_s3_bucket="")),
    "stack s3 endpoint http": ("mastodon_stack", "mastodon_stack_s3_endpoint",
                               dict(S3_ON, mastodon_stack_s3_endpoint="http://s3.example.org")),
    "stack s3 endpoint with path": ("mastodon_stack", "mastodon_stack_s3_endpoint",
                                    dict(S3_ON, mastodon_stack_s3_endpoint="https://s3.example.org/mastodon-media")),
    "stack s3 endpoint bare host": ("mastodon_stack", "mastodon_stack_s3_endpoint",
                                    dict(S3_ON, mastodon_stack_s3_endpoint="s3.example.org")),
    "stack s3 region bad": ("mastodon_stack", "mastodon_stack_s3_region", dict(S3_ON, mastodon_stack_s3_region="EU West")),
    "stack s3 alias host missing": ("mastodon_stack", "mastodon_stack_s3_alias_host",
                                    dict(S3_ON, mastodon_stack_s3_alias_host="")),
    "stack s3 alias host with scheme": ("mastodon_stack", "mastodon_stack_s3_alias_host",
                                        dict(S3_ON, mastodon_stack_s3_alias_host="https://media.example.org")),
    "stack s3 alias host is the domain": ("mastodon_stack", "mastodon_stack_s3_alias_host",
                                          dict(S3_ON, mastodon_stack_s3_alias_host="social.example.org")),
    "stack s3 permission choice": ("mastodon_stack", "mastodon_stack_s3_permission",
                                   dict(S3_ON, mastodon_stack_s3_permission="public-read-write")),
    "stack s3 protocol choice": ("mastodon_stack", "mastodon_stack_s3_protocol",
                                 dict(S3_ON, mastodon_stack_s3_protocol="ftp")),
    "stack s3 secret key missing": ("mastodon_stack", "mastodon_stack_s3_secret_access_key",
                                    dict(S3_ON, mastodon_stack_s3_secret_access_key="")),
    "stack s3 key id missing": ("mastodon_stack", "mastodon_stack_s3_access_key_id",
                                dict(S3_ON, mastodon_stack_s3_access_key_id="")),
    "stack s3 secret key with line break": ("mastodon_stack", "mastodon_stack_s3_secret_access_key",
                                            dict(S3_ON, mastodon_stack_s3_secret_access_key="s3-secret-8e5f-not-real\nx")),
    "stack s3 env extra repeats a setting": ("mastodon_stack", "mastodon_stack_env_extra",
                                             dict(S3_ON, mastodon_stack_env_extra={"S3_BUCKET": "other"})),
    "stack s3 settings hold the key pair": ("mastodon_stack", "mastodon_stack_s3_settings",
                                            {"mastodon_stack_s3_settings": {
                                                "AWS_SECRET_ACCESS_KEY": "s3-secret-8e5f-not-real"}}),
    "stack s3 settings bad bucket": ("mastodon_stack", "mastodon_stack_s3_settings.S3_BUCKET",
                                     dict(S3_ON, mastodon_stack_s3_settings={"S3_ENABLED": "true",
                                                                             "S3_BUCKET": "no"})),
    # mastodon_stack: several hosts (Sidekiq queues per host, PgBouncer)
    "stack sidekiq queue upper case": ("mastodon_stack", "mastodon_stack_sidekiq_queues",
                                       {"mastodon_stack_sidekiq_queues": ["Default"]}),
    "stack sidekiq queue weight zero": ("mastodon_stack", "mastodon_stack_sidekiq_queues",
                                        {"mastodon_stack_sidekiq_queues": ["push,0"]}),
    "stack sidekiq queue weight word": ("mastodon_stack", "mastodon_stack_sidekiq_queues",
                                        {"mastodon_stack_sidekiq_queues": ["push,high"]}),
    "stack sidekiq queue twice": ("mastodon_stack", "mastodon_stack_sidekiq_queues",
                                  {"mastodon_stack_sidekiq_queues": ["push", "push,2"]}),
    "stack sidekiq queue option injected": ("mastodon_stack", "mastodon_stack_sidekiq_queues",
                                            {"mastodon_stack_sidekiq_queues": ["push -c 99"]}),
    "stack pgbouncer without a db group": ("mastodon_stack", "mastodon_stack_pgbouncer_enabled",
                                           {"mastodon_stack_pgbouncer_enabled": True}),
    "stack pgbouncer port of postgresql": ("mastodon_stack", "mastodon_stack_pgbouncer_port",
                                           {"mastodon_stack_pgbouncer_port": 5432}),
    # cloudflare_tunnel
    "tunnel hostname empty": ("cloudflare_tunnel", "cloudflare_tunnel_hostname", {"cloudflare_tunnel_hostname": ""}),
    "tunnel hostname scheme": ("cloudflare_tunnel", "cloudflare_tunnel_hostname",
                               {"cloudflare_tunnel_hostname": "https://social.example.org"}),
    "tunnel hostname wildcard": ("cloudflare_tunnel", "cloudflare_tunnel_hostname",
                                 {"cloudflare_tunnel_hostname": "*.example.org"}),
    "tunnel account id short": ("cloudflare_tunnel", "cloudflare_tunnel_account_id",
                                {"cloudflare_tunnel_account_id": "12345"}),
    "tunnel account id upper": ("cloudflare_tunnel", "cloudflare_tunnel_account_id",
                                {"cloudflare_tunnel_account_id": "0123456789ABCDEF0123456789ABCDEF"}),
    "tunnel name bad": ("cloudflare_tunnel", "cloudflare_tunnel_name", {"cloudflare_tunnel_name": "my tunnel"}),
    "tunnel zone bad": ("cloudflare_tunnel", "cloudflare_tunnel_zone", {"cloudflare_tunnel_zone": "example"}),
    "tunnel service ftp": ("cloudflare_tunnel", "cloudflare_tunnel_service", {"cloudflare_tunnel_service": "ftp://bad"}),
    "tunnel service trailing": ("cloudflare_tunnel", "cloudflare_tunnel_service",
                                {"cloudflare_tunnel_service": "https://localhost:443 x"}),
    "tunnel service path": ("cloudflare_tunnel", "cloudflare_tunnel_service",
                            {"cloudflare_tunnel_service": "https://localhost/mastodon"}),
    "tunnel origin name bad in verify": ("cloudflare_tunnel", "cloudflare_tunnel_origin_server_name",
                                         {"cloudflare_tunnel_origin_tls": "verify",
                                          "cloudflare_tunnel_origin_server_name": "bad name"}),
    "tunnel api url": ("cloudflare_tunnel", "cloudflare_tunnel_api_url", {"cloudflare_tunnel_api_url": "api.cloudflare.com"}),
    "tunnel token file relative": ("cloudflare_tunnel", "cloudflare_tunnel_token_file",
                                   {"cloudflare_tunnel_token_file": "token"}),
    "tunnel metrics port": ("cloudflare_tunnel", "cloudflare_tunnel_metrics_port", {"cloudflare_tunnel_metrics_port": 0}),
    "tunnel deb without file": ("cloudflare_tunnel", "cloudflare_tunnel_deb_file",
                                {"cloudflare_tunnel_install_method": "deb"}),
    "tunnel binary without src": ("cloudflare_tunnel", "cloudflare_tunnel_binary_src",
                                  {"cloudflare_tunnel_install_method": "binary"}),
    "tunnel token empty": ("cloudflare_tunnel", "cloudflare_tunnel_api_token", {"cloudflare_tunnel_api_token": ""}),
    "tunnel token with space": ("cloudflare_tunnel", "cloudflare_tunnel_api_token",
                                {"cloudflare_tunnel_api_token": "tok-en-0b7e-not-real x"}),
    "tunnel tls mode choice": ("cloudflare_tunnel", "cloudflare_tunnel_origin_tls", {"cloudflare_tunnel_origin_tls": "sometimes"}),
    "tunnel r2 bucket with dots": ("cloudflare_tunnel", "cloudflare_tunnel_r2_bucket",
                                   dict(R2_ON, cloudflare_tunnel_r2_bucket="media.example.org")),
    "tunnel r2 bucket too short": ("cloudflare_tunnel", "cloudflare_tunnel_r2_bucket",
                                   dict(R2_ON, cloudflare_tunnel_r2_bucket="mm")),
    "tunnel r2 custom domain missing": ("cloudflare_tunnel", "cloudflare_tunnel_r2_custom_domain",
                                        dict(R2_ON, cloudflare_tunnel_r2_custom_domain="")),
    "tunnel r2 custom domain is the hostname": ("cloudflare_tunnel", "cloudflare_tunnel_r2_custom_domain",
                                                dict(R2_ON, cloudflare_tunnel_r2_custom_domain="social.example.org")),
    "tunnel r2 jurisdiction choice": ("cloudflare_tunnel", "cloudflare_tunnel_r2_jurisdiction",
                                      dict(R2_ON, cloudflare_tunnel_r2_jurisdiction="mars")),
    # mastodon_ops
    "ops keep zero": ("mastodon_ops", "mastodon_ops_backup_keep", {"mastodon_ops_backup_keep": 0}),
    "ops restore from relative": ("mastodon_ops", "mastodon_ops_restore_from", {"mastodon_ops_restore_from": "backups/x"}),
    "ops restore from dotdot": ("mastodon_ops", "mastodon_ops_restore_from",
                                {"mastodon_ops_restore_from": "/var/backups/mastodon/../../etc"}),
    "ops domain bad": ("mastodon_ops", "mastodon_ops_domain", {"mastodon_ops_domain": "https://x.example"}),
    "ops account id bad": ("mastodon_ops", "mastodon_ops_cloudflare_account_id",
                           {"mastodon_ops_cloudflare_account_id": "nope"}),
    "ops calendar empty": ("mastodon_ops", "mastodon_ops_backup_on_calendar", {"mastodon_ops_backup_on_calendar": " "}),
    "ops backup dir relative": ("mastodon_ops", "mastodon_ops_backup_dir", {"mastodon_ops_backup_dir": "backups"}),
    "ops bin dir dotdot": ("mastodon_ops", "mastodon_ops_bin_dir", {"mastodon_ops_bin_dir": "/usr/../tmp"}),
    "ops redis timeout": ("mastodon_ops", "mastodon_ops_backup_redis_timeout", {"mastodon_ops_backup_redis_timeout": 0}),
    "ops fetch dir relative": ("mastodon_ops", "mastodon_ops_backup_fetch_dir",
                               {"mastodon_ops_backup_fetch": True, "mastodon_ops_backup_fetch_dir": "here"}),
}
ROLES = sorted({case[0] for case in CASES.values()})


def host_name(case):
    return "case_" + "".join(c if c.isalnum() else "_" for c in case)


def fill(value, tmp, private):
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp)).replace("{private}", private)
    if isinstance(value, list):
        return [fill(v, tmp, private) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, tmp, private) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every role's cases (one ansible-playbook run per role); return per-case facts."""
    tmp = files(tmp_path_factory.mktemp("bad-inputs"))
    private = private_key_file(tmp)
    results = {}
    for role in ROLES + ["accepted"]:
        hosts = {}
        for case, (case_role, _var, overrides) in CASES.items():
            if role != "accepted" and case_role != role:
                continue
            if role == "accepted":
                continue
            values = dict(BASE[case_role], **fill(overrides, tmp, private))
            values.pop("HOME", None)
            hosts[host_name(case)] = dict(values, case_role=case_role, ansible_connection=values.get(
                "ansible_connection", "local"), ansible_python_interpreter=sys.executable)
        if role == "accepted":
            # The valid baseline of every role must pass: the checks refuse bad values only.
            hosts = {"accepted_" + r: dict(BASE[r], case_role=r, ansible_connection="local",
                                           ansible_python_interpreter=sys.executable) for r in ROLES}
        inventory = tmp / ("inventory-%s.json" % role)
        inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
        proc = ansible_playbook(PLAYBOOK, "--check", "--forks", "10", inventory=inventory, timeout=900,
                                env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
                                     "HOME": str(tmp), "SSH_AUTH_SOCK": None})
        raw = proc.output
        data = json.loads(proc.stdout)
        for host in hosts:
            facts = {"failed": False, "msgs": [], "accepted": False, "changed": False}
            for play in data["plays"]:
                for task in play["tasks"]:
                    result = task["hosts"].get(host)
                    if result is None:
                        continue
                    if result.get("changed"):
                        facts["changed"] = True
                    for item in result.get("results") or [result]:
                        if item.get("failed"):
                            facts["failed"] = True
                            facts["msgs"].append(str(item.get("msg", "")))
                    if result.get("msg") == "VALIDATE-ACCEPTED":
                        facts["accepted"] = True
            facts["secret_printed"] = any(secret in raw for secret in SECRETS)
            facts["raw_tail"] = raw[-3000:]
            results[host] = facts
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_refused_in_validate_with_the_variable_named(outcomes, case):
    _role, variable, _overrides = CASES[case]
    facts = outcomes[host_name(case)]
    names = any(variable in msg for msg in facts["msgs"])
    record("roles", case, facts["failed"] and not facts["accepted"], facts["changed"], names,
           facts["secret_printed"])
    assert facts["failed"] and not facts["accepted"], facts
    assert not facts["changed"], facts
    assert names, facts["msgs"]
    assert not facts["secret_printed"]


@pytest.mark.parametrize("role", ROLES)
def test_the_valid_baseline_is_accepted(outcomes, role):
    facts = outcomes["accepted_" + role]
    assert facts["accepted"] and not facts["failed"], facts


def test_deprecated_admin_names_are_still_read_and_warned_about(tmp_path):
    """mastodon_stack_admin_* (the names before mastodon_stack_owner_*) still drive the checks
    for one release, with a deprecation warning naming the new names."""
    stack = {"mastodon_stack_domain": "social.example.org", "case_role": "mastodon_stack",
             "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {"alias_good": dict(stack, mastodon_stack_admin_email="owner@example.org",
                                mastodon_stack_admin_username="me"),
             "alias_bad": dict(stack, mastodon_stack_admin_email="owner.example.org")}
    inventory = tmp_path / "inventory-alias.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    proc = ansible_playbook(PLAYBOOK, "--check", inventory=inventory, timeout=600,
                            env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "HOME": str(tmp_path)})
    msgs = {host: [] for host in hosts}
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                for item in result.get("results") or [result]:
                    msgs[host].append((bool(item.get("failed")), str(item.get("msg", ""))))
    good = msgs["alias_good"]
    assert (False, "VALIDATE-ACCEPTED") in good, good
    assert any("DEPRECATED: mastodon_stack_admin_email, mastodon_stack_admin_username will be removed" in m
               and "mastodon_stack_owner_email, mastodon_stack_owner_username" in m for _f, m in good), good
    bad = msgs["alias_bad"]
    assert any(failed and "mastodon_stack_owner_email ('owner.example.org')" in m for failed, m in bad), bad
    assert (False, "VALIDATE-ACCEPTED") not in bad, bad
