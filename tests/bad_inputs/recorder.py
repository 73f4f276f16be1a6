# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records what each bad-input case observed, for the figures tests/bad_inputs/summary.py prints.

A case records four facts it measured itself: whether the input was refused, whether anything
had changed when it was refused, whether the message names the variable (or option), and
whether a secret showed up in the output. The record is appended to the file named by
SELFHOST_BAD_INPUTS_LOG (one JSON object a line); without that variable nothing is written.
The tests still assert every fact, so a bad case fails the test run in any case.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os


def record(suite, case, refused, changed, names_variable, secret_printed, accepted_why=None):
    path = os.environ.get('SELFHOST_BAD_INPUTS_LOG')
    if not path:
        return
    with open(path, 'a') as handle:
        handle.write(json.dumps(dict(suite=suite, case=case, refused=bool(refused),
                                     changed=bool(changed), names_variable=bool(names_variable),
                                     secret_printed=bool(secret_printed),
                                     accepted_why=accepted_why)) + '\n')
