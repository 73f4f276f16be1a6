"""Verify the role mastodon_stack as a user would, with the Mastodon TEST DOUBLE in place.

The web, streaming, rails and tootctl entry points are the TEST DOUBLE's (tests/mastodon_double);
PostgreSQL, Redis, nginx, systemd, Node.js and Ruby are the real Debian ones.
"""

import base64
import json
import os
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

LIVE = "/home/mastodon/live"
INVOCATIONS = LIVE + "/log/double-invocations.log"
SECRETS = "/etc/mastodon/secrets.env"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
ROLE_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                              "roles", "mastodon_stack", "templates") + "/"
MANAGED_HEADER = "Managed by Ansible (selfhost.mastodon.mastodon_stack); local edits are overwritten."


def _env(host, path):
    values = {}
    for line in host.file(path).content_string.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            # .env.production single-quotes every value (taken literally by dotenv).
            quoted = re.match(r"^'([^']*)'$", match.group(2))
            values[match.group(1)] = quoted.group(1) if quoted else match.group(2)
    return values


def _invocations(host):
    return [json.loads(line) for line in host.file(INVOCATIONS).content_string.splitlines() if line]


def _curl(host, *args):
    return host.run("curl -sk --max-time 5 " + " ".join(args))


@pytest.mark.parametrize("unit", [
    "mastodon-web.service", "mastodon-sidekiq.service", "mastodon-streaming.service",
    "mastodon-streaming@4000.service", "nginx.service", "postgresql.service", "redis-server.service",
])
def test_service_active_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running, unit
    assert service.is_enabled, unit


@pytest.mark.parametrize("port", [3000, 4000, 443])
def test_listens_on_loopback_only(host, port):
    listeners = host.run("ss -ltnH").stdout.split("\n")
    addresses = [line.split()[3] for line in listeners if line.strip()]
    on_port = [a for a in addresses if a.rsplit(":", 1)[1] == str(port)]
    assert on_port == ["127.0.0.1:%d" % port]


def test_nginx_not_reachable_on_other_addresses(host):
    address = host.run("hostname -I").stdout.split()[0]
    assert not address.startswith("127.")
    result = host.run("curl -sk --max-time 5 -o /dev/null https://%s/health" % address)
    assert result.rc == 7  # connection refused


def test_health_through_nginx_with_self_signed_certificate(host):
    result = host.run("curl -vk --max-time 5 -o /dev/null -w '%{http_code}' https://localhost/health")
    assert result.stdout == "200"
    assert re.search(r"subject: .*CN ?= ?social\.example\.test", result.stderr)
    assert re.search(r"issuer: .*CN ?= ?social\.example\.test", result.stderr)
    assert "SSL certificate verify" not in result.stdout
    strict = host.run("curl -s --max-time 5 -o /dev/null https://localhost/health")
    assert strict.rc == 60  # the certificate is self-signed: verification fails without -k


def test_root_is_routed_to_puma(host):
    body = json.loads(_curl(host, "https://localhost/").stdout)
    assert body["double"] == "mastodon-web TEST DOUBLE"
    assert body["x_forwarded_proto"] == "https"
    assert body["peer"] == "127.0.0.1"


def test_cf_connecting_ip_reaches_the_app(host):
    body = json.loads(_curl(host, "-H 'CF-Connecting-IP: 203.0.113.7'", "https://localhost/").stdout)
    assert body["client_ip"] == "203.0.113.7"
    assert body["x_real_ip"] == "203.0.113.7"
    without = json.loads(_curl(host, "https://localhost/").stdout)
    assert without["client_ip"] == "127.0.0.1"


def test_streaming_health_through_nginx(host):
    result = _curl(host, "-o /dev/null -w '%{http_code}'", "https://localhost/api/v1/streaming/health")
    assert result.stdout == "200"


def test_streaming_websocket_upgrade_through_nginx(host):
    # Headers on stdout, the (binary) first websocket frame made printable after them.
    result = host.run(
        "curl -sk -N --http1.1 --max-time 3 -D - -o /tmp/ws-frame.bin -H 'Connection: Upgrade' "
        "-H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: %s' "
        "'https://localhost/api/v1/streaming?stream=public'; tr -c '[:print:]' '.' < /tmp/ws-frame.bin"
        % WS_KEY)
    head = result.stdout.split("\r\n")
    assert head[0].startswith("HTTP/1.1 101"), result.stdout[:200]
    assert "Sec-WebSocket-Accept: %s" % WS_ACCEPT in head
    assert "mastodon-streaming TEST DOUBLE" in result.stdout


