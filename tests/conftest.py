"""Fixtures shared by every package's tests: the test PKI and TLS servers on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support.pki import TestPki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The session's test PKI (root, intermediate, server, clients, RA and the broken variants)."""
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def pki_folder(pki: TestPki) -> Path:
    """The folder holding the test PKI's PEM files."""
    return pki.folder
