"""The cloudflared stand-in's command line, exit codes and configuration verdicts, against
cloudflared's (release 2026.8.2, read in its source; the test stand-in is not cloudflared).

- an unknown or misplaced flag, or a value that does not parse: "Incorrect Usage", exit 0;
- a missing, unreadable or empty token file, no token, an invalid token: exit 255;
- --token / TUNNEL_TOKEN wins over --token-file / TUNNEL_TOKEN_FILE;
- it reports a release of at least 2025.4.0 (--token-file);
- its flag tables and its verdicts on origin services are the route module's.
"""

import base64
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflared_flags as flags
from ansible_collections.selfhost.mastodon.plugins.module_utils import _ingress_rules as rules

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "cloudflare_emulator"))
import cloudflared_standin as standin  # noqa: E402  pylint: disable=wrong-import-position

STANDIN = standin.__file__
TOKEN = base64.b64encode(json.dumps({"a": "0" * 32, "t": "6e0a4b55-1d52-4b4a-9a3c-1b2f1d9c1a11",
                                     "s": base64.b64encode(b"s" * 32).decode()}).encode()).decode()


def cloudflared(*argv, env=None, timeout=10):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TUNNEL_")}
    environment.update(env or {})
    # An edge nobody listens on: a run that gets past the command line keeps retrying.
    environment.setdefault("TUNNEL_EDGE", "127.0.0.1:9")
    try:
        done = subprocess.run([sys.executable, STANDIN, *argv], env=environment, timeout=timeout,
                              capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired as exc:
        return None, (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("argv", [
    ["tunnel", "--token-file", "/x", "run"],              # a run flag before run
    ["tunnel", "run", "--metrics", "127.0.0.1:1", "--token-file", "/x"],  # a tunnel flag after it
    ["--token", "x", "tunnel", "run"],                     # a run flag at the top
    ["tunnel", "--no-such-flag", "run", "--token-file", "/x"],
    ["tunnel", "--ha-connections", "two", "run", "--token-file", "/x"],
    ["tunnel", "--grace-period", "30", "run", "--token-file", "/x"],  # a duration needs a unit
])
def test_a_bad_command_line_prints_incorrect_usage_and_exits_0(argv):
    code, output = cloudflared(*argv)
    assert code == 0, output
    assert "Incorrect Usage" in output or "USAGE" in output


def test_the_units_command_line_is_accepted(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    code, output = cloudflared("--no-autoupdate", "tunnel", "--metrics", "127.0.0.1:0",
                               "--loglevel", "debug", "--protocol=http2", "--post-quantum", "run",
                               "--token-file", str(token), timeout=3)
    assert code is None, output  # still running: past the command line and the token
    assert "Incorrect Usage" not in output and "Starting tunnel" in output


@pytest.mark.parametrize("make", ["missing", "empty", "invalid", "unreadable-dir"])
def test_a_bad_token_file_exits_255(tmp_path, make):
    path = tmp_path / "token"
    if make == "empty":
        path.write_text("\n")
    elif make == "invalid":
        path.write_text("not-a-token")
    elif make == "unreadable-dir":
        path.mkdir()
    code, output = cloudflared("tunnel", "run", "--token-file", str(path))
    assert code == 255, output
    assert "See 'cloudflared tunnel run --help'" in output
    assert TOKEN not in output


def test_no_token_at_all_exits_255():
    code, output = cloudflared("tunnel", "run")
    assert code == 255 and "requires the ID or name of the tunnel" in output


def test_tunnel_token_in_the_environment_wins_over_the_token_file(tmp_path):
    good = tmp_path / "token"
    good.write_text(TOKEN)
    code, output = cloudflared("tunnel", "run", "--token-file", str(good),
                               env={"TUNNEL_TOKEN": "not-a-token"})
    assert code == 255 and "Provided Tunnel token is not valid." in output
    code, output = cloudflared("tunnel", "run", "--token-file", str(tmp_path / "missing"),
                               env={"TUNNEL_TOKEN": TOKEN}, timeout=3)
    assert code is None and "Starting tunnel" in output, output


def test_the_version_is_at_least_the_roles_minimum():
    code, output = cloudflared("--version")
    assert code == 0 and "STAND-IN" in output
    assert flags.version_problem(output) is None
    assert flags.version_problem("cloudflared version 2025.1.0 (built 2025-01-10)")
    code, output = cloudflared("version")
    assert code == 0 and output.startswith("cloudflared version ")


def test_the_flag_tables_are_the_roles():
    assert standin.TUNNEL_FLAGS == flags.TUNNEL_FLAGS
    assert standin.RUN_FLAGS == flags.RUN_FLAGS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(flags.TUNNEL_FLAGS) + ["token-file", "token", "nope"]),
                max_size=4),
       st.lists(st.sampled_from(["true", "debug", "30s", "2", "x", "-1", "http2"]), min_size=4,
                max_size=4))