# --- The loopback guard (mastodon_stack_loopback_guard, issue 25) -----------------------------
# Another local account must not reach Puma or streaming past nginx (it could claim any visitor
# address there with its own X-Forwarded-For), nor nginx on loopback (CF-Connecting-IP is trusted
# from 127.0.0.1); root (cloudflared, the health checks), mastodon and nginx's www-data still can.
# "nobody" stands for any other account of the laptop.
GUARDED = {3000: "/health", 4000: "/api/v1/streaming/health"}


def _as(host, user, url, *args):
    return host.run("runuser -u %s -- curl -sS --max-time 5 -o /dev/null -w '%%{http_code}' %s %s"
                    % (user, " ".join(args), url))


@pytest.mark.parametrize("port", sorted(GUARDED))
def test_another_local_account_cannot_reach_puma_or_streaming(host, port):
    for address in ("127.0.0.1", host.run("hostname -I").stdout.split()[0]):
        result = _as(host, "nobody", "http://%s:%d%s" % (address, port, GUARDED[port]),
                     "-H 'X-Forwarded-For: 203.0.113.66'")
        if address != "127.0.0.1":
            # Puma and streaming listen on loopback only: nothing answers there anyway.
            assert result.rc == 7, (address, result.rc, result.stderr)
            continue
        # Refused with a TCP reset (curl: could not connect, exit 7), not a timeout or a reply.
        assert result.rc == 7, (port, result.rc, result.stdout, result.stderr)
        assert result.stdout == "000"


@pytest.mark.parametrize("user", ["root", "mastodon", "www-data"])
@pytest.mark.parametrize("port", sorted(GUARDED))
def test_root_mastodon_and_nginx_still_reach_puma_and_streaming(host, user, port):
    result = _as(host, user, "http://127.0.0.1:%d%s" % (port, GUARDED[port]))
    assert (result.rc, result.stdout) == (0, "200"), (user, port, result.stderr)


@pytest.mark.parametrize("path", ["/health", "/api/v1/streaming/health"])
def test_another_local_account_cannot_claim_a_visitor_address_through_nginx(host, path):
    # nginx trusts CF-Connecting-IP from 127.0.0.1 (where cloudflared, root, connects): its port
    # on loopback is guarded the same way, so the header cannot come from another account.
    result = _as(host, "nobody", "https://localhost" + path, "-k", "-H 'CF-Connecting-IP: 203.0.113.66'")
    assert (result.rc, result.stdout) == (7, "000"), (path, result.rc, result.stderr)


@pytest.mark.parametrize("user", ["root", "mastodon", "www-data"])
def test_root_mastodon_and_nginx_are_still_served_through_nginx(host, user):
    result = _as(host, user, "https://localhost/health", "-k")
    assert (result.rc, result.stdout) == (0, "200"), (user, result.stderr)


def test_the_guard_is_its_own_table_and_survives_a_restart_of_nftables(host):
    assert host.service("mastodon-loopback-guard.service").is_enabled
    table = host.check_output("nft list table inet selfhost_mastodon_loopback")
    assert "reject with tcp reset" in table and "dport { 443, 3000, 4000 }" in table, table
    # nftables.service's restart flushes the whole ruleset; the guard (PartOf) is loaded again.
    host.run_expect([0], "systemctl restart nftables.service")
    assert host.run("nft list table inet selfhost_mastodon_loopback").rc == 0
    assert _as(host, "nobody", "http://127.0.0.1:3000/health").rc == 7


def test_default_site_removed_and_config_valid(host):
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    assert host.file("/etc/nginx/sites-enabled/mastodon").linked_to == "/etc/nginx/sites-available/mastodon"
    assert host.run("nginx -t").rc == 0


def test_env_production_owner_and_mode(host):
    env = host.file(LIVE + "/.env.production")
    assert env.user == "mastodon"
    assert env.group == "mastodon"
    assert env.mode == 0o600
    values = _env(host, LIVE + "/.env.production")
    assert values["LOCAL_DOMAIN"] == "social.example.test"
    assert values["SINGLE_USER_MODE"] == "true"
    assert values["TRUSTED_PROXY_IP"] == "127.0.0.1"
    assert values["DB_USER"] == "mastodon"


