# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cloudflared_flags: cloudflare_tunnel_extra_args must be a command line cloudflared takes
between "tunnel" and "run" (it exits 0 on one it refuses), and the minimum release."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflared_flags as f


@pytest.mark.parametrize("args", [
    [], ["--loglevel", "debug"], ["--loglevel=debug"], ["-loglevel", "info"], ["--protocol", "http2"],
    ["-p", "quic"], ["--post-quantum"], ["--pq=false"], ["--edge-ip-version", "4"],
    ["--grace-period", "30s"], ["--grace-period=1m30s"], ["--ha-connections", "2"], ["--retries", "0x5"],
    ["--region", "us"], ["--label", "laptop"], ["--tag", "env=home"], ["--no-tls-verify"],
    ["--transport-loglevel", "warn"], ["--proto-loglevel", "warn"],
])
def test_tunnel_flags_cloudflared_takes_before_run(args):
    assert f.tunnel_args_problem(args) is None


@pytest.mark.parametrize("args, fragment", [
    (["--token-file", "/x"], 'no flag "--token-file" before "run"'),   # a run flag
    (["--credentials-contents", "{}"], "before \"run\""),
    (["--features", "x"], "before \"run\""),
    (["--no-such-flag"], "Incorrect Usage"),
    (["run"], "not a flag"),
    (["--loglevel", "debug", "extra"], "not a flag"),
    (["--"], "not a flag"),
    (["---loglevel"], "not a flag cloudflared can parse"),
    (["--loglevel debug"], "systemd"),
    (["--label", "a b"], "systemd"),
    (["--label", "$HOME"], "systemd"),
    (["--loglevel"], "needs a value"),
    (["--ha-connections", "two"], "whole number"),
    (["--grace-period", "30"], "Go duration"),
    (["--post-quantum=maybe"], "true or false"),
    (["--metrics", "0.0.0.0:2000"], "cloudflare_tunnel_metrics_port"),
    (["--no-autoupdate"], "set by"),
    ("--loglevel debug", "list"),
    ([""], "non-empty"),
])
def test_a_command_line_cloudflared_refuses_is_refused(args, fragment):
    problem = f.tunnel_args_problem(args)
    assert problem and fragment in problem, problem


def test_the_minimum_release():
    assert f.MIN_VERSION == "2025.4.0"
    assert f.version_problem("cloudflared version 2026.8.2 (built 2026-08-14-1200 UTC)") is None
    assert f.version_problem("cloudflared version 2025.4.0 (built 2025-04-01)") is None
    assert "2025.4.0 or newer" in f.version_problem("cloudflared version 2025.2.1 (built 2025-02-20)")
    assert "does not say" in f.version_problem("command not found")
