"""Cloudflare API and edge emulator: a TEST STAND-IN for Cloudflare, not Cloudflare.

Run it as a process::

    python3 tests/cloudflare_emulator/emulator.py --host 127.0.0.1 --api-port 8787 \\
        --edge-port 8443 --connector-port 7844 [--seed seed.json] [--state-file state.json] \\
        [--edge-cert C --edge-key K] [--log-file requests.jsonl]

(port 0 picks a free port).  When ready it prints one JSON line with the actual addresses:
``{"api": "http://127.0.0.1:8787/client/v4", "edge": "...", "connector": "127.0.0.1:7844"}``.

Or in-process from pytest::

    from cloudflare_emulator import Emulator
    with Emulator() as emu:
        requests.get(emu.api_url + "/zones", headers={"Authorization": "Bearer ..."})
"""

import sys

if __name__ == "__main__" and not __package__:
    # Run as a script by path: import the package from the folder above so that the
    # package-relative imports below work.
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cloudflare_emulator.emulator import main

    sys.exit(main())

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402

from . import seed as seed_module  # noqa: E402
from .api import API_BASE, WRITE_METHODS, ApiContext, ApiServer, Faults, RequestLog  # noqa: E402
from .edge import ConnectorServer, EdgeServer  # noqa: E402
from .store import Store  # noqa: E402

DESCRIPTION = ("Cloudflare API and edge emulator: a TEST STAND-IN for Cloudflare, not "
               "Cloudflare. Emulates the v4 API endpoints the selfhost.mastodon modules use "
               "(tunnels, configurations, connections, zones, DNS records, token verify), the "
               "edge that carries visitors through a tunnel, and the port the cloudflared "
               "stand-in connects out to.")


class Emulator:
    """The whole emulator (API, edge, connector port) running in background threads.

    ``Emulator(seed=None, state_file=None, host="127.0.0.1", api_port=0, edge_port=0,
    connector_port=0, edge_cert=None, edge_key=None, log_file=None)``
    """

    def __init__(self, seed=None, state_file=None, host="127.0.0.1", api_port=0, edge_port=0,
                 connector_port=0, edge_cert=None, edge_key=None, log_file=None, verbose=False):
        self.seed = seed
        self.host = host
        self.ports = (api_port, edge_port, connector_port)
        self.edge_cert, self.edge_key = edge_cert, edge_key
        self.log_file = log_file
        self.verbose = verbose
        self.store = Store(seed, state_file)
        self.log = RequestLog()
        self.faults = Faults()
        self._servers = []
        self._threads = []
        self._log_handle = None
        self.api_server = self.edge_server = self.connector_server = None

    # lifecycle
    def start(self):
        """Bind the three listeners and serve them in daemon threads; return self."""
        api_port, edge_port, connector_port = self.ports
        context = ApiContext(self.store, self.log, self.faults, self.reset)
        if self.log_file:
            self._log_handle = open(self.log_file, "a", encoding="utf-8")  # noqa: SIM115
            original_add = self.log.add

            def add_and_write(entry):
                original_add(entry)
                self._log_handle.write(json.dumps(entry) + "\n")
                self._log_handle.flush()

            self.log.add = add_and_write
        self.api_server = ApiServer((self.host, api_port), context)
        self.connector_server = ConnectorServer((self.host, connector_port), self.store,
                                                log=self._diag)
        self.edge_server = EdgeServer((self.host, edge_port), self.store, self.connector_server,
                                      certfile=self.edge_cert, keyfile=self.edge_key,
                                      log=self._diag)
        self._servers = [self.api_server, self.connector_server, self.edge_server]
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        """Stop serving, drop connector connections and save the state file."""
        # Stop accepting first, then drop the connectors: dropped first, a connector could dial
        # back in the moment before the listener closes and keep a live control connection.
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self.connector_server:
            self.connector_server.drop_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self.store.save()
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _diag(self, message):
        if self.verbose:
            print(f"[emulator] {message}", file=sys.stderr, flush=True)

    # addresses
    @staticmethod
    def _host_port(server):
        host, port = server.server_address[:2]
        return f"{host}:{port}"

    @property
    def api_url(self):
        return f"http://{self._host_port(self.api_server)}{API_BASE}"

    @property
    def edge_url(self):
        scheme = "https" if self.edge_cert else "http"
        return f"{scheme}://{self._host_port(self.edge_server)}"

    @property
    def edge_address(self):
        return self._host_port(self.edge_server)

    @property
    def connector_address(self):
        return self._host_port(self.connector_server)

    # test knobs
    @property
    def requests(self):
        """The API request log: dicts with method, path, route, query, status, json, time."""
        return self.log.entries()

    def writes(self, accepted=False):
        """The write requests (POST, PUT, PATCH, DELETE) in the log; ``accepted``: only those
        answered below 400, the ones that changed something."""
        return [r for r in self.requests if r["method"] in WRITE_METHODS
                and not (accepted and r["status"] >= 400)]

    def clear_log(self):
        self.log.clear()

    def set_fault(self, **fault):
        """Replace pending faults; see :class:`cloudflare_emulator.api.Faults`."""
        self.faults.set(**fault)

    def add_fault(self, **fault):
        """Queue one more fault after the pending ones."""
        self.faults.add(**fault)

    def clear_faults(self):
        self.faults.clear()

    def reset(self, seed=None):
        """Back to the seed (or a new *seed*): state, request log and faults."""
        if seed is not None:
            self.seed = seed
        if self.connector_server:
            self.connector_server.drop_all()
        self.store.load_seed(seed_module.with_defaults(self.seed))
        self.log.clear()
        self.faults.clear()

    def state(self):
        return self.store.snapshot()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="emulator.py", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default "
                        "127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=8787, help="API port (0 = free port)")
    parser.add_argument("--edge-port", type=int, default=8443, help="visitor edge port")
    parser.add_argument("--connector-port", type=int, default=7844,
                        help="port the cloudflared stand-in connects out to")
    parser.add_argument("--seed", help="JSON seed file (default: the built-in seed)")
    parser.add_argument("--state-file", help="JSON file that persists state across restarts")
    parser.add_argument("--edge-cert", help="PEM certificate: serve the edge over HTTPS")
    parser.add_argument("--edge-key", help="PEM key for --edge-cert")
    parser.add_argument("--log-file", help="append every API request as a JSON line")
    parser.add_argument("--verbose", action="store_true", help="diagnostics on stderr")
    args = parser.parse_args(argv)
    if bool(args.edge_cert) != bool(args.edge_key):
        parser.error("--edge-cert and --edge-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    seed = None
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            seed = json.load(handle)
    emulator = Emulator(seed=seed, state_file=args.state_file, host=args.host,
                        api_port=args.api_port, edge_port=args.edge_port,
                        connector_port=args.connector_port, edge_cert=args.edge_cert,
                        edge_key=args.edge_key, log_file=args.log_file, verbose=args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    print(json.dumps({"api": emulator.api_url, "edge": emulator.edge_url,
                      "connector": emulator.connector_address,
                      "note": "Cloudflare emulator: a test stand-in, not Cloudflare"}),
          flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0
