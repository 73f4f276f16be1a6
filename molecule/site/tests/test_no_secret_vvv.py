"""No secret through ``-vvv --diff`` (issue 25), on the converged laptop: side_effect.yml made
every file that holds a secret stale (.env.production's secret lines, redis.conf's requirepass
and maxmemory-policy lines, the connector's token file, the owner account and its password
file; the secrets file is kept, secrets are never regenerated), then ran
``ansible-playbook -i <inventory> playbooks/site.yml -vvv --diff`` (tasks/leak_run.yml). Here:
that run rewrote each of those files (or the check would be vacuous), and no secret of the
laptop appears in its output or its ansible log, neither as is nor in an obvious encoding
(base64 at any byte alignment, URL-encoded). Off-site backups and SMTP are not set in this
scenario; .env.production's and the off-site folder's secret values are read if present."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import base64
import re
import urllib.parse

import pytest

from conftest import ephemeral
from test_dry_run import RECAP, changed_task_names

ENV_FILE = "/home/mastodon/live/.env.production"
OFFSITE_FILES = ("/etc/mastodon-ops/offsite/password", "/etc/mastodon-ops/offsite/restic.env")
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|PRIVATE|_KEY", re.I)
# The tasks that must have rewritten a file holding a secret in the leak check's run.
REWRITES = (
    "Give Redis its password from the secrets file",
    "Make Redis refuse writes instead of evicting keys (Sidekiq needs noeviction)",
    "Write .env.production (owner mastodon, mode 0600)",
    "Write the connector token to a root-only file and the cloudflared systemd unit (hidden)",
    "Create the owner account (tootctl accounts create --confirmed --role Owner)",
    "Write the owner's generated password to a root-only file (never printed)",
)


def encodings(value):
    """The value and its obvious encodings: base64 (standard and URL-safe, at each of the three
    byte alignments inside a longer encoded text, as the slurp of a whole file shows it) and
    URL-encoding. Only forms of at least 12 characters (shorter ones would match by chance)."""
    raw = value.encode()
    forms = {"as is": value, "URL-encoded": urllib.parse.quote(value, safe="")}
    for shift in range(3):
        for kind, encode in (("base64", base64.b64encode), ("URL-safe base64", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw).decode()
            # Drop the characters that depend on the bytes before and after the value.
            forms[f"{kind} (offset {shift})"] = text[(shift * 4 + 2) // 3:len(text) - 4]
    unique = {}
    for kind, form in forms.items():
        if len(form) >= 12 and form not in unique.values():
            unique[kind] = form
    return unique


def find_leaks(text, secrets):
    """[(secret name, form, occurrences)] of every secret form found in *text*."""
    found = []
    for name, value in secrets.items():
        for kind, form in encodings(value).items():
            count = text.count(form)
            if count:
                found.append((name, kind, count))
    return found


@pytest.fixture(scope="module")
def run():
    folder = ephemeral() / "leak-check"
    assert (folder / "run.rc").exists(), "side_effect.yml's leak check run did not run (no leak-check/run.rc)"
    output = (folder / "run.log").read_text(errors="replace")
    log = (folder / "ansible.log").read_text(errors="replace") if (folder / "ansible.log").exists() else ""
    return int((folder / "run.rc").read_text()), output, log


@pytest.fixture(scope="module")
def all_secrets(host, secrets):
    """conftest's secrets (API token, tunnel token and secret, the secrets file's values, the
    owner's password) and every secret-looking value of .env.production and the off-site files."""
    values = dict(secrets)
    with host.sudo():
        for path in (ENV_FILE, *OFFSITE_FILES):
            if not host.file(path).exists:
                continue
            content = host.file(path).content_string
            if path.endswith("/password"):
                values[f"{path}"] = content.strip()
                continue
            for line in content.splitlines():
                key, sep, value = line.removeprefix("export ").partition("=")
                value = value.strip().strip('"').strip("'")
                if sep and SECRET_NAME.search(key) and "PUBLIC" not in key and len(value) >= 12:
                    values.setdefault(f"{path} {key.strip()}", value)
    unique = {}
    for name, value in values.items():
        if value and value not in unique.values():
            unique[name] = value
    return unique


def test_the_leak_check_run_finished(run, capsys):
    rc, output, _ = run
    recap = [(host, int(changed), int(failed)) for host, _, changed, _, failed in RECAP.findall(output)]
    with capsys.disabled():
        print("\n[site] site.yml -vvv --diff after the secret files were made stale: exit "
              f"{rc}, " + ", ".join(f"{h} changed={c} failed={f}" for h, c, f in recap))
    assert rc == 0 and recap and all(f == 0 for _, _, f in recap), output[-3000:]
    # It ran at -vvv (task paths and connection lines are shown from -vv and -vvv).
    assert "task path:" in output and "ESTABLISH" in output, output[:3000]


def test_the_run_rewrote_every_file_holding_a_secret(run):
    _, output, _ = run
    changed = changed_task_names(output)
    missing = [name for name in REWRITES if not any(task.endswith(f": {name}") for task in changed)]
    assert not missing, (missing, changed)


def test_no_secret_in_the_vvv_diff_output(run, all_secrets, capsys):
    _, output, log = run
    assert len(all_secrets) >= 8, sorted(all_secrets)
    leaks = find_leaks(output + "\n" + log, all_secrets)
    forms = sum(len(encodings(value)) for value in all_secrets.values())
    with capsys.disabled():
        print(f"\n[site] leak check: {len(all_secrets)} secrets ({forms} forms) looked for in "
              f"{len(output)} + {len(log)} characters of -vvv --diff output and log: "
              f"{sum(count for _, _, count in leaks)} found")
    assert not leaks, leaks
