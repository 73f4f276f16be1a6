# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of selfhost.mastodon for Mastodon releases: version comparison, the preflight that
checks a release's needs against what the host offers, release tag selection and the quoting of
.env.production values for Mastodon's dotenv parser.

Kept in Python (not Jinja) so that each rule has unit tests: tests/unit/plugins/filter/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

# --- Versions ------------------------------------------------------------------------------

_NUMBERS = re.compile(r"^\d+(?:\.\d+)*")


def upstream_version(value):
    """The upstream part of a Debian package version, or a plain version: '1:3.3+b1' -> '3.3',
    '5:7.0.15-1~deb12u10' -> '7.0.15', '17+278+deb13u1' -> '17', '20.19.2+dfsg-1' -> '20.19.2',
    '3.1.7+really3.1.2-0+deb12u1' -> '3.1.2', 'v24.11.1' -> '24.11.1'. Empty (or '(none)') gives ''."""
    text = str(value or "").strip()
    if not text or text == "(none)":
        return ""
    text = text.split(":", 1)[1] if re.match(r"^\d+:", text) else text
    # Debian's "+really" marks a package that really holds an older upstream release.
    text = re.sub(r"^.*?[+~]really", "", text)
    text = text.lstrip("vV")
    match = _NUMBERS.match(text)
    return match.group(0) if match else ""


def _parts(value):
    text = upstream_version(value)
    if not text:
        raise AnsibleFilterError("not a version: %r" % (value,))
    return [int(p) for p in text.split(".")]


def _compare(left, right):
    a, b = _parts(left), _parts(right)
    width = max(len(a), len(b))
    a += [0] * (width - len(a))
    b += [0] * (width - len(b))
    return (a > b) - (a < b)


def _caret_or_tilde(op, version):
    """Lower and upper bound of npm's ^ and ~, and of RubyGems' ~> ('pessimistic')."""
    parts = [int(p) for p in upstream_version(version).split(".")]
    if op == "^":
        index = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
    elif op == "~":
        index = 0 if len(parts) == 1 else 1
    else:  # ~> 3.3 means >= 3.3, < 4; ~> 3.3.1 means >= 3.3.1, < 3.4
        index = max(len(parts) - 2, 0)
    upper = parts[:index + 1]
    upper[-1] += 1
    return [(">=", version), ("<", ".".join(str(p) for p in upper))]


_COMPARATOR = re.compile(r"(>=|<=|~>|>|<|=|\^|~)?\s*v?(\d+(?:\.(?:\d+|x|\*))*)")


def _clauses(requirement):
    """One alternative of a requirement (npm ranges: 'A || B'; gems: '>= 3.3, < 4') as a list
    of (operator, version). A bare version (as in .nvmrc: '22', or '22.12') means that line."""
    clauses = []
    for op, version in _COMPARATOR.findall(requirement):
        version = re.sub(r"\.(x|\*).*$", "", version)
        if op in ("^", "~", "~>"):
            clauses += _caret_or_tilde(op, version)
        elif op in ("", "="):
            clauses += _caret_or_tilde("~>", version + ".0") if version.count(".") < 2 else [("=", version)]
        else:
            clauses.append((op, version))
    return clauses


def version_satisfies(version, requirement):
    """True when version meets requirement: npm ranges ('>=20.19 <21 || >=22.12', '^22.12.0'),
    RubyGems requirements ('>= 3.3.0', '~> 3.4', '>= 3.2, < 4'), or a bare version line
    ('22' or '3.3': that major, that minor). Debian versions are reduced to their upstream part."""
    requirement = str(requirement or "").strip()
    if not requirement or requirement in ("*", "x"):
        return True
    if not upstream_version(version):
        return False
    checks = {">=": lambda c: c >= 0, ">": lambda c: c > 0, "<=": lambda c: c <= 0,
              "<": lambda c: c < 0, "=": lambda c: c == 0}
    for alternative in requirement.split("||"):
        clauses = _clauses(alternative)
        if not clauses:
            raise AnsibleFilterError("cannot read the version requirement %r" % requirement)
        if all(checks[op](_compare(version, bound)) for op, bound in clauses):
            return True
    return False


# --- What the host offers --------------------------------------------------------------------

def apt_candidates(policy_output):
    """Parse `apt-cache policy NAME...` into {name: candidate version or ''}."""
    found = {}
    name = None
    for line in str(policy_output or "").splitlines():
        head = re.match(r"^(\S+):\s*$", line)
        if head:
            name = head.group(1)
            found[name] = ""
            continue
        cand = re.match(r"^\s+Candidate:\s*(\S+)", line)
        if cand and name:
            found[name] = "" if cand.group(1) == "(none)" else cand.group(1)
    return found