def test_what_the_role_accepts_for_extra_args_the_stand_in_accepts(names, values):
    args = []
    for name, value in zip(names, values):
        args.append("--" + name)
        if flags.TUNNEL_FLAGS.get(name, "string") != "bool":
            args.append(value)
    line = ["--no-autoupdate", "tunnel", "--metrics", "127.0.0.1:1", *args, "run",
            "--token-file", "/x"]
    try:
        parsed = standin.parse_command_line(line)
        stand_in_ok = parsed[1] == ["tunnel", "run"] and parsed[2] == []
    except standin.UsageError:
        stand_in_ok = False
    role_ok = flags.tunnel_args_problem(args) is None
    if role_ok:
        assert stand_in_ok, (args, line)
    owned = set(names) & set(flags.ROLE_OWNED)
    if not owned and not role_ok:
        assert not stand_in_ok, (args, flags.tunnel_args_problem(args))


SERVICES = [
    "https://localhost:443", "https://localhost:443/", "socks5", "socks-proxy", "bastion",
    "hello_world", "hello-world", "http_status:404", "http_status:99", "http_status:+200",
    "unix:/run/x.sock", "unix+tls:/run/x.sock", "tcp://localhost:22", "ftp://127.0.0.1",
    "localhost:443", "https://localhost:80:80", "https://[::1]:443", "https://[1.2.3.4]",
    "https://local host", "https://u:p@localhost", "https://ü@localhost", "http://:80",
    "http://localhost?x=1", "http://localhost#%zz", "http://localhost/%zz", "", "HTTP://X",
]


@pytest.mark.parametrize("service", SERVICES)
def test_the_stand_in_refuses_what_the_route_module_refuses(service):
    assert (standin.service_refusal(service) is None) == (rules.origin_service_refusal(service) is None)


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(max_size=30),
    st.builds(lambda s, h, p, t: s + h + p + t,
              st.sampled_from(["http://", "https://", "tcp://", "//", "ws:", "x:", ""]),
              st.sampled_from(["localhost", "[::1]", "[fe80::1%25en0]", "", "a b", "ü", "[1.2.3.4]",
                               "u@h", "ü@h", "%41", "[::1"]),
              st.sampled_from(["", ":1", ":", ":x", ":1:2"]),
              st.sampled_from(["", "/", "/a", "?q", "#f", "#%zz", "/%zz"]))))
def test_the_stand_in_and_the_route_module_agree(service):
    assert (standin.service_refusal(service) is None) == (rules.origin_service_refusal(service) is None), (
        service, standin.service_refusal(service), rules.origin_service_refusal(service))


ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "roles", "cloudflare_tunnel")


@pytest.mark.parametrize("extra_args", [[], ["--loglevel", "debug", "--protocol=http2", "--post-quantum"]])
def test_the_units_command_line_as_the_role_renders_it_is_accepted(extra_args):
    """The ExecStart of roles/cloudflare_tunnel/templates/cloudflared.service.j2, with extra
    arguments the role's check accepts, parses as cloudflared parses it: tunnel run, no usage
    error."""
    import shlex

    import jinja2

    assert flags.tunnel_args_problem(extra_args) is None
    with open(os.path.join(ROLE, "templates", "cloudflared.service.j2"), encoding="utf-8") as handle:
        template = jinja2.Environment().from_string(handle.read())
    unit = template.render(
        cloudflare_tunnel_managed_header="managed", cloudflare_tunnel_hostname="social.example.test",
        cloudflare_tunnel_service="https://localhost:443", cloudflare_tunnel_service_after=[],
        cloudflare_tunnel_token_file="/etc/cloudflared/token", cloudflare_tunnel_environment={},
        cloudflare_tunnel_extra_args=extra_args, __cloudflare_tunnel_bin="/usr/local/bin/cloudflared",
        __cloudflare_tunnel_metrics="127.0.0.1:20241")
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start[len("ExecStart="):])
    parsed_flags, words, args = standin.parse_command_line(argv[1:])
    assert words == ["tunnel", "run"] and args == []
    assert parsed_flags["token-file"] == "/etc/cloudflared/token"
    assert parsed_flags["metrics"] == "127.0.0.1:20241"
