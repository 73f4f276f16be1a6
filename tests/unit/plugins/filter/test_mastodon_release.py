# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the filters in plugins/filter/mastodon_release.py: version rules, the release
preflight, release tag selection and dotenv quoting (round-tripped through a reference parser
that follows the dotenv gem 3.x rules Mastodon uses)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.selfhost.mastodon.plugins.filter import mastodon_release as rel  # noqa: E402


# --- versions --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, upstream", [
    ("1:3.3+b1", "3.3"), ("1:3.1", "3.1"), ("5:7.0.15-1~deb12u10", "7.0.15"),
    ("5:8.0.2-3+deb13u3", "8.0.2"), ("17+278+deb13u1", "17"), ("15+248+deb12u2", "15"),
    ("20.19.2+dfsg-1+deb13u3", "20.19.2"), ("18.20.4+dfsg-1~deb12u3", "18.20.4"),
    ("8.16.1-1+deb13u2", "8.16.1"), ("3.1.7+really3.1.2-0+deb12u1", "3.1.2"), ("1:3.2~ubuntu1", "3.2"),
    ("3.2.3-1ubuntu0.24.04.9", "3.2.3"), ("16+257build1.1", "16"), ("v24.11.1", "24.11.1"), ("(none)", ""), ("", ""),
])
def test_upstream_version(raw, upstream):
    assert rel.upstream_version(raw) == upstream


@pytest.mark.parametrize("version, requirement, ok", [
    ("20.19.2", ">=20.19 <21 || >=22.12", True),
    ("20.18.0", ">=20.19 <21 || >=22.12", False),
    ("22.11.0", ">=20.19 <21 || >=22.12", False),
    ("24", ">=20.19 <21 || >=22.12", True),
    ("18.20.4+dfsg-1~deb12u3", ">=20", False),
    ("22.12.0", "^22.12.0", True), ("23.0.0", "^22.12.0", False),
    ("22.2.5", "~22.2", True), ("22.3.0", "~22.2", False), ("22.2.1", "~22.2.0", True), ("22.3.0", "~22.2.0", False),
    ("1:3.3+b1", ">= 3.3.0", True), ("1:3.1", ">= 3.3.0", False),
    ("3.4.8", "~> 3.3", True), ("4.0.0", "~> 3.3", False),
    ("3.3.9", "~> 3.3.1", True), ("3.4.0", "~> 3.3.1", False),
    ("3.3.8", ">= 3.2, < 4", True), ("4.0.1", ">= 3.2, < 4", False),
    ("22.18.0", "22", True), ("24.0.0", "22", False), ("99", ">=99", True), ("98.9", ">=99", False),
    ("20.19.2", "20.x", True), ("21.0.0", "20.x", False),
    ("17", ">= 14", True), ("13.9", ">= 14", False), ("5:7.0.15-1~deb12u10", ">= 7.0", True),
    ("8.14.1-3", ">= 8.13", True), ("8.12.2", ">= 8.13", False),
    ("", ">= 1", False), ("1.0", "", True),
])
def test_version_satisfies(version, requirement, ok):
    assert rel.version_satisfies(version, requirement) is ok


def test_unreadable_requirement_is_an_error():
    with pytest.raises(AnsibleFilterError):
        rel.version_satisfies("1.0", "banana")


POLICY = """nodejs:
  Installed: (none)
  Candidate: 20.19.2+dfsg-1+deb13u3
  Version table:
     20.19.2+dfsg-1+deb13u3 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
ruby:
  Installed: (none)
  Candidate: 1:3.3+b1
libvips42:
  Installed: (none)
  Candidate: (none)
"""


def test_apt_candidates():
    assert rel.apt_candidates(POLICY) == {"nodejs": "20.19.2+dfsg-1+deb13u3", "ruby": "1:3.3+b1", "libvips42": ""}


@pytest.mark.parametrize("gemfile, requirement", [
    ("source 'https://rubygems.org'\nruby '>= 3.3.0'\n", ">= 3.3.0"),
    ('ruby "~> 3.4", ">= 3.4.1"\n', "~> 3.4, >= 3.4.1"),
    ("ruby file: '.ruby-version'\n", ""),
    ("gem 'rails'\n", ""),
])
def test_gemfile_ruby(gemfile, requirement):
    assert rel.gemfile_ruby(gemfile) == requirement


