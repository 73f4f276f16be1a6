"""What the owner of the server checks after base_os ran.

SSH logins are driven with a real ssh client inside the container against its own sshd on
127.0.0.1 (and from the controller to the container's address on the project's own test
network); firewall behaviour is checked from the controller and from a second network
namespace inside the container. No traffic leaves 127.0.0.1 or the project's containers.
"""

import json
import shlex
import socket
import subprocess

import pytest

ADMIN = "mastoadmin"
PORT = 2222  # base_os_ssh_port in molecule.yml
KEYS = "/root/test-keys"
DROPIN = "/etc/ssh/sshd_config.d/00-selfhost.conf"
TABLE = "selfhost_filter"
SSH_OPTS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "
    "-o LogLevel=ERROR"
)


def ssh_key(host, user, key, port=PORT, command="id -un"):
    return host.run(
        f"ssh {SSH_OPTS} -o BatchMode=yes -o IdentitiesOnly=yes -i {KEYS}/id_{key} "
        f"-p {port} {user}@127.0.0.1 {shlex.quote(command)}"
    )


def ssh_password(host, user, port=PORT):
    # sshpass -f: the password stays in a 0600 file, never on a command line.
    return host.run(
        f"sshpass -f {KEYS}/password ssh {SSH_OPTS} -o PubkeyAuthentication=no "
        f"-o PreferredAuthentications=password,keyboard-interactive "
        f"-o NumberOfPasswordPrompts=1 -p {port} {user}@127.0.0.1 id -un"
    )


def container_ip(host):
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", host.backend.host],
        check=True, capture_output=True, text=True,
    ).stdout
    networks = json.loads(out)
    # The scenario network is selfhost-base_os-<distro> (one per distro, see .config/molecule).
    name = next(n for n in networks if n.startswith("selfhost-base_os"))
    return networks[name]["IPAddress"]


def tcp_open(address, port, timeout=3.0):
    """True: connected. False: refused. None: no answer at all (dropped)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except (socket.timeout, TimeoutError):
        return None


# --- Logins -----------------------------------------------------------------------------


def test_key_login_succeeds(host):
    result = ssh_key(host, ADMIN, "admin")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == ADMIN


def test_key_given_as_a_key_line_works_too(host):
    result = ssh_key(host, ADMIN, "backup")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == ADMIN


def test_unknown_key_is_refused(host):
    result = ssh_key(host, ADMIN, "stranger")
    assert result.rc == 255
    assert "Permission denied (publickey)" in result.stderr


@pytest.fixture()
def control_sshd(host):
    """A second sshd on port 2299 that DOES accept passwords (command-line -o beats the
    config files). If the password logins below succeed here, the passwords are right and
    the refusal on the real port comes from the hardening, not from a wrong password."""
    pidfile = "/run/sshd-control.pid"
    started = host.run(
        f"/usr/sbin/sshd -p 2299 -o PidFile={pidfile} -o PasswordAuthentication=yes "
        "-o KbdInteractiveAuthentication=yes -o AuthenticationMethods=any "
        "-o PermitRootLogin=yes"
    )
    assert started.rc == 0, started.stderr
    yield 2299
    host.run(f"kill $(cat {pidfile})")


def is_ubuntu(host):
    return host.system_info.distribution.lower() == "ubuntu"


@pytest.mark.parametrize("user", [ADMIN, "root", "ubuntu"])
def test_password_login_is_refused(host, control_sshd, user):
    """prepare.yml gave each a password and left a cloud-init drop-in turning passwords on;
    on Ubuntu it also made the images' default `ubuntu` account (left as it is by the role)."""
    if user == "ubuntu" and not is_ubuntu(host):
        pytest.skip("the default ubuntu account exists only on Ubuntu")
    control = ssh_password(host, user, port=control_sshd)
    assert control.rc == 0, f"control login with the password failed: {control.stderr}"
    assert control.stdout.strip() == user

    result = ssh_password(host, user)
    assert result.rc != 0
    assert "Permission denied (publickey)" in result.stderr
    assert result.stdout.strip() == ""


def test_root_without_key_cannot_log_in(host):
    result = ssh_key(host, "root", "admin")
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_admin_can_use_sudo(host):
    result = ssh_key(host, ADMIN, "admin", command="sudo -n id -un")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "root"


# --- sshd configuration -------------------------------------------------------------------


def effective_sshd(host, user):
    out = host.check_output(f"/usr/sbin/sshd -T -C user={user},host=localhost,addr=127.0.0.1")
    settings = {}
    for line in out.splitlines():
        key, _sep, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("user", [ADMIN, "root"])
def test_sshd_effective_settings(host, user):
    s = effective_sshd(host, user)
    assert s["port"] == [str(PORT)]
    assert s["passwordauthentication"] == ["no"]
    assert s["kbdinteractiveauthentication"] == ["no"]
    assert s["pubkeyauthentication"] == ["yes"]
    assert s["authenticationmethods"] == ["publickey"]
    assert s["permitrootlogin"] == ["without-password"] or s["permitrootlogin"] == [
        "prohibit-password"
    ]
    assert s["permitemptypasswords"] == ["no"]
    assert s["x11forwarding"] == ["no"]
    assert s["maxauthtries"] == ["3"]
    assert s["logingracetime"] == ["30"]