# --- What the release needs ------------------------------------------------------------------

def gemfile_ruby(gemfile):
    """The `ruby '...'` requirement of a Gemfile ('>= 3.3.0'), or '' when it names none or reads
    .ruby-version (`ruby file: '.ruby-version'`, which the .ruby-version check covers)."""
    for line in str(gemfile or "").splitlines():
        match = re.match(r"""^\s*ruby\s*\(?\s*(['"])([^'"]+)\1(?:\s*,\s*(['"])([^'"]+)\3)?""", line)
        if match:
            return ", ".join(p for p in (match.group(2), match.group(4)) if p)
    return ""


def _pm(package_manager):
    match = re.match(r"^\s*([a-z]+)@(\d+(?:\.\d+)*)", str(package_manager or ""))
    return (match.group(1), match.group(2)) if match else (None, None)


def release_preflight(needs, offers):
    """Compare a release's needs with what the host offers; return a list of problems (empty:
    the host can install this release). Each problem names the need, the offer and the variable
    to change.

    needs: release, ruby_version (.ruby-version), gemfile_ruby, nvmrc, engines_node,
      package_manager, postgresql, redis, libvips, ffmpeg (minimums from the release notes).
    offers: ruby_source (rbenv|system), ruby (apt candidate), nodejs_source
      (nodesource|distribution), nodejs (apt candidate), nodejs_major (NodeSource line),
      postgresql_source (distribution|pgdg), postgresql, redis, libvips, ffmpeg (apt candidates).
    """
    needs = dict(needs or {})
    offers = dict(offers or {})
    release = needs.get("release", "this release")
    problems = []

    def check(what, offered, requirement, variable, source):
        if not requirement:
            return
        if not upstream_version(offered):  # '' or apt's "(none)": no candidate
            problems.append("%s: %s needs %s %s; the host offers none (%s). Change %s."
                            % (what, release, what, requirement, source, variable))
        elif not version_satisfies(offered, requirement):
            problems.append("%s: %s needs %s %s; the host offers %s (%s). Change %s."
                            % (what, release, what, requirement, upstream_version(offered), source, variable))

    # Ruby: rbenv builds exactly .ruby-version; the distribution's ruby must meet the Gemfile
    # (or, without a requirement there, the .ruby-version's minor line or newer).
    ruby_version = str(needs.get("ruby_version") or "").strip()
    ruby_req = needs.get("gemfile_ruby") or (">= %s" % ".".join(upstream_version(ruby_version).split(".")[:2])
                                             if upstream_version(ruby_version) else "")
    if offers.get("ruby_source") == "system":
        check("Ruby", offers.get("ruby"), ruby_req,
              "mastodon_stack_ruby_source (rbenv builds Ruby %s)" % (ruby_version or "from .ruby-version"),
              "the distribution's ruby package, mastodon_stack_ruby_source: system")
    elif not ruby_version:
        problems.append("Ruby: %s has no .ruby-version, which rbenv needs to know what to build "
                        "(mastodon_stack_ruby_source: rbenv). Check mastodon_stack_version." % release)

    # Node.js: package.json engines.node is the requirement; .nvmrc's line when engines is absent.
    nvmrc = str(needs.get("nvmrc") or "").strip().lstrip("v")
    node_req = needs.get("engines_node") or (">= %s" % nvmrc if upstream_version(nvmrc) else "")
    if offers.get("nodejs_source") == "nodesource":
        check("Node.js", str(offers.get("nodejs_major") or ""), node_req,
              "mastodon_stack_nodejs_major", "NodeSource node_%s.x, mastodon_stack_nodejs_major" % offers.get("nodejs_major"))
    else:
        check("Node.js", offers.get("nodejs"), node_req,
              "mastodon_stack_nodejs_source (nodesource with mastodon_stack_nodejs_major)",
              "the distribution's nodejs package, mastodon_stack_nodejs_source: distribution")

    # Yarn: the release names it in packageManager and the role runs it only through corepack's
    # shim (never the distribution's yarnpkg, Yarn 1). corepack comes with NodeSource's nodejs up
    # to Node.js 24 (Node.js 25 stopped bundling it), or from the npm registry for the
    # distribution's nodejs (mastodon_stack_corepack_version): see corepack_source.
    manager = _pm(needs.get("package_manager"))[0]
    if needs.get("package_manager") and manager != "yarn":
        problems.append("Yarn: %s names packageManager %r; the role installs JavaScript packages with "
                        "Yarn through corepack only. Check mastodon_stack_version."
                        % (release, needs.get("package_manager")))
    if not corepack_source(offers.get("nodejs_source"), offers.get("nodejs_major")):
        problems.append("Yarn: %s runs Yarn through corepack, and NodeSource's Node.js %s ships without "
                        "corepack (Node.js 25 and newer no longer bundle it). Change mastodon_stack_nodejs_major "
                        "(24 or older bundles corepack), or mastodon_stack_nodejs_source: distribution (npm "
                        "installs the corepack of mastodon_stack_corepack_version from the npm registry)."
                        % (release, offers.get("nodejs_major")))

    # PostgreSQL, Redis and libvips: the minimums of the release notes.
    check("PostgreSQL", offers.get("postgresql"), needs.get("postgresql") and ">= %s" % needs["postgresql"],
          "mastodon_stack_postgresql_source (pgdg: the PostgreSQL apt repository)",
          "postgresql package, mastodon_stack_postgresql_source: %s" % offers.get("postgresql_source", "distribution"))
    check("Redis", offers.get("redis"), needs.get("redis") and ">= %s" % needs["redis"],
          "the distribution (Redis comes from its redis-server package) or mastodon_stack_version",
          "redis-server package")
    check("libvips", offers.get("libvips"), needs.get("libvips") and ">= %s" % needs["libvips"],
          "the distribution (libvips comes from its libvips42/libvips42t64 package) or mastodon_stack_version",
          "libvips package")
    check("FFmpeg", offers.get("ffmpeg"), needs.get("ffmpeg") and ">= %s" % needs["ffmpeg"],
          "the distribution (FFmpeg comes from its ffmpeg package) or mastodon_stack_version",
          "ffmpeg package")
    return problems