# --- preflight -------------------------------------------------------------------------------

NEEDS = {"release": "v4.7.6", "ruby_version": "4.0.10", "gemfile_ruby": ">= 3.3.0", "nvmrc": "24",
         "engines_node": ">=22", "package_manager": "yarn@4.10.3", "postgresql": "14", "redis": "7.0",
         "libvips": "8.13", "ffmpeg": "5.1"}
# apt candidates; ffmpeg's as `apt-cache policy ffmpeg` showed them in the test images
# (selfhost/{debian13,debian12,ubuntu2404}-systemd) on 2026-12-07.
DEBIAN13 = {"ruby": "1:3.3+b1", "nodejs": "20.19.2+dfsg-1+deb13u3", "postgresql": "17+278+deb13u1",
            "redis": "5:8.0.2-3+deb13u3", "libvips": "8.16.1-1+deb13u2", "nodejs_major": 24,
            "postgresql_source": "distribution", "ffmpeg": "7:7.1.5-0+deb13u1"}
DEBIAN12 = {"ruby": "1:3.1", "nodejs": "18.20.4+dfsg-1~deb12u3", "postgresql": "15+248+deb12u2",
            "redis": "5:7.0.15-1~deb12u10", "libvips": "8.14.1-3+deb12u3", "nodejs_major": 24,
            "postgresql_source": "distribution", "ffmpeg": "7:5.1.9-0+deb12u1"}
UBUNTU2404 = {"ruby": "1:3.2~ubuntu1", "nodejs": "18.19.1+dfsg-6ubuntu5", "postgresql": "16+257build1.1",
              "redis": "5:7.0.15-1ubuntu0.24.04.1", "libvips": "8.15.1-1.1build4", "nodejs_major": 24,
              "postgresql_source": "distribution", "ffmpeg": "7:6.1.1-3ubuntu5"}


def _offers(host, ruby, node):
    return dict(host, ruby_source=ruby, nodejs_source=node)


def test_guide_sources_accept_the_release():
    assert rel.release_preflight(NEEDS, _offers(DEBIAN13, "rbenv", "nodesource")) == []
    assert rel.release_preflight(NEEDS, _offers(DEBIAN12, "rbenv", "nodesource")) == []


@pytest.mark.parametrize("host", [DEBIAN13, DEBIAN12, UBUNTU2404], ids=["debian13", "debian12", "ubuntu2404"])
def test_ffmpeg_of_every_supported_distribution_is_accepted(host):
    # Debian 12's 5.1.9 (the test double's image too) is just above Mastodon 4.6's minimum.
    assert rel.release_preflight(NEEDS, _offers(host, "rbenv", "nodesource")) == []


@pytest.mark.parametrize("ffmpeg, offered", [("7:4.4.2-0ubuntu0.22.04.1", "offers 4.4.2"), ("7:5.0.1-3", "offers 5.0.1"),
                                             ("", "offers none"), ("(none)", "offers none")])