def test_sshd_listens_on_the_configured_port_only(host):
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    assert not host.socket("tcp://0.0.0.0:22").is_listening


def test_cloud_init_dropin_does_not_win(host):
    # prepare.yml's stand-in for cloud-init's 50-cloud-init.conf says PasswordAuthentication yes
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").contains("PasswordAuthentication yes")
    assert effective_sshd(host, ADMIN)["passwordauthentication"] == ["no"]


def test_sshd_runs_as_a_service_not_through_the_socket(host):
    # Ubuntu 24.04 starts sshd through ssh.socket; the role switches to ssh.service so that
    # the Port in sshd_config is what sshd listens on (on Debian there is no ssh.socket in use).
    assert host.service("ssh").is_running and host.service("ssh").is_enabled
    socket_state = host.run("systemctl is-enabled ssh.socket")
    assert socket_state.stdout.strip() != "enabled"
    assert host.run("systemctl is-active ssh.socket").stdout.strip() != "active"
    if is_ubuntu(host):
        assert socket_state.stdout.strip() == "disabled", socket_state.stdout


def test_needrestart_never_prompts(host):
    if not host.package("needrestart").is_installed:
        pytest.skip("needrestart is not installed (prepare.yml installs it on Ubuntu only)")
    conf = host.file("/etc/needrestart/conf.d/50-selfhost.conf")
    assert conf.contains("^\\$nrconf{restart} = 'a';")
    # needrestart reads its configuration as Perl: what it ends up with is automatic restarts.
    mode = host.run("perl -e 'our %nrconf; do \"/etc/needrestart/conf.d/50-selfhost.conf\"; print $nrconf{restart}'")
    assert mode.stdout.strip() == "a"
    # An apt run with needrestart's hook, without a terminal, completes on its own.
    run = host.run("timeout 180 apt-get install -y --reinstall less </dev/null")
    assert run.rc == 0, run.stderr


def test_dropin_is_included_first(host):
    main = host.file("/etc/ssh/sshd_config").content_string.splitlines()
    directives = [line.strip() for line in main if line.strip() and not line.startswith("#")]
    assert directives[0] == "Include /etc/ssh/sshd_config.d/*.conf"
    dropin = host.file(DROPIN)
    assert dropin.user == "root" and dropin.mode == 0o644
    assert "Managed by Ansible" in dropin.content_string.splitlines()[0]


def test_authorized_keys(host):
    keys = host.file(f"/home/{ADMIN}/.ssh/authorized_keys")
    assert keys.user == ADMIN
    assert keys.mode == 0o600
    lines = [line for line in keys.content_string.splitlines() if line.strip()]
    assert sorted(line.split()[-1] for line in lines) == ["admin@molecule", "backup@molecule"]


# --- Firewall -----------------------------------------------------------------------------


def test_nft_ruleset_matches_the_variables(host):
    doc = json.loads(host.check_output(f"nft -j list table inet {TABLE}"))["nftables"]
    chains = [i["chain"] for i in doc if "chain" in i]
    assert [(c["name"], c["hook"], c["policy"]) for c in chains] == [("input", "input", "drop")]

    sets = {i["set"]["name"]: i["set"].get("elem", []) for i in doc if "set" in i}

    def cidrs(elems):
        out = []
        for e in elems:
            if isinstance(e, dict) and "prefix" in e:
                out.append(f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}')
            else:
                out.append(str(e))
        return sorted(out)

    route = host.check_output("ip -4 -o route show dev eth0 scope link").split()[0]
    assert cidrs(sets["ssh_sources_v4"]) == sorted([route, "192.0.2.0/24"])
    assert cidrs(sets["ssh_sources_v6"]) == ["2001:db8:5e1f::/48"]

    # The only inbound ports accepted: SSH, plus the DHCPv6 client port from link-local.
    text = host.check_output(f"nft list table inet {TABLE}")
    accepted_ports = sorted(
        line.split("dport ")[1].split()[0] for line in text.splitlines()
        if "dport" in line and line.strip().endswith("accept")
    )
    assert accepted_ports == ["2222", "2222", "546"]
    first_rule = [line.strip() for line in text.splitlines() if "ct state" in line][0]
    assert first_rule == "ct state established,related accept"


@pytest.fixture()
def listener(host):
    """A throwaway TCP listener on port 8080 inside the container."""
    host.run(
        "nohup python3 -c 'import socket,time; s=socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 8080)); "
        "s.listen(); time.sleep(120)' >/dev/null 2>&1 & echo $! > /run/test-listener.pid"
    )
    host.run("for i in 1 2 3 4 5 6 7 8 9 10; do ss -ltn | grep -q ':8080 ' && break; sleep 0.3; done")
    yield 8080
    host.run("kill $(cat /run/test-listener.pid)")