def test_otp_secret_only_in_the_secrets_file(host):
    """The double's release (v4.9.0-double) is newer than 4.4, which stopped reading OTP_SECRET:
    .env.production goes without it, the secrets file keeps it."""
    env = _env(host, LIVE + "/.env.production")
    assert "OTP_SECRET" not in env and "SECRET_KEY_BASE" in env
    assert re.search(r"(?m)^OTP_SECRET=[0-9a-f]{128}$", host.file(SECRETS).content_string)


def test_uploads_are_served_from_disk_with_hardening_headers(host):
    """nginx serves /system/ from the public folder with the headers of dist/nginx.conf; a
    missing static file is nginx's 404, never a request to the app."""
    path = LIVE + "/public/system/selfhost-test/probe.txt"
    host.run("install -D -m 0644 -o mastodon -g mastodon /dev/null %s && echo probe > %s" % (path, path))
    head = _curl(host, "-D - -o /dev/null", "https://localhost/system/selfhost-test/probe.txt").stdout
    assert head.startswith("HTTP/2 200") or head.startswith("HTTP/1.1 200"), head
    lower = head.lower()
    assert "x-content-type-options: nosniff" in lower
    assert "content-security-policy: default-src 'none'; form-action 'none'" in lower
    assert "cache-control: public, max-age=2419200, immutable" in lower
    missing = _curl(host, "-o /dev/null -w '%{http_code}'", "https://localhost/packs/selfhost-missing.js").stdout
    assert missing == "404"
    host.run("rm -rf %s" % (LIVE + "/public/system/selfhost-test"))


def test_secrets_file_is_root_only(host):
    secrets = host.file(SECRETS)
    assert secrets.user == "root" and secrets.mode == 0o600
    assert host.file("/etc/mastodon").mode == 0o700


def test_secrets_have_mastodons_formats(host):
    values = _env(host, SECRETS)
    env = _env(host, LIVE + "/.env.production")
    for name in ("SECRET_KEY_BASE", "OTP_SECRET"):
        assert re.match(r"^[0-9a-f]{128}$", values[name])
    for name in ("ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
                 "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
                 "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"):
        assert re.match(r"^[A-Za-z0-9]{32}$", values[name])
    private = base64.urlsafe_b64decode(values["VAPID_PRIVATE_KEY"])
    public = base64.urlsafe_b64decode(values["VAPID_PUBLIC_KEY"])
    assert len(private) == 32 and len(public) == 65
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    derived = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1()).public_key()
    assert derived.public_numbers() == point.public_numbers()
    # .env.production carries every secret of the file but OTP_SECRET, which the double's
    # release (newer than 4.4) does not read (test_otp_secret_only_in_the_secrets_file).
    for name, value in values.items():
        if name != "OTP_SECRET":
            assert env[name] == value


def test_secrets_unchanged_since_first_converge(host):
    recorded = host.file("/root/.mastodon-stack-test-secrets.sha256").content_string
    assert host.run("sha256sum %s" % SECRETS).stdout == recorded
    recorded_env = host.file("/root/.mastodon-stack-test-env-secrets.sha256").content_string
    now_env = host.run(
        "grep -E '^(SECRET_KEY_BASE|OTP_SECRET|VAPID_|ACTIVE_RECORD_ENCRYPTION_)' %s/.env.production"
        " | sha256sum" % LIVE).stdout
    assert now_env == recorded_env


def test_yarn_is_the_release_pinned_one_through_corepack(host):
    """package.json's packageManager names Yarn 4; corepack fetched it, Yarn 1 is nowhere."""
    pinned = json.loads(host.file(LIVE + "/package.json").content_string)["packageManager"]
    version = pinned.split("@", 1)[1].split("+", 1)[0]
    assert version.startswith("4.")
    yarn = host.run("cd %s && sudo -u mastodon env COREPACK_ENABLE_DOWNLOAD_PROMPT=0 "
                    "COREPACK_ENABLE_NETWORK=0 /usr/local/bin/yarn --version" % LIVE)
    assert yarn.rc == 0, yarn.stderr
    assert yarn.stdout.strip() == version
    assert host.file("/usr/local/bin/yarn").is_symlink
    assert "corepack" in host.file("/usr/local/bin/yarn").linked_to
    assert not host.package("yarnpkg").is_installed
    # Yarn 4's install (Plug'n'Play) ran: its state file is there, no node_modules of Yarn 1.
    assert host.file(LIVE + "/.yarn/install-state.gz").exists
    assert not host.file(LIVE + "/node_modules/.yarn-integrity").exists