def test_ffmpeg_older_than_5_1_or_missing_is_refused(ffmpeg, offered):
    problems = rel.release_preflight(NEEDS, _offers(dict(DEBIAN13, ffmpeg=ffmpeg), "rbenv", "nodesource"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("FFmpeg: v4.7.6 needs FFmpeg >= 5.1; the host %s" % offered)
    assert "ffmpeg package" in problems[0]


def test_ffmpeg_is_not_checked_without_a_minimum():
    needs = dict(NEEDS, ffmpeg="")
    assert rel.release_preflight(needs, _offers(dict(DEBIAN13, ffmpeg=""), "rbenv", "nodesource")) == []


@pytest.mark.parametrize("major", [25, "26", 30])
def test_nodesource_without_corepack_is_refused(major):
    """NodeSource's Node.js 25 and newer no longer bundle corepack, the role's only way to Yarn."""
    problems = rel.release_preflight(NEEDS, dict(_offers(DEBIAN13, "rbenv", "nodesource"), nodejs_major=major))
    assert len(problems) == 1, problems
    assert problems[0].startswith("Yarn: v4.7.6 runs Yarn through corepack, and NodeSource's Node.js %s ships "
                                  "without corepack" % major)
    assert "mastodon_stack_nodejs_major" in problems[0] and "mastodon_stack_nodejs_source: distribution" in problems[0]


def test_distribution_node_gets_corepack_from_npm():
    """Yarn comes another way for the distribution's nodejs: npm installs corepack."""
    needs = dict(NEEDS, engines_node=">=18", nvmrc="18")
    assert rel.release_preflight(needs, dict(_offers(DEBIAN12, "rbenv", "distribution"), nodejs_major=30)) == []


@pytest.mark.parametrize("source, major, expected", [
    ("nodesource", 24, "bundled"), ("nodesource", "22", "bundled"), ("nodesource", 25, ""),
    ("nodesource", "", ""), ("distribution", 24, "npm"), ("distribution", 30, "npm")])
def test_corepack_source(source, major, expected):
    assert rel.corepack_source(source, major) == expected


def test_distribution_node_is_refused_with_need_offer_and_variable():
    problems = rel.release_preflight(NEEDS, _offers(DEBIAN13, "rbenv", "distribution"))
    assert len(problems) == 1
    assert problems[0].startswith("Node.js: v4.7.6 needs Node.js >=22; the host offers 20.19.2")
    assert "mastodon_stack_nodejs_source" in problems[0]


def test_system_ruby_on_debian12_is_refused():
    problems = rel.release_preflight(NEEDS, _offers(DEBIAN12, "system", "nodesource"))
    assert problems == ["Ruby: v4.7.6 needs Ruby >= 3.3.0; the host offers 3.1 (the distribution's ruby "
                        "package, mastodon_stack_ruby_source: system). Change mastodon_stack_ruby_source "
                        "(rbenv builds Ruby 4.0.10)."]


def test_ruby_without_gemfile_requirement_uses_ruby_version_line():
    needs = dict(NEEDS, gemfile_ruby="", ruby_version="3.4.8")
    assert rel.release_preflight(needs, _offers(DEBIAN13, "system", "nodesource"))[0].startswith(
        "Ruby: v4.7.6 needs Ruby >= 3.4; the host offers 3.3")


def test_nodesource_major_too_old():
    problems = rel.release_preflight(NEEDS, dict(_offers(DEBIAN13, "rbenv", "nodesource"), nodejs_major=20))
    assert len(problems) == 1 and "offers 20 (NodeSource node_20.x" in problems[0]
    assert problems[0].endswith("Change mastodon_stack_nodejs_major.")


def test_nvmrc_is_the_need_without_engines():
    needs = dict(NEEDS, engines_node="", nvmrc="v22.12.0")
    assert rel.release_preflight(needs, _offers(DEBIAN13, "rbenv", "nodesource")) == []
    assert "needs Node.js >= 22.12.0" in rel.release_preflight(needs, _offers(DEBIAN13, "rbenv", "distribution"))[0]


def test_double_needing_node_99_and_ruby_9_9_lists_both():
    needs = dict(NEEDS, release="v4.10.0-double", ruby_version="9.9.0", gemfile_ruby=">= 9.9",
                 engines_node=">=99", nvmrc="99")
    problems = rel.release_preflight(needs, _offers(DEBIAN13, "system", "distribution"))
    assert [p.split(":")[0] for p in problems] == ["Ruby", "Node.js"]
    assert "needs Ruby >= 9.9; the host offers 3.3" in problems[0]
    assert "needs Node.js >=99; the host offers 20.19.2" in problems[1]


def test_databases_and_libvips_minimums():
    host = dict(_offers(DEBIAN12, "rbenv", "nodesource"), postgresql="13+225", redis="5:6.0.16-1", libvips="")
    problems = rel.release_preflight(NEEDS, host)
    assert [p.split(":")[0] for p in problems] == ["PostgreSQL", "Redis", "libvips"]
    assert "offers 13 " in problems[0] and "mastodon_stack_postgresql_source" in problems[0]
    assert "offers 6.0.16 " in problems[1]
    assert "the host offers none" in problems[2]


def test_package_manager_other_than_yarn_is_refused():
    problems = rel.release_preflight(dict(NEEDS, package_manager="pnpm@9.1.0"), _offers(DEBIAN13, "rbenv", "nodesource"))
    assert len(problems) == 1 and problems[0].startswith("Yarn:")


def test_rbenv_needs_a_ruby_version_file():
    problems = rel.release_preflight(dict(NEEDS, ruby_version=""), _offers(DEBIAN13, "rbenv", "nodesource"))
    assert len(problems) == 1 and "no .ruby-version" in problems[0]


# --- release tags ----------------------------------------------------------------------------

TAGS = ["abc\trefs/tags/v4.6.6", "abc\trefs/tags/v4.6.9", "abc\trefs/tags/v4.7.4", "abc\trefs/tags/v4.7.6",
        "abc\trefs/tags/v4.7.10", "abc\trefs/tags/v4.8.0-alpha.1", "abc\trefs/tags/v4.10.0-rc.1", "v3.5.19"]


def test_newest_release_overall_and_within_a_series():
    assert rel.newest_release(TAGS) == "v4.7.10"
    assert rel.newest_release(TAGS, series="v4.6.6") == "v4.6.9"
    assert rel.newest_release(TAGS, series="4.7") == "v4.7.10"
    assert rel.newest_release(TAGS, series="4.9") == ""
    double = ["v4.9.0-double", "v4.9.1-double", "v4.10.0-double"]
    assert rel.newest_release(double, pattern=r"^v(\d+)\.(\d+)\.(\d+)-double$", series="v4.9.0-double") == "v4.9.1-double"
    assert rel.newest_release(double, pattern=r"^v(\d+)\.(\d+)\.(\d+)-double$") == "v4.10.0-double"


def test_release_series():
    assert rel.release_series("v4.7.6") == "4.7"
    assert rel.release_series("v4.10.0-double") == "4.10"
    assert rel.release_series("main") == ""


# --- upgrade steps ---------------------------------------------------------------------------

STEPS = [
    {"version": "v4.9.1-double", "command": "cache clear", "description": "b"},
    {"version": "v4.2.0", "command": "search deploy", "description": "index", "search_only": True},
    {"version": "v4.9.0-double", "command": "accounts cull", "description": "before"},
    {"version": "v4.9.1-double", "command": "search deploy --only accounts", "description": "s", "search_only": True},
    {"version": "v4.9.1", "command": "media refresh", "description": "a"},
    {"version": "v4.10.0", "command": "later", "description": "after"},
]


def test_upgrade_steps_in_range_and_order():
    chosen = rel.upgrade_steps(STEPS, "v4.9.0-double", "v4.9.1-double")
    assert [s["argv"] for s in chosen] == [["cache", "clear"], ["media", "refresh"]]
    with_search = rel.upgrade_steps(STEPS, "v4.9.0-double", "v4.9.1-double", True)
    assert [s["command"] for s in with_search] == ["cache clear", "search deploy --only accounts", "media refresh"]
    assert [s["command"] for s in rel.upgrade_steps(STEPS, "v4.1.5", "v4.2.3", True)] == ["search deploy"]
    assert rel.upgrade_steps(STEPS, "v4.1.5", "v4.2.3", False) == []


def test_upgrade_step_without_command_is_an_error():
    with pytest.raises(AnsibleFilterError):
        rel.upgrade_steps([{"version": "v4.9.1"}], "v4.9.0", "v4.9.1")


# --- dotenv quoting --------------------------------------------------------------------------
# A reference reader written from the rules of the dotenv gem 3.x (lib/dotenv/parser.rb and
# substitutions/): the line pattern; surrounding quotes removed; single-quoted values literal;
# double-quoted values: '\n' kept as backslash-n (non-legacy mode), then backslash-escapes
# removed except before '$'; unquoted and double-quoted values: ${VAR}/$VAR substituted and
# $(cmd) run unless escaped with a backslash. python-dotenv is not used as the reference: it
# unescapes \\ and \' inside single quotes, which the Ruby gem does not.

_LINE = re.compile(r"""
    (?:^|\A)\s*(?:export\s+)?([\w.]+)(?:\s*=\s*?|:\s+?)
    (\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^\#\r\n]+)?
    \s*(?:\#.*)?(?:$|\Z)""", re.X | re.M)
_VARIABLE = re.compile(r"(\\)?(\$)(?!\()\{?([A-Z0-9_]+)?\}?", re.I)
_COMMAND = re.compile(r"(\\)?\$(\((?:[^()]|\([^()]*\))+\))")


def _ruby_dotenv(text, env=None):
    env = dict(env or {})
    values = {}
    for key, raw in _LINE.findall(text.replace("\r\n", "\n")):
        value = raw.strip()
        quoted = re.match(r"\A(['\"])(.*)\1\Z", value, re.S)
        quote = quoted.group(1) if quoted else None
        value = quoted.group(2) if quoted else value
        if quote == '"':
            value = value.replace("\\n", "\\\\n").replace("\\r", "\\\\r")
        if quote != "'":
            value = re.sub(r"\\([^$])", r"\1", value)

            def variable(m):
                if m.group(1):
                    return m.group(0)[1:]
                if m.group(3):
                    return values.get(m.group(3), env.get(m.group(3), ""))
                return m.group(0)

            def command(m):
                if m.group(1):
                    return m.group(0)[1:]
                return "<ran %s>" % m.group(2)

            value = _COMMAND.sub(command, _VARIABLE.sub(variable, value))
        values[key] = value
    return values


NASTY = [
    "plain", "", "with space", "  padded  ", "hash # inside", "#leading", "dollar $HOME and ${HOME}",
    "cmd $(id) and `id`", "back\\slash", "ends with backslash\\", "\\n literal", "\\$HOME",
    "double \"quotes\"", "single 'quote'", "it's $HOME\\n \"all\" # of \\ them $(id)", "'", "\"",
    "=equals=", "tab\there", "unicode ünï €", "gmail app pwd abcd efgh ijkl mnop",
]


@pytest.mark.parametrize("value", NASTY)
def test_dotenv_quote_round_trips(value):
    line = "SMTP_PASSWORD=%s\n" % rel.dotenv_quote(value)
    parsed = _ruby_dotenv("# comment\nLOCAL_DOMAIN=social.example.com\n" + line + "AFTER='x'\n",
                          env={"HOME": "/root"})
    assert parsed["SMTP_PASSWORD"] == value
    assert parsed["AFTER"] == "x"


def test_reference_parser_is_not_trivial():
    # The reader really substitutes and strips comments: unquoted values would not survive.
    parsed = _ruby_dotenv("A=x # c\nB=$HOME\nC=\"$(id)\"\nD='$HOME'\n", env={"HOME": "/root"})
    assert parsed == {"A": "x", "B": "/root", "C": "<ran (id)>", "D": "$HOME"}


def test_dotenv_quote_refuses_line_breaks_and_formats_booleans():
    with pytest.raises(AnsibleFilterError):
        rel.dotenv_quote("two\nlines")
    assert rel.dotenv_quote(True) == "'true'"
    assert rel.dotenv_quote(587) == "'587'"


# --- secrets in .env.production ----------------------------------------------------------------

SECRET_NAMES = ["SECRET_KEY_BASE", "OTP_SECRET", "VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"]


@pytest.mark.parametrize("release, written", [
    ("v4.3.9", True), ("v4.3.0", True), ("v4.4.0-rc.1", False), ("v4.4.0", False), ("v4.7.7", False),
    ("v4.9.0-double", False), ("4.10.1", False), ("latest", True), ("", True), ("main", True)])
def test_otp_secret_is_written_only_for_releases_that_read_it(release, written):
    names = rel.release_env_secrets(SECRET_NAMES, release)
    assert ("OTP_SECRET" in names) is written
    assert [n for n in names if n != "OTP_SECRET"] == ["SECRET_KEY_BASE", "VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"]


# --- release series (mastodon_stack_version: "4.7") ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

STABLE = r"^v(\d+)\.(\d+)\.(\d+)$"
DOUBLE = r"^v(\d+)\.(\d+)\.(\d+)-double$"


@pytest.mark.parametrize("value, ok", [
    ("4.7", True), ("v4.7", True), ("4.10", True), ("5.0", True),
    ("4", False), ("4.7.", False), ("4.x", False), ("v4.7.7", False), ("latest", False), ("", False),
    ("4.7\n", False), (" 4.7", False), ("04.7", False), ("4..7", False), ("V4.7", False), (4.7, False),
])
def test_is_release_series(value, ok):
    assert rel.is_release_series(value) is ok


def test_resolve_release_series_latest_and_pin():
    assert rel.resolve_release(TAGS, "4.7") == "v4.7.10"
    assert rel.resolve_release(TAGS, "v4.6") == "v4.6.9"
    # Only pre-releases in 4.8 and 4.10: nothing stable to take.
    assert rel.resolve_release(TAGS, "4.8") == ""
    assert rel.resolve_release(TAGS, "4.10") == ""
    assert rel.resolve_release(TAGS, "latest") == "v4.7.10"
    assert rel.resolve_release(TAGS, "latest", installed="v4.6.6") == "v4.6.9"
    # An exact tag pins, whatever the repository holds.
    assert rel.resolve_release(TAGS, "v4.7.4") == "v4.7.4"
    assert rel.resolve_release(TAGS, "v4.8.0-alpha.1") == "v4.8.0-alpha.1"


def test_resolve_release_with_the_double_ignores_its_pre_release():
    double = ["a\trefs/tags/v4.9.0-double", "a\trefs/tags/v4.9.1-double", "a\trefs/tags/v4.9.2-rc.1-double",
              "a\trefs/tags/v4.10.0-double"]
    assert rel.resolve_release(double, "4.9", DOUBLE) == "v4.9.1-double"
    assert rel.resolve_release(double, "v4.10", DOUBLE) == "v4.10.0-double"


def test_releases_between():
    tags = ["v4.7.4", "v4.7.5", "v4.7.6^{}", "a\trefs/tags/v4.7.6", "v4.7.7", "v4.7.8-rc.1", "v4.8.0", "v4.6.9"]
    assert rel.releases_between(tags, "v4.7.4", "v4.7.7") == ["v4.7.5", "v4.7.6", "v4.7.7"]
    assert rel.releases_between(tags, "v4.6.9", "v4.7.5") == ["v4.7.4", "v4.7.5"]
    # A pinned pre-release is still listed (its notes are the ones to read).
    assert rel.releases_between(tags, "v4.7.7", "v4.7.8-rc.1") == ["v4.7.8-rc.1"]
    assert rel.releases_between(tags, "v4.7.7", "v4.7.7") == ["v4.7.7"]
    assert rel.releases_between(["v4.9.1-double"], "v4.9.0-double", "v4.9.1-double", DOUBLE) == ["v4.9.1-double"]


_numbers = hst.integers(min_value=0, max_value=30)
_tag = hst.builds(lambda a, b, c, suffix: "v%d.%d.%d%s" % (a, b, c, suffix),
                  hst.integers(min_value=3, max_value=5), hst.integers(min_value=0, max_value=12), _numbers,
                  hst.sampled_from(["", "", "", "-rc.1", "-alpha.2", "-beta1", "rc2"]))


@settings(max_examples=300, deadline=None)
@given(tags=hst.lists(_tag, max_size=25), major=hst.integers(min_value=3, max_value=5),
       minor=hst.integers(min_value=0, max_value=12), prefix=hst.sampled_from(["", "v"]),
       ls_remote=hst.booleans())
def test_series_resolves_to_the_newest_stable_tag_of_that_series(tags, major, minor, prefix, ls_remote):
    """Whatever the repository holds: the answer is a stable tag of the asked series, no stable
    tag of that series is newer, and '' only when the series has no stable tag at all."""
    lines = ["0123abcd\trefs/tags/" + t for t in tags] if ls_remote else tags
    got = rel.resolve_release(lines, "%s%d.%d" % (prefix, major, minor))
    stable = [t for t in tags if re.match(STABLE, t) and rel.release_series(t) == "%d.%d" % (major, minor)]
    if not stable:
        assert got == ""
        return
    assert got in stable
    assert re.match(STABLE, got), "a pre-release was chosen: %s" % got
    assert rel.release_series(got) == "%d.%d" % (major, minor)
    assert all(rel._compare(t, got) <= 0 for t in stable)
