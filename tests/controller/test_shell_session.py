"""The terminal the user-path tests type into (tests/support/shell_session.py): each line's
exit code, output and time belong to that line, the shell keeps its state between lines, and
prompts are answered."""

from support.shell_session import ShellSession


def session(tmp_path):
    return ShellSession(tmp_path, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb"},
                        tmp_path / "shell.log")


def test_each_line_gets_its_own_exit_code_output_and_time(tmp_path):
    shell = session(tmp_path)
    try:
        first = shell.run("sleep 1; echo first-line-output")
        assert first.rc == 0 and first.seconds >= 1.0, (first.rc, first.seconds)
        assert "first-line-output" in first.output
        second = shell.run("echo second; false")
        assert second.rc == 1 and "second" in second.output and "first-line-output" not in second.output
        shell.run("export JOURNEY_TEST_VALUE=kept; cd /")
        third = shell.run("echo $JOURNEY_TEST_VALUE $PWD")
        assert "kept /" in third.output
    finally:
        shell.close()


def test_prompts_are_answered(tmp_path):
    shell = session(tmp_path)
    try:
        result = shell.run('read -r -p "Type yes to go on: " a; echo "got=$a"',
                           answers=[(r"Type yes to go on: ?$", "yes")])
        assert result.rc == 0 and "got=yes" in result.output
    finally:
        shell.close()


def test_recap_counts_are_read_per_host(tmp_path):
    shell = session(tmp_path)
    try:
        result = shell.run("printf 'laptop : ok=5 changed=2 unreachable=0 failed=0\\n'")
        assert result.recap() == {"laptop": {"ok": 5, "changed": 2, "unreachable": 0, "failed": 0}}
        assert result.changed() == 2 and result.failed() == 0
    finally:
        shell.close()