def test_database_set_up_once_and_assets_built_once(host):
    calls = _invocations(host)
    rails = [c["argv"] for c in calls if c["program"] == "rails"]
    assert rails.count(["db:setup"]) == 1
    assert rails.count(["assets:precompile"]) == 1
    assert ["db:migrate"] not in rails  # first install: db:setup only
    assert all(c["rails_env"] == "production" for c in calls)
    assert all(c["user"] == "mastodon" for c in calls)
    manifest = json.loads(host.file(LIVE + "/public/packs/manifest.json").content_string)
    assert manifest["release"] == "v4.9.0-double"


def test_owner_account_created_once_and_approved(host):
    calls = [c["argv"] for c in _invocations(host) if c["program"] == "tootctl"]
    creates = [a for a in calls if a[:2] == ["accounts", "create"]]
    assert creates == [["accounts", "create", "owner", "--email", "owner@example.test",
                        "--confirmed", "--role", "Owner"]]
    assert calls.count(["accounts", "approve", "owner"]) == 1
    row = host.run(
        "sudo -u mastodon psql -X -tA -d mastodon_production -c "
        "\"SELECT u.email, u.role, u.confirmed, u.approved FROM accounts a JOIN users u "
        "ON u.account_id = a.id WHERE a.username = 'owner' AND a.domain IS NULL\"").stdout.strip()
    assert row == "owner@example.test|Owner|t|t"


def test_owner_password_file_root_only(host):
    password = host.file("/root/mastodon-owner-password.txt")
    assert password.user == "root" and password.mode == 0o600
    assert re.match(r"^\S{16,}\n$", password.content_string)


def test_postgresql_role_database_and_tuning(host):
    role = host.run("sudo -u postgres psql -X -tA -c "
                    "\"SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = 'mastodon'\"")
    assert role.stdout.strip() == "t|f"
    owner = host.run("sudo -u postgres psql -X -tA -c "
                     "\"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mastodon_production'\"")
    assert owner.stdout.strip() == "mastodon"
    # The scenario plans the memory budget for an 8 GB laptop (mastodon_stack_memory_total_mb 7953).
    expected = {"shared_buffers": "954MB", "work_mem": "16MB", "max_connections": "30"}
    for name, value in expected.items():
        shown = host.run("sudo -u postgres psql -X -tA -c 'SHOW %s'" % name).stdout.strip()
        assert shown == value, name
    budget = host.file("/var/lib/mastodon-stack/memory-budget.txt").content_string
    assert "limit 3976 MB of 7953 MB RAM: fits" in budget, budget


REDIS_CLI = (f"REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' {SECRETS}) "
             "redis-cli --no-auth-warning")


def test_redis_noeviction(host):
    result = host.run(f"{REDIS_CLI} config get maxmemory-policy")
    assert result.stdout.split() == ["maxmemory-policy", "noeviction"]


