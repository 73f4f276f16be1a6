"""Stand-in for pip's get-pip.py, used by ansible-test to put pip into the venvs it makes.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which is not reachable from
every machine (it is not from this project's CI). This script does the same job with the
standard library's ensurepip and then lets pip install the exact version ansible-test asked for
(from PyPI, which is reachable). run-tests.sh copies it into ansible-test's cache only when no
real bootstrap script is cached there already. Arguments are get-pip.py's: pip install options
and requirement specifiers, plus --no-setuptools / --no-wheel.
"""
import subprocess
import sys


def main(argv):
    args = [a for a in argv if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main(sys.argv[1:])