def corepack_source(nodejs_source, nodejs_major=None):
    """Where the role's corepack (and so Yarn) comes from for a Node.js source: 'bundled'
    (NodeSource's nodejs up to Node.js 24 has /usr/bin/corepack), 'npm' (the distribution's
    nodejs: npm installs mastodon_stack_corepack_version), or '' (NodeSource's Node.js 25 or
    newer: no corepack, so no Yarn; the preflight refuses it)."""
    if nodejs_source == "nodesource":
        major = upstream_version(nodejs_major).split(".")[0]
        if not major or int(major) >= 25:
            return ""
        return "bundled"
    return "npm"


# --- Release tags ----------------------------------------------------------------------------

def newest_release(tags, pattern=r"^v(\d+)\.(\d+)\.(\d+)$", series=None):
    """The newest tag matching pattern (three number groups); with series ('4.7' or a tag such
    as 'v4.7.2') only tags of that MAJOR.MINOR. '' when none matches."""
    regex = re.compile(pattern)
    want = None
    if series:
        numbers = re.findall(r"\d+", str(series))
        want = [int(numbers[0]), int(numbers[1])] if len(numbers) >= 2 else None
    best, best_key = "", None
    for raw in tags or []:
        tag = re.sub(r"^.*refs/tags/", "", str(raw).strip())
        match = regex.match(tag)
        if not match:
            continue
        key = [int(g) for g in match.groups()[:3]]
        if want and key[:2] != want:
            continue
        if best_key is None or key > best_key:
            best, best_key = tag, key
    return best


def release_series(tag):
    """'v4.7.6' -> '4.7' ('' when the tag has no MAJOR.MINOR)."""
    numbers = re.findall(r"\d+", str(tag or ""))
    return "%s.%s" % (numbers[0], numbers[1]) if len(numbers) >= 2 else ""


# A series value of mastodon_stack_version: MAJOR.MINOR, with or without a leading v ("4.7",
# "v4.7"). "4", "4.7." and "4.x" are not series (validate.yml refuses them).
SERIES = re.compile(r"^v?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\Z")


def is_release_series(value):
    """True for a series value of mastodon_stack_version ('4.7' or 'v4.7')."""
    return isinstance(value, str) and SERIES.match(value) is not None


