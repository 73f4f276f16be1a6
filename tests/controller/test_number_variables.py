"""Every number variable of every role refuses a float NaN or infinity with its name (issue 25).

ansible-core's own int check (a role's argument spec, run before the role's first task) stops
the play on a YAML ``.inf`` with "cannot convert Infinity to integer", naming no variable. So
the roles' number options have type raw in meta/argument_specs.yml, and each validate entry
point checks them first (plugins/module_utils/_validate.py finite_problem), then as numbers in
their ranges. This test reads the options from the argument specs themselves, so a number
option added later is covered without a new case: each gets one non-finite value (.inf, -.inf,
.nan or 1.0e+999 in turn) in one ansible-playbook run (check mode, local connection), and must
be refused before any change with its name in the message.
"""
import math
from pathlib import Path

import pytest
import yaml

from test_bad_inputs_roles import BASE, files, host_name, host_vars, private_key_file, run_validate, task_results

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(BASE)
NON_FINITE = [float("inf"), float("-inf"), float("nan"), float("1.0e+999")]


def options(role):
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def number_options():
    """(role, variable, value as the variable takes it): top-level raw options and lists of raw."""
    found = []
    for role in ROLES:
        for name, option in sorted(options(role).items()):
            if option.get("type") == "raw":
                found.append((role, name, "number"))
            elif option.get("elements") == "raw":
                found.append((role, name, "list"))
    return found


NUMBERS = number_options()


def test_no_option_keeps_ansible_cores_int_or_float_type():
    """An int or float option would bring back the nameless "cannot convert Infinity" stop."""
    def walk(opts, where):
        for name, option in opts.items():
            for key in ("type", "elements"):
                assert option.get(key) not in ("int", "float"), (where, name, key, option.get(key))
            walk(option.get("options") or {}, where + "." + name)
    for role in ROLES:
        spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for entry, body in spec["argument_specs"].items():
            walk(body.get("options") or {}, "%s.%s" % (role, entry))
    # The raw options are the numbers the roles had (62 when this test was written).
    assert len(NUMBERS) >= 60, NUMBERS


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = files(tmp_path_factory.mktemp("non-finite"))
    private = private_key_file(tmp)
    hosts, cases = {}, {}
    for index, (role, name, shape) in enumerate(NUMBERS):
        bad = NON_FINITE[index % len(NON_FINITE)]
        value = [bad] if shape == "list" else bad
        case = host_name("%s %s" % (name, index))
        hosts[case] = host_vars(role, {name: value}, tmp, private)
        cases[(role, name)] = case
    proc = run_validate(hosts, tmp / "inventory-non-finite.yml", tmp, "--forks", "10",
                        env={"SSH_AUTH_SOCK": None}, timeout=900)
    facts = {host: {"failed": False, "msgs": [], "accepted": False, "changed": False} for host in hosts}
    for host, result, item in task_results(proc.stdout):
        if host not in facts:
            continue
        facts[host]["changed"] |= bool(result.get("changed"))
        if item.get("failed"):
            facts[host]["failed"] = True
            facts[host]["msgs"].append(str(item.get("msg", "")))
        if result.get("msg") == "VALIDATE-ACCEPTED":
            facts[host]["accepted"] = True
    return {key: facts[case] for key, case in cases.items()}


@pytest.mark.parametrize("role,name,shape", NUMBERS, ids=["%s-%s" % (r, n) for r, n, _s in NUMBERS])
def test_a_non_finite_number_is_refused_with_the_variable_named(outcomes, role, name, shape):
    facts = outcomes[(role, name)]
    assert facts["failed"] and not facts["accepted"], facts
    assert not facts["changed"], facts
    assert any(name in msg and "finite" in msg for msg in facts["msgs"]), facts["msgs"]
    assert not any("cannot convert" in msg for msg in facts["msgs"]), facts["msgs"]


def test_the_values_used_are_not_finite():
    assert not any(math.isfinite(value) for value in NON_FINITE)
