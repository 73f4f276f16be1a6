"""Tests of the Cloudflare API emulator's R2 endpoints (a test stand-in): buckets, custom
domains, error codes, permissions, jurisdictions, cursor pagination, state file."""

import requests

from cloudflare_emulator import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    TOKEN_ACCOUNT_OWNED,
    TOKEN_FULL,
    TOKEN_NO_R2_EDIT,
    TOKEN_READ_ONLY,
    ZONE_ID,
    Emulator,
)

BUCKETS = f"/accounts/{ACCOUNT_ID}/r2/buckets"


def assert_error(answer, status, code):
    body = answer.json()
    assert answer.status_code == status, answer.text
    assert body["success"] is False and body["result"] is None
    assert [e["code"] for e in body["errors"]] == [code], body["errors"]
    return body["errors"][0]["message"]


def test_bucket_lifecycle_and_codes(api):
    created = api("POST", BUCKETS, json={"name": "media", "locationHint": "weur"})
    assert created.status_code == 200, created.text
    result = created.json()["result"]
    assert set(result) == {"name", "creation_date", "location", "storage_class", "jurisdiction"}
    assert (result["name"], result["location"], result["storage_class"]) == (
        "media", "weur", "Standard")
    assert "already exists" in assert_error(api("POST", BUCKETS, json={"name": "media"}),
                                            409, 10004)
    assert_error(api("POST", BUCKETS, json={"name": "Media_1"}), 400, 10005)
    assert_error(api("POST", BUCKETS, json={"name": "ab"}), 400, 10005)
    assert_error(api("POST", BUCKETS, json={"name": "media2", "locationHint": "mars"}), 400,
                 1001)
    assert api("GET", BUCKETS + "/media").json()["result"]["name"] == "media"
    assert_error(api("GET", BUCKETS + "/nope"), 404, 10006)
    assert_error(api("DELETE", BUCKETS + "/nope"), 404, 10006)
    assert api("DELETE", BUCKETS + "/media").status_code == 200
    assert_error(api("GET", BUCKETS + "/media"), 404, 10006)


def test_non_empty_bucket_cannot_be_deleted():
    with Emulator(seed={"r2_buckets": [{"name": "full", "object_count": 2}]}) as emu:
        answer = requests.delete(emu.api_url + BUCKETS + "/full", timeout=10,
                                 headers={"Authorization": f"Bearer {TOKEN_FULL}"})
        assert_error(answer, 409, 10008)
        assert len(emu.store.r2_buckets) == 1


def test_permissions(api):
    assert_error(api("POST", BUCKETS, token=TOKEN_NO_R2_EDIT, json={"name": "media"}), 403,
                 10000)
    # R2 read is enough to look, not to write; a token without any R2 permission sees nothing
    assert api("GET", BUCKETS, token=TOKEN_NO_R2_EDIT).status_code == 200
    assert_error(api("GET", BUCKETS, token=TOKEN_READ_ONLY), 403, 10000)
    assert_error(api("GET", f"/accounts/{OTHER_ACCOUNT_ID}/r2/buckets",
                     token=TOKEN_ACCOUNT_OWNED), 403, 9109)


def test_jurisdiction_header_separates_buckets(api):
    eu = {"cf-r2-jurisdiction": "eu"}
    assert api("POST", BUCKETS, json={"name": "media"}, headers=dict(eu)).status_code == 200
    assert_error(api("GET", BUCKETS + "/media"), 404, 10006)
    assert api("GET", BUCKETS + "/media", headers=dict(eu)).json()["result"][
        "jurisdiction"] == "eu"
    assert api("POST", BUCKETS, json={"name": "media"}).status_code == 200
    assert_error(api("GET", BUCKETS, headers={"cf-r2-jurisdiction": "mars"}), 400, 1001)


def test_list_is_cursor_paged(api):
    for index in range(5):
        assert api("POST", BUCKETS, json={"name": f"bucket-{index}"}).status_code == 200
    names, cursor = [], None
    while True:
        params = {"per_page": 2}
        if cursor:
            params["cursor"] = cursor
        body = api("GET", BUCKETS, params=params).json()
        names += [b["name"] for b in body["result"]["buckets"]]
        cursor = body["result_info"]["cursor"]
        if not cursor:
            break
    assert names == [f"bucket-{index}" for index in range(5)]
    body = api("GET", BUCKETS, params={"name_contains": "-3"}).json()
    assert [b["name"] for b in body["result"]["buckets"]] == ["bucket-3"]


def test_custom_domains(api):
    api("POST", BUCKETS, json={"name": "media"})
    api("POST", BUCKETS, json={"name": "other"})
    domains = BUCKETS + "/media/domains/custom"
    created = api("POST", domains, json={"domain": "media.example.test", "zoneId": ZONE_ID,
                                         "minTLS": "1.2"})
    assert created.json()["result"] == {"domain": "media.example.test", "enabled": True,
                                        "minTLS": "1.2"}
    listed = api("GET", domains).json()["result"]["domains"]
    assert listed == [{"domain": "media.example.test", "enabled": True, "minTLS": "1.2",
                       "zoneId": ZONE_ID, "zoneName": "example.test",
                       "status": {"ownership": "active", "ssl": "active"}}]
    # the same hostname again, here or on another bucket: conflict
    assert_error(api("POST", domains, json={"domain": "media.example.test", "zoneId": ZONE_ID}),
                 409, 10090)
    assert_error(api("POST", BUCKETS + "/other/domains/custom",
                     json={"domain": "media.example.test", "zoneId": ZONE_ID}), 409, 10090)
    # outside the zone, unknown zone, missing fields, bad minTLS
    assert_error(api("POST", domains, json={"domain": "media.unrelated.test", "zoneId": ZONE_ID}),
                 400, 1001)
    assert_error(api("POST", domains, json={"domain": "x.example.test", "zoneId": "f" * 32}),
                 404, 7003)
    assert_error(api("POST", domains, json={"domain": "x.example.test"}), 400, 1001)
    assert_error(api("POST", domains, json={"domain": "x.example.test", "zoneId": ZONE_ID,
                                            "minTLS": "1.4"}), 400, 1001)
    updated = api("PUT", domains + "/media.example.test", json={"enabled": False})
    assert updated.json()["result"] == {"domain": "media.example.test", "enabled": False,
                                        "minTLS": "1.2"}
    assert api("GET", domains + "/media.example.test").json()["result"]["enabled"] is False
    assert api("DELETE", domains + "/media.example.test").status_code == 200
    assert_error(api("GET", domains + "/media.example.test"), 404, 10091)
    assert_error(api("GET", BUCKETS + "/nope/domains/custom"), 404, 10006)
    assert_error(api("POST", BUCKETS + "/nope/domains/custom",
                     json={"domain": "a.example.test", "zoneId": ZONE_ID}), 404, 10006)


def test_buckets_survive_a_restart(tmp_path):
    state = str(tmp_path / "state.json")
    with Emulator(state_file=state) as emu:
        answer = requests.post(emu.api_url + BUCKETS, json={"name": "media"}, timeout=10,
                               headers={"Authorization": f"Bearer {TOKEN_FULL}"})
        assert answer.status_code == 200
    with Emulator(state_file=state) as emu:
        assert [b["name"] for b in emu.store.r2_buckets.values()] == ["media"]
