"""Media in object storage (docs/media-r2.md), on the controller:

- mastodon_stack renders .env.production with the S3 settings when object storage is on, and
  exactly the old file when it is off;
- cloudflare_tunnel's r2_bucket entry point makes the bucket and its custom domain through the
  API of the Cloudflare emulator (a TEST STAND-IN for Cloudflare, tests/cloudflare_emulator),
  and its s3_env reaches .env.production through mastodon_stack_s3_settings, as in site.yml;
- site.yml's first play refuses a bucket without the R2 key pair, before anything changes.

- the migration command of docs/media-r2.md (`aws s3 sync`) copies local media into a bucket with the
  key pair, bucket and region .env.production holds, against moto_server (a TEST STAND-IN for
  R2's S3 endpoint; moto from PyPI), and a second run sends only what is new.

What is not tested here: Mastodon's own uploads. Mastodon (the uploader) cannot run on these
machines (tests/mastodon_double stands in for it and uploads nothing); and moto_server does not
check the key pair's signature.

Playbooks are written into a temporary folder and run with tests/support/ansible_cli.py.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, Emulator
from support.ansible_cli import ansible_playbook

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "mastodon_stack" / "templates" / "env.production.j2"
SITE = ROOT / "playbooks" / "site.yml"


def quoted(settings):
    """Settings as .env.production holds plain values: single-quoted."""
    return {name: "'%s'" % value for name, value in settings.items()}


KEY_ID = "s3-keyid-91ab-not-real"
SECRET = "s3-secret-77f0-not-real$#'x"
FAKE_SECRETS = {"SECRET_KEY_BASE": "a" * 128, "OTP_SECRET": "b" * 128, "VAPID_PRIVATE_KEY": "c" * 43,
                "VAPID_PUBLIC_KEY": "d" * 87, "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY": "e" * 32,
                "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT": "f" * 32,
                "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY": "g" * 32, "REDIS_PASSWORD": "h" * 32}
STACK = {"mastodon_stack_domain": "social.example.org", "mastodon_stack_owner_email": "owner@example.org"}
S3_ON = {"mastodon_stack_s3_enabled": True, "mastodon_stack_s3_bucket": "mastodon-media",
         "mastodon_stack_s3_endpoint": "https://%s.r2.cloudflarestorage.com" % ACCOUNT_ID,
         "mastodon_stack_s3_alias_host": "media.example.org",
         "mastodon_stack_s3_access_key_id": KEY_ID, "mastodon_stack_s3_secret_access_key": SECRET}
# Settings handed over (as site.yml does from the R2 bucket): they win over the variables.
HANDED_OVER = {"S3_ENABLED": "true", "S3_BUCKET": "from-r2", "S3_ALIAS_HOST": "files.example.org",
               "S3_ENDPOINT": "https://%s.eu.r2.cloudflarestorage.com" % ACCOUNT_ID, "S3_REGION": "auto",
               "S3_PROTOCOL": "https", "S3_PERMISSION": ""}
HANDED_OVER_WRITTEN = dict(quoted(HANDED_OVER), AWS_ACCESS_KEY_ID="'%s'" % KEY_ID)
# What S3_ON writes, quoted for dotenv. R2 has no ACLs: Mastodon must not set one
# (S3_PERMISSION empty). A secret with ' $ # is double-quoted with $ escaped, so dotenv reads
# it back unchanged.
S3_ON_WRITTEN = {"S3_ENABLED": "'true'", "S3_BUCKET": "'mastodon-media'", "S3_REGION": "'auto'",
                 "S3_ENDPOINT": "'https://%s.r2.cloudflarestorage.com'" % ACCOUNT_ID, "S3_PROTOCOL": "'https'",
                 "S3_ALIAS_HOST": "'media.example.org'", "S3_PERMISSION": "''", "AWS_ACCESS_KEY_ID": "'%s'" % KEY_ID,
                 "AWS_SECRET_ACCESS_KEY": '"s3-secret-77f0-not-real\\$#\'x"',
                 "PAPERCLIP_ROOT_PATH": "'/home/mastodon/live/public/system'"}
S3_NAMES = ("S3_ENABLED", "S3_BUCKET", "S3_ENDPOINT", "S3_REGION", "S3_PROTOCOL", "S3_ALIAS_HOST",
            "S3_PERMISSION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

RENDER = """
- name: Check mastodon_stack's variables, then render .env.production with the role's template
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the validate entry point (its defaults and vars stay visible)
      ansible.builtin.include_role:
        name: selfhost.mastodon.mastodon_stack
        tasks_from: validate
        public: true
    - name: Render the role's template
      ansible.builtin.template:
        src: {template}
        dest: "{{{{ out }}}}"
        mode: "0600"
      vars:
        __mastodon_stack_secret_values: {secrets}
      no_log: true