def test_firewall_drops_other_ports_from_the_network(host, listener):
    # Control: the listener answers locally (loopback is accepted).
    local = host.run(f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {listener}), 3)'")
    assert local.rc == 0, local.stderr
    ip = container_ip(host)
    assert tcp_open(ip, PORT) is True, "SSH must be reachable from the allowed test network"
    assert tcp_open(ip, listener) is None, "port 8080 must be dropped (no answer at all)"
    assert tcp_open(ip, 22) is None, "the old SSH port must be dropped too"


@pytest.fixture()
def peer_namespace(host):
    """A second network namespace inside the container, wired by a veth pair, with one
    address in an allowed range (192.0.2.0/24) and one outside it (198.51.100.0/24)."""
    setup = [
        "ip netns add peer",
        "ip link add vh0 type veth peer name vp0",
        "ip link set vp0 netns peer",
        "ip addr add 192.0.2.1/24 dev vh0",
        "ip addr add 198.51.100.1/24 dev vh0",
        "ip link set vh0 up",
        "ip -n peer addr add 192.0.2.2/24 dev vp0",
        "ip -n peer addr add 198.51.100.2/24 dev vp0",
        "ip -n peer link set vp0 up",
        "ip -n peer link set lo up",
    ]
    result = host.run(" && ".join(setup))
    assert result.rc == 0, result.stderr
    yield
    host.run("ip link del vh0; ip netns del peer")


def connect_from_peer(host, source, target, port):
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(3); s.bind((sys.argv[1], 0))\n"
        "try:\n s.connect((sys.argv[2], int(sys.argv[3]))); print('open')\n"
        "except socket.timeout: print('dropped')\n"
        "except ConnectionRefusedError: print('refused')\n"
    )
    return host.check_output(
        f"ip netns exec peer python3 -c {shlex.quote(script)} {source} {target} {port}"
    )


def test_firewall_sources_from_a_second_namespace(host, peer_namespace, listener):
    assert connect_from_peer(host, "192.0.2.2", "192.0.2.1", PORT) == "open"
    assert connect_from_peer(host, "198.51.100.2", "198.51.100.1", PORT) == "dropped"
    assert connect_from_peer(host, "192.0.2.2", "192.0.2.1", listener) == "dropped"


def test_firewall_loaded_at_boot(host):
    service = host.service("nftables")
    assert service.is_enabled
    assert host.file("/etc/nftables.conf").contains(f"table inet {TABLE}")
    rules = [line.strip() for line in host.file("/etc/nftables.conf").content_string.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    # Only its own table is replaced: a flush would wipe Docker's rules (and its DNS).
    assert "flush ruleset" not in rules
    assert rules[:2] == [f"table inet {TABLE}", f"delete table inet {TABLE}"]
    assert "ip nat" in host.check_output("nft list tables"), "Docker's own table must survive"


# --- The rest of the base -----------------------------------------------------------------


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Rome"
    assert host.check_output("date +%Z") in ("CET", "CEST")


def test_time_sync_enabled(host):
    assert host.service("systemd-timesyncd").is_enabled


def debian_unattended_upgrades_security_only(host):
    patterns = host.check_output("apt-config dump Unattended-Upgrade::Origins-Pattern")
    values = [line for line in patterns.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert values, patterns
    assert all("Security" in line for line in values), values
    periodic = host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    dry = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -i 'allowed origins'")
    assert "Debian-Security" in dry.stdout and "label=Debian," not in dry.stdout


def test_unattended_upgrades_security_only(host):
    if is_ubuntu(host):
        origins = host.check_output("apt-config dump Unattended-Upgrade::Allowed-Origins")
        values = [line for line in origins.splitlines()
                  if line.startswith("Unattended-Upgrade::Allowed-Origins:: ")]
        assert len(values) == 3, origins
        assert all("security" in line for line in values), values
        assert not host.run("apt-config dump Unattended-Upgrade::Origins-Pattern | grep '::Origins-Pattern:: '").stdout
        dry = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -i 'allowed origins'")
        assert "o=Ubuntu,a=noble-security" in dry.stdout, dry.stdout
        assert "a=noble-updates" not in dry.stdout and "a=noble," not in dry.stdout
    else:
        debian_unattended_upgrades_security_only(host)


def test_swap_file_and_swappiness(host):
    swapfile = host.file("/swapfile")
    assert swapfile.exists and swapfile.mode == 0o600 and swapfile.user == "root"
    assert swapfile.size == 64 * 1024 * 1024
    assert "swap" in host.check_output("file -s /swapfile 2>/dev/null || blkid /swapfile").lower()
    assert host.file("/etc/sysctl.d/60-selfhost-swap.conf").contains("^vm.swappiness *= *10$")


def test_essential_packages(host):
    for name in ("ca-certificates", "curl", "openssh-server", "nftables", "unattended-upgrades"):
        assert host.package(name).is_installed, name
