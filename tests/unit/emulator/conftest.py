"""Fixtures for the Cloudflare emulator's own tests (the emulator is a test stand-in).

``tests/`` is on ``sys.path`` (tests/unit/conftest.py puts it there), so ``cloudflare_emulator``
imports.
"""

import pytest

from cloudflare_emulator import Emulator


@pytest.fixture
def emu():
    """A fresh emulator with the default seed, stopped after the test."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def api(emu):
    """A small client bound to *emu*: ``api("GET", "/zones", token=..., json=..., params=...)``."""
    import requests

    from cloudflare_emulator import TOKEN_FULL

    def call(method, path, token=TOKEN_FULL, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, emu.api_url + path, headers=headers, timeout=30,
                                **kwargs)

    return call