"""

R2_THEN_RENDER = """
- name: The R2 bucket, then .env.production, as site.yml hands the settings over
  hosts: all
  gather_facts: false
  vars:
    mastodon_stack_s3_settings: "{{{{ cloudflare_tunnel_r2_s3_env | default({{}}) }}}}"
  tasks:
    - name: Run cloudflare_tunnel's validate entry point (hands over the planned settings)
      ansible.builtin.include_role:
        name: selfhost.mastodon.cloudflare_tunnel
        tasks_from: validate
    - name: Keep the planned settings
      ansible.builtin.copy:
        content: "{{{{ cloudflare_tunnel_r2_s3_env | to_json }}}}"
        dest: "{{{{ out }}}}.planned.json"
        mode: "0600"
    - name: Run the r2_bucket entry point
      ansible.builtin.include_role:
        name: selfhost.mastodon.cloudflare_tunnel
        tasks_from: r2_bucket
    - name: Keep what the module returned
      ansible.builtin.copy:
        content: "{{{{ cloudflare_tunnel_r2_s3_env | to_json }}}}"
        dest: "{{{{ out }}}}.actual.json"
        mode: "0600"
""" + RENDER.split("  tasks:\n", 1)[1]


def playbook(tmp_path, text, hosts, *args):
    path = tmp_path / "play.yml"
    path.write_text(text.format(template=TEMPLATE, secrets=json.dumps(FAKE_SECRETS)))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        name: dict(values, ansible_connection="local", ansible_python_interpreter=sys.executable,
                   out=str(tmp_path / (name + ".env")))
        for name, values in hosts.items()}}}))
    proc = ansible_playbook(path, *args, inventory=inventory, timeout=600)
    return proc.returncode, proc.output


def parse(text):
    return dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def assert_written(text, expected):
    """The .env.production *text* holds each expected NAME=value line (values as written)."""
    values = parse(text)
    assert {name: values.get(name) for name in expected} == expected


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("media-render")
    hosts = {
        "s3_off": dict(STACK),
        "s3_on": dict(STACK, **S3_ON),
        # Handed over (as site.yml does from the R2 bucket): wins over the variables.
        "s3_handed_over": dict(STACK, mastodon_stack_s3_bucket="not-this-one",
                               mastodon_stack_s3_access_key_id=KEY_ID,
                               mastodon_stack_s3_secret_access_key=SECRET,
                               mastodon_stack_s3_settings=HANDED_OVER),
        # OTP_SECRET: read by releases before 4.4 only (the default release is newer).
        "release_4_3": dict(STACK, mastodon_stack_version="v4.3.9"),
        "release_4_4": dict(STACK, mastodon_stack_version="v4.4.0"),
    }
    rc, out = playbook(tmp, RENDER, hosts)
    assert rc == 0, out[-4000:]
    return {name: (tmp / (name + ".env")).read_text() for name in hosts}, out


def test_s3_off_writes_no_object_storage_setting(rendered):
    files, _out = rendered
    text = files["s3_off"]
    assert not [line for line in text.splitlines() if line.startswith(S3_NAMES)], text
    assert "# Files are stored on this machine\nPAPERCLIP_ROOT_PATH='/home/mastodon/live/public/system'" in text


@pytest.mark.parametrize("host, expected", [("s3_on", S3_ON_WRITTEN), ("s3_handed_over", HANDED_OVER_WRITTEN)],
                         ids=["s3 on writes mastodons settings quoted",
                              "handed over settings win over the variables"])
def test_s3_settings_are_written_as_mastodon_reads_them(rendered, host, expected):
    assert_written(rendered[0][host], expected)


def test_s3_off_is_the_s3_on_file_without_the_s3_block(rendered):
    """Turning object storage off leaves the file as it was before this feature: only the S3
    lines and the comment above PAPERCLIP_ROOT_PATH differ."""
    files, _out = rendered
    on = [line for line in files["s3_on"].splitlines()
          if not line.startswith(S3_NAMES) and not line.startswith("# Media in S3-compatible")]
    on = ["# Files are stored on this machine"
          if line.startswith("# Files from before the switch") else line for line in on]
    assert on == files["s3_off"].splitlines()


@pytest.mark.parametrize("host, written", [("s3_off", False), ("release_4_4", False), ("release_4_3", True)],
                         ids=["default release", "v4.4.0", "v4.3.9"])
def test_otp_secret_is_written_only_for_releases_that_read_it(rendered, host, written):
    """Mastodon 4.4 stopped reading OTP_SECRET: the file carries it for older releases only;
    every other secret is written for all of them."""
    values = parse(rendered[0][host])
    assert ("OTP_SECRET" in values) is written
    if written:
        assert values["OTP_SECRET"] == "'%s'" % FAKE_SECRETS["OTP_SECRET"]
    others = [name for name in FAKE_SECRETS if name not in ("OTP_SECRET", "REDIS_PASSWORD")]
    assert {name: values.get(name) for name in others} == {name: "'%s'" % FAKE_SECRETS[name] for name in others}


def test_the_key_pair_is_never_in_the_output(rendered):
    _files, out = rendered
    assert KEY_ID not in out and "s3-secret-77f0" not in out


# ------------------------------------------------------------------ bucket -> .env.production

R2_HOST = dict(STACK, cloudflare_tunnel_hostname="social.example.test",
               cloudflare_tunnel_account_id=ACCOUNT_ID, cloudflare_tunnel_api_token=TOKEN_FULL,
               cloudflare_tunnel_r2_bucket="mastodon-media",
               cloudflare_tunnel_r2_custom_domain="media.example.test",
               cloudflare_tunnel_r2_location_hint="weur",
               mastodon_stack_s3_access_key_id=KEY_ID, mastodon_stack_s3_secret_access_key=SECRET)


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        yield emu


def test_the_bucket_is_made_and_its_settings_reach_env_production(tmp_path, emulator):
    host = dict(R2_HOST, cloudflare_tunnel_api_url=emulator.api_url)

    # Check mode: reads only, and the same settings are handed over.
    emulator.clear_log()
    rc, out = playbook(tmp_path, R2_THEN_RENDER, {"laptop": host}, "--check")
    assert rc == 0, out[-4000:]
    assert emulator.writes() == []
    assert not emulator.store.r2_buckets

    rc, out = playbook(tmp_path, R2_THEN_RENDER, {"laptop": host})
    assert rc == 0, out[-4000:]
    buckets = [b for b in emulator.store.r2_buckets.values() if b["name"] == "mastodon-media"]
    assert len(buckets) == 1 and "media.example.test" in buckets[0]["domains"], buckets
    assert buckets[0]["domains"]["media.example.test"]["enabled"] is True

    planned = json.loads((tmp_path / "laptop.env.planned.json").read_text())
    actual = json.loads((tmp_path / "laptop.env.actual.json").read_text())
    # What site.yml's first play hands over before the bucket exists is what Cloudflare gives.
    assert planned == actual, (planned, actual)
    assert {name: actual.get(name) for name in ("S3_ENABLED", "S3_BUCKET", "S3_ALIAS_HOST", "S3_ENDPOINT",
                                                "S3_PERMISSION")} == {
        "S3_ENABLED": "true", "S3_BUCKET": "mastodon-media", "S3_ALIAS_HOST": "media.example.test",
        "S3_ENDPOINT": "https://%s.r2.cloudflarestorage.com" % ACCOUNT_ID, "S3_PERMISSION": ""}
    assert_written((tmp_path / "laptop.env").read_text(), dict(quoted(actual), AWS_ACCESS_KEY_ID="'%s'" % KEY_ID))
    for secret in (TOKEN_FULL, KEY_ID, "s3-secret-77f0"):
        assert secret not in out, secret

    # A second run writes nothing at Cloudflare.
    emulator.clear_log()
    rc, out = playbook(tmp_path, R2_THEN_RENDER, {"laptop": host})
    assert rc == 0, out[-4000:]
    assert emulator.writes() == []


# ------------------------------------------------------------------ site.yml's first play

SITE_VALID = {
    "selfhost_domain": "social.example.org",
    "selfhost_admin_user": "admin",
    "selfhost_ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"],
    "selfhost_owner_email": "owner@example.org",
    "selfhost_cloudflare_account_id": ACCOUNT_ID,
    "selfhost_cloudflare_api_token": "not-a-real-token-only-for-the-argument-spec-check",
    "cloudflare_tunnel_r2_bucket": "mastodon-media",
    "cloudflare_tunnel_r2_custom_domain": "media.example.org",
}


def site_checks(tmp_path, values):
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"children": {"mastodon": {"hosts": {"checkhost": dict(
        values, ansible_connection="local", ansible_python_interpreter=sys.executable)}}}}}))
    proc = ansible_playbook(SITE, "--check", "--tags", "selfhost_checks_only", inventory=inventory, timeout=600)
    return proc.returncode, proc.output


def test_site_refuses_a_bucket_without_the_key_pair_in_the_first_play(tmp_path):
    rc, out = site_checks(tmp_path, dict(SITE_VALID, mastodon_stack_s3_access_key_id=KEY_ID))
    assert rc != 0, out[-3000:]
    assert "mastodon_stack_s3_secret_access_key must both be set" in out, out[-3000:]
    assert "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]" not in out
    assert KEY_ID not in out and SITE_VALID["selfhost_cloudflare_api_token"] not in out


def test_site_accepts_a_bucket_with_the_key_pair(tmp_path):
    rc, out = site_checks(tmp_path, dict(SITE_VALID, mastodon_stack_s3_access_key_id=KEY_ID,
                                         mastodon_stack_s3_secret_access_key=SECRET))
    assert rc == 0, out[-4000:]
    assert "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]" in out
    assert KEY_ID not in out and "s3-secret-77f0" not in out


# ------------------------------------------------------------------ moving local media into S3
# docs/media-r2.md's migration step 3 (`aws s3 sync <media> s3://<bucket> --endpoint-url ...`), run as
# written with the bucket, region and key pair that .env.production holds. The S3 server is
# moto_server (moto, from PyPI), a TEST STAND-IN for R2's S3 endpoint on 127.0.0.1 over plain
# HTTP. It does not check the key pair's signature, and it cannot stand in for the uploads of
# Mastodon itself, which cannot run here.

BIN = Path(sys.executable).parent


def dotenv_value(written):
    """A value as .env.production writes it ('plain' or "with \\$ escaped"), as dotenv reads it."""
    if written[:1] == "'" and written[-1:] == "'":
        return written[1:-1]
    if written[:1] == '"' and written[-1:] == '"':
        return re.sub(r"\\(.)", r"\1", written[1:-1])
    return written


@pytest.fixture(scope="module")
def s3_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
    yield "http://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(timeout=10)


def aws(endpoint, env_values, *args, region=None):
    """The aws CLI with the key pair and region of *env_values* (.env.production, as read), and
    no configuration of the user running the tests."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=env_values["AWS_ACCESS_KEY_ID"],
               AWS_SECRET_ACCESS_KEY=env_values["AWS_SECRET_ACCESS_KEY"],
               AWS_DEFAULT_REGION=region or env_values["S3_REGION"],
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return subprocess.run([str(BIN / "aws"), *args, "--endpoint-url", endpoint], env=env,
                          capture_output=True, timeout=120, check=False)


