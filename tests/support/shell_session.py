"""A person at a terminal: one bash on a pseudo-terminal, lines typed one after another.

The shell keeps its state between lines (``. .venv/bin/activate``, ``cd``, ``export`` work as
they do for a user), and prompts are answered as a person answers them: a password prompt
gets the password, a confirmation gets "yes". Each line's exit code, output and duration are
returned. Used by the user-path tests (molecule/journey, tests/user_path).
"""

import os
import pwd
import re
import shlex
import time
from pathlib import Path

import pexpect

_PROMPT = "__selfhost_prompt__> "
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


class Result:
    def __init__(self, line, rc, output, seconds):
        self.line, self.rc, self.output, self.seconds = line, rc, output, seconds

    def recap(self):
        """The PLAY RECAP counters per host: {host: {"ok": n, "changed": n, ...}}."""
        recap = {}
        for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", self.output, re.M):
            recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
        return recap

    def changed(self):
        return sum(c.get("changed", 0) for c in self.recap().values())

    def failed(self):
        return sum(c.get("failed", 0) + c.get("unreachable", 0) for c in self.recap().values())


def _command(env):
    """bash, or, when env's HOME is not the home folder of the passwd entry, bash in a mount
    namespace of its own where that entry's ~/.ssh shows HOME's ~/.ssh: OpenSSH reads its keys,
    known_hosts and config from the passwd entry's folder and ignores HOME. Nothing outside the
    namespace changes (the passwd entry's ~/.ssh is made, empty, when missing)."""
    bash = ["bash", "--norc", "--noprofile"]
    home = Path(env.get("HOME", "~")).expanduser()
    real = Path(pwd.getpwuid(os.getuid()).pw_dir)
    if home.resolve() == real.resolve() or not (home / ".ssh").is_dir():
        return bash
    (real / ".ssh").mkdir(mode=0o700, exist_ok=True)
    script = (f"mount --bind {shlex.quote(str(home / '.ssh'))} {shlex.quote(str(real / '.ssh'))}"
              f" && exec {' '.join(bash)}")
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c", script]


class ShellSession:
    """``bash`` on a pseudo-terminal in *cwd* with *env*; every line is logged to *log*."""

    def __init__(self, cwd, env, log):
        self.log_path = Path(log)
        self._log = self.log_path.open("w", encoding="utf-8")
        command = _command(env)
        self.child = pexpect.spawn(command[0], command[1:], cwd=str(cwd), env=env,
                                   encoding="utf-8", codec_errors="replace", timeout=30,
                                   dimensions=(50, 200))
        self.child.logfile_read = self._log
        self.child.sendline(f"PS1='{_PROMPT}'; PS2=''; unset PROMPT_COMMAND")
        # The typed line may be echoed twice (by the terminal before bash reads it, and by
        # readline), each holding the prompt's text: wait for output only a command makes, then
        # for the prompt after it, so that the first command's output starts clean.
        self.child.sendline("echo __selfhost_ready__$((6 * 7))")
        self.child.expect_exact("__selfhost_ready__42")
        self.child.expect_exact(_PROMPT)

    def run(self, line, answers=(), timeout=1800):
        """Type *line*, answer prompts from *answers* (pairs of regex and reply, the reply
        typed when the regex shows), wait for the prompt; return a :class:`Result`."""
        answers = list(answers)
        patterns = [re.escape(_PROMPT)] + [a[0] for a in answers]
        self._log.write(f"\n### {time.strftime('%H:%M:%S')} typed: {line}\n")
        start = time.monotonic()
        self.child.sendline(line)
        output = ""
        while True:
            index = self.child.expect(patterns, timeout=timeout)
            output += self.child.before + (self.child.after if index else "")
            if index == 0:
                break
            self.child.sendline(answers[index - 1][1])
        seconds = time.monotonic() - start
        self.child.sendline("echo __rc=$?")
        self.child.expect(r"__rc=(\d+)")
        rc = int(self.child.match.group(1))
        self.child.expect_exact(_PROMPT)
        text = _ANSI.sub("", output)
        # The terminal echoes the typed line first: what follows is the command's output.
        text = text.split("\n", 1)[1] if "\n" in text else ""
        return Result(line, rc, text, seconds)

    def close(self):
        self.child.sendline("exit")
        self.child.close(force=True)
        self._log.close()
