"""The EST server's log lines: libest's style (as the seed's nginx error.log shows), and never a secret."""

from __future__ import annotations

import logging

import pytest

from estclient.testing import EstServer
from tests.estclient._server_helpers import make_csr, post_csr, raw_client

PASSWORD = "s3cret-Passw0rd"


def test_auth_failure_is_logged_like_libest_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="estclient.testing")
    with EstServer(users={"estuser": PASSWORD}) as srv, raw_client(srv) as c:
        _, csr = make_csr("logged")
        assert post_csr(c, "simpleenroll", csr, auth=("estuser", "wrong-" + PASSWORD)).status_code == 401
        assert post_csr(c, "simpleenroll", csr, auth=("estuser", PASSWORD)).status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    text = "\n".join(lines)
    assert "***EST [INFO][est_enroll_auth]--> TLS: no peer certificate" in lines
    assert "***EST [WARNING][est_enroll_auth]--> HTTP authentication failed. Auth type=1" in lines
    assert "***EST [WARNING][est_http_request]--> Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)" in lines
    assert "***EST [ERROR][est_mg_handler]--> EST error response code: 22 (EST_ERR_AUTH_FAIL)" in lines
    assert any(
        line.startswith("***EST [INFO][log_access]--> 127.0.0.1 [")
        and line.endswith('"POST /.well-known/est/simpleenroll HTTP/1.1" 401 48')
        for line in lines
    ), text
    assert any("issued /CN=logged" in line for line in lines)
    assert PASSWORD not in text
    assert "Authorization" not in text and "Basic " not in text


def test_startup_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="estclient.testing")
    with EstServer(pop="off"):
        pass
    lines = [r.getMessage() for r in caplog.records]
    assert (
        "***EST [INFO][ossl_init_cert_store_from_raw]--> Adding cert to store (/O=estclient/CN=estclient test CA)"
        in lines
    )
    assert "***EST [INFO][est_server_init]--> pop_enabled off. Disabling EST Proof of Possession" in lines
