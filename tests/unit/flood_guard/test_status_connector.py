"""mastodon-status's connector check: a cloudflared that refused its configuration (it logs
"Failed to update ingress" and keeps the previous one, or answers 503 everywhere when none was
applied since it started) makes the host unhealthy; the newest configuration event counts.

The journal lines are written the way cloudflared (and the project's stand-in) log them."""

from support.ops_scripts import STATUS, load_script

status = load_script("mastodon_status_connector", STATUS)

APPLIED = '2026-12-07T04:00:00Z INF Updated to new configuration config="{}" version=3'
REFUSED = ('2026-12-07T04:01:00Z ERR Failed to update ingress error="failed to start origin: '
           'unable to read the file /etc/ssl/selfhost/ca.pem for --origin-ca-pool" config="{}" version=4')
BAD_RULE = ('2026-12-07T04:01:00Z ERR Failed to deserialize new configuration error="https://'
            'localhost:443/ is an invalid address" config="{}" version=4')


def run(lines):
    return status.connector_check(journal=lambda: lines)


def test_a_refused_configuration_after_an_applied_one_keeps_the_previous():
    values, result = run([APPLIED, REFUSED])
    assert not result["ok"] and values == {"connector_config": "refused"}
    assert "REFUSED" in result["line"] and "version 4" in result["line"]
    assert "origin-ca-pool" in result["line"] and "keeps its previous" in result["line"]


def test_a_refusal_on_a_fresh_start_means_503_everywhere():
    values, result = run(["2026-12-07T04:00:00Z INF Starting tunnel", BAD_RULE])
    assert not result["ok"] and "503" in result["line"] and "invalid address" in result["line"]


def test_an_applied_configuration_after_a_refusal_is_healthy():
    values, result = run([REFUSED, APPLIED.replace("version=3", "version=5")])
    assert result["ok"] and "version 5 applied" in result["line"]
    assert values == {"connector_config": "applied"}


def test_no_configuration_yet_is_not_a_failure():
    assert run(["2026-12-07T04:00:00Z INF Starting tunnel"])[1]["ok"]


def test_an_unreadable_journal_is_unhealthy():
    values, result = run(None)
    assert not result["ok"] and "cannot read the journal" in result["line"]


def test_the_check_is_part_of_the_report():
    assert "connector" in status.CHECKS
