"""The emulator's IIS W3C access log: the seed's format, every response counted (401s included)."""

from __future__ import annotations

import re
from pathlib import Path

from certsrv._auth import NtlmAuth
from certsrv.testing import AdcsEmulator, CertificateTemplate, IisLog
from tests.certsrv._emulator_helpers import (
    ALICE,
    PASSWORD,
    USERS,
    CurlLikeNtlm,
    client_for,
    issued_request_id,
    submit_form,
)

SEED_FIELDS = (
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
)
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [0-9.:a-f]+ (GET|POST|HEAD) /\S* \S+ \d+ \S+ [0-9.:a-f]+ \S+ \S+ "
    r"\d{3} \d+ \d+ \d+$"
)


def test_seed_sequence_replayed_gives_the_seed_log(tmp_path: Path) -> None:
    """The RA of the seed: two logins (401, 301), certrqxt.asp, certfnsh.asp, certnew.cer: seven requests."""
    log_file = tmp_path / "u_ex190116.log"
    with AdcsEmulator(
        users={"MICHAMEN\\ciscora": PASSWORD},
        templates=[CertificateTemplate("CiscoRA")],
        extended_protection="off",
        log_file=log_file,
    ) as emulator:
        headers = {"User-Agent": "CiscoRA 1.0"}
        login = CurlLikeNtlm("MICHAMEN\\ciscora", PASSWORD)
        with client_for(emulator) as first:
            assert first.get(emulator.url, auth=login, headers=headers).is_redirect
            assert first.get("/certrqxt.asp", headers=headers).status_code == 200
        with client_for(emulator) as second:
            second.get(emulator.url, auth=login, headers=headers)
            referer = {**headers, "Referer": f"{emulator.url}/certrqxt.asp"}
            page = second.post("/certfnsh.asp", data=submit_form("CiscoRA"), headers=referer).text
            request_id = issued_request_id(page)
            assert second.get(f"/certnew.cer?ReqID={request_id}&ENC=b64", headers=headers).status_code == 200
        port = emulator.port
    text = log_file.read_text()
    lines = text.splitlines()
    assert lines[0] == "#Software: Microsoft Internet Information Services 10.0"
    assert lines[3] == SEED_FIELDS
    body = lines[4:]
    assert len(body) == 7
    assert all(LINE.match(line) for line in body), body
    fields = [line.split(" ") for line in body]
    assert all(len(f) == 15 for f in fields)
    assert [(f[3], f[4], f[11]) for f in fields] == [
        ("GET", "/certsrv", "401"),
        ("GET", "/certsrv", "301"),
        ("GET", "/certsrv/certrqxt.asp", "200"),
        ("GET", "/certsrv", "401"),
        ("GET", "/certsrv", "301"),
        ("POST", "/certsrv/certfnsh.asp", "200"),
        ("GET", "/certsrv/certnew.cer", "200"),
    ]
    assert fields[0][5:] == [
        "-",
        str(port),
        "-",
        "127.0.0.1",
        "CiscoRA+1.0",
        "-",
        "401",
        "1",
        "2148074254",
        fields[0][14],
    ]
    assert fields[1][7] == "MICHAMEN\\ciscora"
    assert fields[5][10] == f"https://localhost:{port}/certsrv/certrqxt.asp"
    assert fields[6][5] == f"ReqID={request_id}&ENC=b64"


def test_kept_alive_client_needs_two_requests_per_certificate() -> None:
    with AdcsEmulator(users=USERS) as emulator:
        with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
            for _ in range(5):
                request_id = issued_request_id(client.post("/certfnsh.asp", data=submit_form("WebServer")).text)
                assert client.get(f"/certnew.cer?ReqID={request_id}&Enc=bin").status_code == 200
        log = emulator.access_log
    assert log.count() == 2 + 5 * 2  # one handshake (two 401s), then a POST and a GET per certificate
    assert log.count(lambda e: e.status == 401) == 2
    assert log.count(lambda e: e.uri_stem == "/certsrv/certfnsh.asp" and e.status == 200) == 5


def test_in_memory_log_text_and_clear() -> None:
    log = IisLog()
    assert log.text().splitlines()[-1] == SEED_FIELDS
    with AdcsEmulator(users=USERS) as emulator, client_for(emulator) as client:
        client.get("/certcarc.asp?x=a b")
        assert emulator.access_log.count() == 1
        line = emulator.access_log.lines()[0]
        assert " /certsrv/certcarc.asp x=a%20b " in line or " /certsrv/certcarc.asp x=a+b " in line
        assert line.endswith(" 401 2 5 " + line.rsplit(" ", 1)[1])
        emulator.access_log.clear()
        assert emulator.access_log.count() == 0


def test_log_file_is_appended_not_truncated(tmp_path: Path) -> None:
    log_file = tmp_path / "iis.log"
    for _ in range(2):
        with AdcsEmulator(users=USERS, log_file=log_file) as emulator, client_for(emulator) as client:
            assert client.get("/").status_code == 401
    text = log_file.read_text()
    assert text.count("#Fields:") == 1
    assert text.count(" 401 2 5 ") == 2
