"""A throwaway MIT Kerberos realm for tests: a KDC on 127.0.0.1 with a user and an ``HTTP/localhost`` keytab.

:func:`start_kdc` writes ``krb5.conf`` and ``kdc.conf`` into a folder, makes the database with ``kdb5_util``,
adds the principals with ``kadmin.local``, exports the service key to a keytab and starts ``krb5kdc -n`` in the
background, listening on 127.0.0.1 only (a free port, UDP and TCP). :meth:`Kdc.stop` ends it by its PID.

DNS is out of the picture (no DNS lookups, no canonicalisation, no reverse DNS) and ``localhost`` maps to the
realm, so the service principal is ``HTTP/localhost`` for a URL ``https://localhost:PORT``. :attr:`Kdc.env` holds
the environment a process needs to use the realm (``KRB5_CONFIG``, ``KRB5_KDC_PROFILE``, ``KRB5_KTNAME``,
``KRB5CCNAME``); the ``kdc`` fixture sets it for the test session.

When the MIT programs are missing, :func:`unavailable_reason` says which Debian packages to install; the
fixture turns that into a skip, or into a failure when ``REQUIRE_KERBEROS=1``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REALM = "EXAMPLE.TEST"
KRB_USER = "alice"
KRB_PRINCIPAL = f"{KRB_USER}@{REALM}"
KRB_PASSWORD = "Passw0rd!"  # the NTLM fixture's password too, so one user works with every protocol
SERVICE_HOST = "localhost"
SERVICE_PRINCIPAL = f"HTTP/{SERVICE_HOST}@{REALM}"
DEBIAN_PACKAGES = ("krb5-kdc", "krb5-admin-server", "krb5-user", "libkrb5-dev")
PROGRAMS = ("krb5kdc", "kdb5_util", "kadmin.local")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_program(name: str) -> str | None:
    """The path of an MIT program, looked up on PATH and in the sbin folders (Debian puts them there)."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))


def unavailable_reason() -> str | None:
    """Why a KDC cannot run here (missing programs or python-gssapi), or ``None`` when it can."""
    missing = [p for p in PROGRAMS if find_program(p) is None]
    if missing:
        return (
            f"MIT Kerberos programs not found: {', '.join(missing)}; "
            f"install the Debian packages {' '.join(DEBIAN_PACKAGES)}"
        )
    if importlib.util.find_spec("gssapi") is None or importlib.util.find_spec("krb5") is None:
        return (
            "python-gssapi/krb5 not installed; install libkrb5-dev and run `uv sync --group kerberos` "
            '(or pip install "pyspnego[kerberos]")'
        )
    return None


def kerberos_required() -> bool:
    """True when ``REQUIRE_KERBEROS=1``: a missing KDC is then a failure, not a skip."""
    return os.environ.get("REQUIRE_KERBEROS") == "1"


@dataclass
class Kdc:
    """A running KDC and the files of its realm."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    realm: str = REALM
    user: str = KRB_USER
    principal: str = KRB_PRINCIPAL
    password: str = KRB_PASSWORD
    service_host: str = SERVICE_HOST
    service_principal: str = SERVICE_PRINCIPAL
    env: dict[str, str] = field(default_factory=dict)

    @property
    def krb5_config(self) -> Path:
        """The client configuration (``KRB5_CONFIG``)."""
        return self.folder / "krb5.conf"

    @property
    def kdc_profile(self) -> Path:
        """The KDC configuration (``KRB5_KDC_PROFILE``)."""
        return self.folder / "kdc.conf"

    @property
    def keytab(self) -> Path:
        """The keytab holding ``HTTP/localhost`` (``KRB5_KTNAME``)."""
        return self.folder / "http.keytab"

    @property
    def pid(self) -> int:
        """The KDC's process id."""
        return self.process.pid

    def stop(self) -> None:
        """Stop the KDC by its PID (SIGTERM, then SIGKILL after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port on 127.0.0.1 for the KDC")


def _write_config(folder: Path, port: int) -> dict[str, str]:
    (folder / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    default_ccache_name = FILE:{folder}/ccache

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}
    .localhost = {REALM}
""",
        encoding="utf-8",
    )
    (folder / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {folder}/principal
        key_stash_file = {folder}/stash
        acl_file = {folder}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h 0m 0s
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{folder}/kdc.log
    default = FILE:{folder}/kdc.log
""",
        encoding="utf-8",
    )
    (folder / "kadm5.acl").write_text("", encoding="utf-8")
    return {
        "KRB5_CONFIG": str(folder / "krb5.conf"),
        "KRB5_KDC_PROFILE": str(folder / "kdc.conf"),
        "KRB5_KTNAME": f"FILE:{folder / 'http.keytab'}",
        "KRB5CCNAME": f"FILE:{folder / 'ccache'}",
    }


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    result = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"krb5kdc exited with {process.returncode}: {text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{port} within 15 s")


def start_kdc(folder: Path) -> Kdc:
    """Create the realm in ``folder`` and start its KDC; the caller stops it with :meth:`Kdc.stop`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    krb_env = _write_config(folder, port)
    env = {**os.environ, **krb_env}
    kdb5_util, kadmin_local, krb5kdc = (find_program(p) for p in ("kdb5_util", "kadmin.local", "krb5kdc"))
    assert kdb5_util and kadmin_local and krb5kdc, unavailable_reason()
    _run([kdb5_util, "-r", REALM, "create", "-s", "-P", "master-key-for-tests"], env)
    keytab = folder / "http.keytab"
    _run(
        [kadmin_local, "-r", REALM],
        env,
        stdin=(
            f"addprinc -pw {KRB_PASSWORD} {KRB_PRINCIPAL}\n"
            f"addprinc -randkey {SERVICE_PRINCIPAL}\n"
            f"ktadd -k {keytab} {SERVICE_PRINCIPAL}\n"
        ),
    )
    if not keytab.exists():
        raise RuntimeError(f"kadmin.local did not write the keytab {keytab}")
    process = subprocess.Popen(
        [krb5kdc, "-n", "-r", REALM],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(process, port, folder / "kdc.log")
    except BaseException:
        process.kill()
        process.wait(5)
        raise
    return Kdc(folder=folder, port=port, process=process, env=krb_env)