def test_local_media_is_copied_into_the_bucket_with_the_settings_of_env_production(rendered, s3_server, tmp_path):
    values = {name: dotenv_value(value) for name, value in parse(rendered[0]["s3_on"]).items()}
    assert values["AWS_SECRET_ACCESS_KEY"] == SECRET and values["S3_REGION"] == "auto"
    bucket = values["S3_BUCKET"]
    # The bucket exists before the copy (cloudflare_r2_bucket makes it at R2; here the stand-in's
    # own API, which wants a real AWS region for it).
    made = aws(s3_server, values, "s3api", "create-bucket", "--bucket", bucket, region="us-east-1")
    assert made.returncode == 0, made.stderr

    system = tmp_path / "public" / "system"
    files = {"media_attachments/files/000/000/042/original/photo.jpg": os.urandom(150000),
             "accounts/avatars/000/000/001/original/owner.png": os.urandom(20000)}
    # Written before the copy, as a server's media are (sync compares sizes and times, and the
    # stand-in keeps whole seconds).
    written = time.time() - 3600
    for key, data in files.items():
        (system / key).parent.mkdir(parents=True, exist_ok=True)
        (system / key).write_bytes(data)
        os.utime(system / key, (written, written))

    copied = aws(s3_server, values, "s3", "sync", str(system), "s3://%s" % bucket)
    assert copied.returncode == 0, copied.stderr
    assert sorted(re.findall(rb"upload: \S+ to s3://%s/(\S+)" % bucket.encode(), copied.stdout)) == \
        sorted(key.encode() for key in files)
    # Each object holds the file's bytes under the path Mastodon gives it below public/system,
    # which is the path of its URL on S3_ALIAS_HOST (R2's custom domain serves the bucket's root).
    for key, data in files.items():
        fetched = aws(s3_server, values, "s3", "cp", "s3://%s/%s" % (bucket, key), "-")
        assert fetched.returncode == 0 and fetched.stdout == data, (key, fetched.stderr)
    assert values["S3_PROTOCOL"] == "https" and values["S3_ALIAS_HOST"] == "media.example.org"

    # Step 5, the same command once more: only the file written in between is sent.
    late = "media_attachments/files/000/000/043/original/late.jpg"
    (system / late).parent.mkdir(parents=True, exist_ok=True)
    (system / late).write_bytes(os.urandom(5000))
    os.utime(system / late, (written + 60, written + 60))
    again = aws(s3_server, values, "s3", "sync", str(system), "s3://%s" % bucket)
    assert again.returncode == 0, again.stderr
    assert re.findall(rb"upload: \S+ to s3://%s/(\S+)" % bucket.encode(), again.stdout) == [late.encode()]
    for run in (made, copied, again):
        assert SECRET.encode() not in run.stdout + run.stderr