def resolve_release(tags, wanted, pattern=r"^v(\d+)\.(\d+)\.(\d+)$", installed=""):
    """The release tag mastodon_stack_version means, from the repository's tags (lines of
    `git ls-remote --tags` accepted): a series ('4.7', 'v4.7') is its newest tag matching
    pattern (never a pre-release such as v4.7.0-rc.1, which the pattern does not match, never
    another series); 'latest' the newest tag of the installed series when one runs, else the
    newest of all; anything else is an exact tag and stays as it is. '' when no tag fits."""
    wanted = str(wanted or "").strip()
    if is_release_series(wanted):
        return newest_release(tags, pattern, wanted.lstrip("v"))
    if wanted == "latest":
        return newest_release(tags, pattern, release_series(installed) or None)
    return wanted


def releases_between(tags, running, target, pattern=r"^v(\d+)\.(\d+)\.(\d+)$"):
    """The release tags an upgrade from running to target crosses: every tag matching pattern
    with running < tag <= target, oldest first, and target itself (also when the pattern does
    not match it, as for a pinned pre-release). Used to print each one's release notes."""
    if not upstream_version(target):
        return [target] if target else []
    regex = re.compile(pattern)
    found = {}
    for raw in tags or []:
        tag = re.sub(r"^.*refs/tags/", "", str(raw).strip())
        tag = re.sub(r"\^\{\}$", "", tag)
        match = regex.match(tag)
        if not match:
            continue
        key = tuple(int(g) for g in match.groups()[:3])
        if upstream_version(running) and _compare(".".join(map(str, key)), running) <= 0:
            continue
        if _compare(".".join(map(str, key)), target) > 0:
            continue
        found[tag] = key
    chosen = sorted(found, key=lambda t: found[t])
    if target and target not in chosen:
        chosen.append(target)
    return chosen


def upgrade_steps(steps, running, target, search_enabled=False):
    """The release-specific upgrade steps to run when moving from running to target: those of
    every release R with running < R <= target, in version order (the order of the list for
    one release), without search_only steps when search is off. Each step is a dict with
    version, command (tootctl arguments as one string) and description; the result adds argv."""
    chosen = []
    for index, step in enumerate(steps or []):
        if not isinstance(step, dict) or not step.get("version") or not step.get("command"):
            raise AnsibleFilterError("upgrade step needs version and command: %r" % (step,))
        if step.get("search_only") and not search_enabled:
            continue
        if _compare(step["version"], running) > 0 and _compare(step["version"], target) <= 0:
            chosen.append((_parts(step["version"]), index, dict(step, argv=str(step["command"]).split())))
    return [step for _key, _index, step in sorted(chosen, key=lambda c: (c[0], c[1]))]


# --- .env.production -------------------------------------------------------------------------

# Secrets a release no longer reads, with the first release that does without it. OTP_SECRET
# encrypted the two-factor secrets until 4.3 moved them to Active Record encryption; 4.4 stopped
# reading it. The secrets file keeps it (a restore of an older release needs it).
SECRETS_NOT_READ_SINCE = {"OTP_SECRET": "4.4.0"}


def release_env_secrets(names, release):
    """The secret names .env.production carries for release: names without those the release
    no longer reads (SECRETS_NOT_READ_SINCE). A release that is not a version ('', a branch)
    keeps them all: writing an unused secret is harmless, leaving out a needed one is not."""
    if not upstream_version(release):
        return list(names or [])
    return [name for name in names or []
            if name not in SECRETS_NOT_READ_SINCE or _compare(release, SECRETS_NOT_READ_SINCE[name]) < 0]


def dotenv_quote(value):
    """Quote value for .env.production so that Mastodon's dotenv gem (3.x) reads back exactly
    these characters: single quotes (taken literally: no escapes, no ${VAR} or $(cmd)) unless the
    value holds a single quote; then double quotes with \\ \" and \\$ escaped. Line breaks cannot
    be kept byte-for-byte and are refused."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = "" if value is None else str(value)
    if "\n" in text or "\r" in text:
        raise AnsibleFilterError("dotenv_quote: a .env.production value cannot contain a line break")
    if "'" not in text:
        return "'%s'" % text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"%s"' % escaped


class FilterModule(object):
    """Filters for Mastodon releases and .env.production."""

    def filters(self):
        return {
            "upstream_version": upstream_version,
            "version_satisfies": version_satisfies,
            "apt_candidates": apt_candidates,
            "gemfile_ruby": gemfile_ruby,
            "release_preflight": release_preflight,
            "corepack_source": corepack_source,
            "newest_release": newest_release,
            "release_series": release_series,
            "resolve_release": resolve_release,
            "releases_between": releases_between,
            "dotenv_quote": dotenv_quote,
            "release_env_secrets": release_env_secrets,
            "upgrade_steps": upgrade_steps,
        }