def test_redis_asks_for_the_password_from_the_secrets_file(host):
    password = _env(host, SECRETS)["REDIS_PASSWORD"]
    assert re.match(r"^[0-9a-f]{64}$", password)
    # Mastodon gets it from .env.production (test_secrets_have_mastodons_formats compares).
    refused = host.run("redis-cli PING")
    assert "NOAUTH" in refused.stdout + refused.stderr, refused.stdout
    assert host.run(f"{REDIS_CLI} PING").stdout.strip() == "PONG"
    conf = host.file("/etc/redis/redis.conf")
    assert conf.mode & 0o007 == 0, oct(conf.mode)
    assert f"requirepass {password}" in conf.content_string.splitlines()
    # Not on any command line (Redis's own, or a client's).
    listing = host.check_output("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
    assert password not in listing


def test_units_keep_sandboxing_and_sizes(host):
    web = host.run("systemctl show mastodon-web.service -p ProtectSystem -p Environment -p User").stdout
    assert "ProtectSystem=strict" in web and "User=mastodon" in web
    assert "WEB_CONCURRENCY=1" in web and "MAX_THREADS=5" in web and "BIND=127.0.0.1" in web
    sidekiq = host.run("systemctl show mastodon-sidekiq.service -p Environment -p ExecStart").stdout
    assert "DB_POOL=5" in sidekiq and "sidekiq -c 5" in sidekiq
    pid = host.run("systemctl show -p MainPID --value mastodon-web.service").stdout.strip()
    assert "libjemalloc" in host.run("cat /proc/%s/maps" % pid).stdout


@pytest.mark.parametrize("job", ["media-remove", "preview-cards-remove", "prune-profiles"])
def test_cleanup_timers_enabled(host, job):
    timer = host.service("mastodon-%s.timer" % job)
    assert timer.is_enabled and timer.is_running


def test_statuses_timer_is_off_by_default(host):
    """It follows the content cache retention, off by default (0): no timer, no unit file."""
    for kind in ("timer", "service"):
        assert not host.file("/etc/systemd/system/mastodon-statuses-remove.%s" % kind).exists
    assert "mastodon-statuses-remove" not in host.run("systemctl list-timers --all --no-legend").stdout


def test_cleanup_timers_never_start_together(host):
    starts = [host.run("systemctl show -p TimersCalendar --value mastodon-%s.timer" % job).stdout.strip()
              for job in ("media-remove", "preview-cards-remove", "prune-profiles")]
    assert len(set(starts)) == 3, starts
    service = host.run("systemctl show -p ExecStart --value mastodon-media-remove.service").stdout
    assert "flock /run/lock/mastodon-maintenance.lock" in service


def test_media_cleanup_service_runs_tootctl(host):
    # 14 days by default: Mastodon's advice for the media cache retention.
    assert host.run("systemctl start mastodon-media-remove.service").rc == 0
    calls = [c["argv"] for c in _invocations(host) if c["program"] == "tootctl"]
    assert ["media", "remove", "--days", "14"] in calls


def test_relays_match_the_inventory(host):
    rows = host.run("sudo -u mastodon psql -X -tA -d mastodon_production -c "
                    "'SELECT inbox_url FROM relays ORDER BY 1'").stdout.split()
    assert rows == ["https://relay.example.test/inbox"]
    runs = [c for c in _invocations(host) if c["program"] == "rails" and c["argv"][0] == "runner"
            and c["argv"][1].endswith("/mastodon_stack_relays.rb")]
    assert len(runs) == 1
    # Enabled (Relay#enable!: pending until the relay accepts), not held by the flood guard.
    state = host.run("sudo -u mastodon psql -X -tA -d mastodon_production -c 'SELECT state FROM relays'")
    assert state.stdout.strip() == "1"


def test_retention_settings_set_once(host):
    # Media cache 14 days, user archives 7; the content cache retention stays empty (off, as
    # Mastodon ships it): no row for it.
    rows = host.run("sudo -u mastodon psql -X -tA -F '=' -d mastodon_production -c "
                    "\"SELECT var, btrim(value, E'- \\n') FROM settings ORDER BY var\"").stdout.split()
    assert rows == ["backups_retention_period=7", "media_cache_retention_period=14"]
    runs = [c for c in _invocations(host) if c["program"] == "rails" and c["argv"][0] == "runner"
            and c["argv"][1].endswith("/mastodon_stack_settings.rb")]
    assert len(runs) == 1  # the idempotence run found them set


@pytest.mark.parametrize("script", ["mastodon_stack_relays.rb", "mastodon_stack_settings.rb"])
def test_the_double_ran_the_script_the_role_installed(host, script):
    # What ships is what runs: the TEST DOUBLE's bin/rails runner evaluates the file itself,
    # against its stand-ins of the Mastodon models (tests/mastodon_double/lib/double_app.rb),
    # and logs the file's path and the SHA-256 of the bytes it ran.
    fact = json.loads(host.file("/etc/ansible/facts.d/mastodon_stack.fact").content_string)
    path = fact["relay_script"].rsplit("/", 1)[0] + "/" + script
    installed = host.file(path)
    runs = [c for c in _invocations(host) if c["program"] == "rails" and c["argv"] == ["runner", path]]
    assert len(runs) == 1, runs
    assert (runs[0]["runner_file"], runs[0]["runner_sha256"]) == (path, installed.sha256sum)
    # And the installed file is the role's template, rendered.
    template = ROLE_TEMPLATES + script + ".j2"
    with open(template) as source:
        wanted = source.read().replace("{{ mastodon_stack_managed_header }}", MANAGED_HEADER)
    assert installed.content_string.rstrip("\n") == wanted.rstrip("\n")


# Exactly what the inventory (group_vars/all/main.yml) sets; an unquoted or double-quoted line would lose
# the comment, expand $HOME/${HOME}, run $(id) or eat the backslashes and quotes.
TRICKY = {
    "SMTP_PASSWORD": 'p#ss $HOME ${HOME} $(id) \\back\\slash "dq" end',
    "SELFHOST_TEST_SINGLE_QUOTE": 'it\'s $HOME "q" # \\ \\n $(id)',
    "SELFHOST_TEST_SPACES": "  two  spaces  ",
    "LOCAL_DOMAIN": "social.example.test",
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_env_values_read_back_byte_for_byte(host, name):
    # How an admin asks Mastodon what it read: bin/rails runner 'puts ENV.fetch("NAME")'. The
    # TEST DOUBLE answers with its reader of dotenv 3.x's rules (tests/mastodon_double/lib).
    result = host.run(
        "cd %s && runuser -u mastodon -- env RAILS_ENV=production bin/rails runner "
        "'puts ENV.fetch(\"%s\")'" % (LIVE, name))
    assert result.rc == 0, result.stderr
    assert result.stdout == TRICKY[name] + "\n"


SPOOL = "/var/spool/test-smtp"


def test_one_mail_through_the_smtp_relay_with_starttls_and_auth(host):
    # The TEST SMTP stand-in (prepare.yml) on 127.0.0.1:587 plays Gmail's relay: STARTTLS
    # with a certificate the system store trusts, then AUTH PLAIN with exactly the inventory's
    # login and password. The TEST DOUBLE sends the way Mastodon's mailer does (Net::SMTP with
    # the smtp_settings Mastodon builds from .env.production), so a password mangled on the way
    # through .env.production would be refused here.
    before = set(host.check_output("ls -1 %s", SPOOL).split())
    result = host.run(
        "cd %s && runuser -u mastodon -- env RAILS_ENV=production bin/rails runner "
        "'ActionMailer::Base.mail(to: \"owner@example.test\", subject: \"Hello from the laptop\", "
        "body: \"It works.\").deliver_now'" % LIVE)
    assert result.rc == 0, result.stdout + result.stderr
    new = sorted(set(host.check_output("ls -1 %s", SPOOL).split()) - before)
    metas = [n for n in new if n.endswith(".json")]
    assert len(metas) == 1, new
    meta = json.loads(host.file("%s/%s" % (SPOOL, metas[0])).content_string)
    assert meta == {"mail_from": "notifications@social.example.test", "rcpt_tos": ["owner@example.test"],
                    "helo": "social.example.test", "tls": True, "authenticated": True,
                    "login": "owner@example.test"}
    eml = host.file("%s/%s" % (SPOOL, metas[0].replace(".json", ".eml"))).content_string
    assert "Subject: Hello from the laptop" in eml and "It works." in eml
    auth = [json.loads(line) for line in host.file(SPOOL + "/auth.log").content_string.splitlines()]
    assert auth[-1] == {"mechanism": "PLAIN", "ok": True, "tls": True}


def test_smtp_stand_in_refuses_a_wrong_password_and_auth_without_tls(host):
    client = (
        "import smtplib, ssl\n"
        "s = smtplib.SMTP('localhost', 587)\n"
        "s.ehlo()\n"
        "try:\n"
        "    s.login('owner@example.test', 'p#ss')\n"
        "except smtplib.SMTPException as e:\n"
        "    print('plain', type(e).__name__)\n"
        "s.starttls(context=ssl.create_default_context())\n"
        "s.ehlo()\n"
        "try:\n"
        "    s.login('owner@example.test', 'p#ss')\n"
        "except smtplib.SMTPAuthenticationError as e:\n"
        "    print('tls', e.smtp_code)\n")
    out = host.check_output("python3 -c %s", client)
    assert out.splitlines() == ["plain SMTPNotSupportedError", "tls 535"], out


def test_local_fact_describes_the_installation_without_secrets(host):
    fact_file = host.file("/etc/ansible/facts.d/mastodon_stack.fact")
    assert (fact_file.user, fact_file.mode) == ("root", 0o644)
    fact = json.loads(fact_file.content_string)
    assert {k: fact[k] for k in ("user", "home", "live_dir", "db_name", "secrets_file", "redis_port", "domain")} == {
        "user": "mastodon", "home": "/home/mastodon", "live_dir": LIVE, "db_name": "mastodon_production",
        "secrets_file": SECRETS, "redis_port": 6379, "domain": "social.example.test"}
    assert fact["streaming_ports"] == [4000]
    assert host.file(fact["relay_script"]).is_file
    assert fact["version"] == host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags")
    # The PATH Mastodon's commands run with finds the Ruby the role installed.
    assert host.run(f"env PATH={fact['app_path']} ruby -v").rc == 0
    # World-readable: no secret value from the secrets file may appear in it.
    for line in host.file(SECRETS).content_string.splitlines():
        value = line.partition("=")[2].strip().strip("'")
        if len(value) >= 16:
            assert value not in fact_file.content_string
