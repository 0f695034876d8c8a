"""The phone simulator: the client side of the CAPF protocol over TLS, one phone or many at a chosen concurrency.

A :class:`Phone` connects to CAPF (trusting the lab root, as a phone trusts CAPF through its ITL), answers
AUTH_REQUEST in its authentication mode (authentication string, null string, existing LSC, or existing MIC),
makes the key CAPF asks for (RSA or EC) and a CSR for it with capf_common's LSC profile, and keeps the LSC CAPF
stores. Each phone has a folder::

    SEP001122334455/
        mic.pem  mic.key         the manufacturing certificate (MIC mode), from ManufacturingCa
        lsc.pem  lsc.key         the LSC, written when CAPF stores it
        pending.key              the key of a CSR that was sent but not yet answered by an LSC

Files are written atomically; keys with mode 0600. :func:`run_phones` runs many phones at a bounded concurrency
and returns one :class:`PhoneResult` each.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from capf_common import (
    AuthRequest,
    AuthType,
    CapfError,
    CertificateElement,
    CertificateType,
    ConnectionClosed,
    Curve,
    DeleteCertificateRequest,
    DeviceNameError,
    EndSession,
    Event,
    FetchCertificateRequest,
    KeyGenerateRequest,
    KeyType,
    NeedData,
    PhoneConnection,
    Reason,
    SignCertificateRequest,
    StoreCertificateRequest,
    build_lsc_csr,
    certificate_to_pem,
    parse_device_name,
    write_file_atomic,
    write_private_key,
)

__all__ = [
    "ManufacturingCa",
    "Phone",
    "PhoneError",
    "PhoneKey",
    "PhoneOutcome",
    "PhoneResult",
    "reason_name",
    "run_phones",
]

PhoneKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_CURVES: dict[int, type[ec.EllipticCurve]] = {
    Curve.SECP256R1: ec.SECP256R1,
    Curve.SECP384R1: ec.SECP384R1,
    Curve.SECP521R1: ec.SECP521R1,
}
_DAY = dt.timedelta(days=1)


class PhoneError(Exception):
    """A phone cannot be set up as asked (a mode without its credential, a bad folder); names cause and fix."""


class PhoneOutcome(enum.Enum):
    """How a phone's session (or its last attempt) ended."""

    INSTALLED = "installed"
    """CAPF stored an LSC and ended with UPDATE_CERTIFICATE."""
    DELETED = "deleted"
    """CAPF had the LSC deleted."""
    FETCHED = "fetched"
    """CAPF fetched the phone's certificates (Troubleshoot)."""
    NO_ACTION = "no-action"
    """Nothing was scheduled (END_SESSION NO_ACTION)."""
    UNKNOWN_DEVICE = "unknown-device"
    """CAPF does not know the device (END_SESSION UNKNOWN_DEVICE)."""
    REFUSED = "refused"
    """CAPF ended the session with a failure reason (authentication refused, CA failure, ...)."""
    ERROR = "error"
    """The connection failed, timed out or broke the protocol."""

    @property
    def succeeded(self) -> bool:
        """Whether the scheduled operation completed."""
        return self in (PhoneOutcome.INSTALLED, PhoneOutcome.DELETED, PhoneOutcome.FETCHED, PhoneOutcome.NO_ACTION)


@dataclass(frozen=True)
class PhoneResult:
    """The result of one phone's run (the lab's summary row).

    Attributes:
        device: The device name.
        auth_mode: The authentication mode used (``PASSWORD``, ``NO_PASSWORD``, ``LSC``, ``MIC``).
        outcome: How it ended.
        end_reason: CAPF's END_SESSION reason, ``None`` if none arrived.
        lsc_serial: The serial number (hex) of the LSC the phone holds at the end, ``None`` without one.
        key_type: The key CAPF asked for (``RSA 2048``, ``EC SECP256R1``), ``None`` if none was asked.
        elapsed: Seconds for all attempts.
        attempts: Sessions opened (more than one when a failed attempt was retried).
        detail: One line on what happened (an error message on failure).
    """

    device: str
    auth_mode: str
    outcome: PhoneOutcome
    end_reason: Reason | int | None
    lsc_serial: str | None
    key_type: str | None
    elapsed: float
    attempts: int = 1
    detail: str = ""

    @property
    def succeeded(self) -> bool:
        """Whether the scheduled operation completed."""
        return self.outcome.succeeded

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready row."""
        reason = self.end_reason
        return {
            "device": self.device,
            "auth_mode": self.auth_mode,
            "result": self.outcome.value,
            "end_reason": reason.name if isinstance(reason, Reason) else reason,
            "lsc_serial": self.lsc_serial,
            "key_type": self.key_type,
            "elapsed": round(self.elapsed, 4),
            "attempts": self.attempts,
            "detail": self.detail,
        }


def _generate_key(key_type: KeyType | int | None, key_size: int | None, curve: Curve | int | None) -> PhoneKey:
    if key_type == KeyType.EC:
        curve_class = _CURVES.get(int(curve if curve is not None else Curve.SECP256R1))
        if curve_class is None:
            raise PhoneError(f"CAPF asked for unknown curve {curve}; phones support P-256, P-384 and P-521")
        return ec.generate_private_key(curve_class())
    size = key_size or 2048
    if size not in (512, 1024, 2048, 3072, 4096):
        raise PhoneError(f"CAPF asked for an RSA key of {size} bits; phones support 512 to 4096")
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _describe_key(key: PhoneKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    return f"EC {key.curve.name}"


def _spki(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class ManufacturingCa:
    """A stand-in for Cisco's manufacturing CA: it issues the MICs phones leave the factory with.

    Attributes:
        certificate: The CA certificate (``O=Cisco, CN=Cisco Manufacturing CA SHA2``; put it in CAPF's
            ``mic_issuers``).
        private_key: Its key.
    """

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def create(cls, folder: Path | None = None) -> ManufacturingCa:
        """Make the CA (P-256); when ``folder`` is given, write ``cisco-manufacturing-ca.pem`` there.

        Args:
            folder: Where to write the CA certificate (its key is never written).

        Returns:
            The CA.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cisco"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Cisco Manufacturing CA SHA2"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 3650 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),  # keyCertSign, cRLSign
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_file_atomic(folder / "cisco-manufacturing-ca.pem", certificate_to_pem(cert))
        return cls(cert, key)

    def issue_mic(
        self, device_name: str, key: PhoneKey | None = None, *, model: str = "CP-8865"
    ) -> tuple[x509.Certificate, PhoneKey]:
        """Issue a MIC for a device (CN = the model, serialNumber = the device name; valid for years).

        Args:
            device_name: The device name.
            key: The phone's MIC key; a new RSA 2048 key when ``None`` (real MICs are RSA 2048).
            model: The model written in the common name.

        Returns:
            The MIC and its key.
        """
        device = parse_device_name(device_name).name
        key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cisco Systems Inc."),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"{model}-{device}"),
                        x509.NameAttribute(NameOID.SERIAL_NUMBER, device),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 3650 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()), critical=False
            )
            .sign(self.private_key, hashes.SHA256())
        )
        return cert, key


class Phone:
    """One simulated phone, its folder and its CAPF settings.

    Args:
        device_name: The device name (``SEP`` + MAC).
        folder: The phone's own folder (created; holds its MIC, LSC and pending key).
        auth_mode: How it answers AUTH_REQUEST: ``AuthType.PASSWORD`` (sends ``auth_string``), ``NO_PASSWORD``
            (sends an empty string), ``LSC`` (signs with its LSC, or its MIC if it has no LSC) or ``MIC`` (signs
            with its MIC, or its LSC if it has no MIC).
        auth_string: The authentication string typed on the phone (never logged).
        model: The model for the Online CA common name (``CP-8865-SEP…``).
        mic: The phone's MIC and key (written to its folder); needed for ``MIC`` mode.
        trust_file: PEM with the CA that issued CAPF's TLS certificate (the lab root).

    Raises:
        PhoneError: An invalid device name, ``MIC`` mode without a MIC, ``PASSWORD`` mode without a string.
    """

    def __init__(
        self,
        device_name: str,
        folder: Path,
        *,
        auth_mode: AuthType = AuthType.PASSWORD,
        auth_string: str = "",
        model: str | None = "CP-8865",
        mic: tuple[x509.Certificate, PhoneKey] | None = None,
        trust_file: Path | None = None,
    ) -> None:
        try:
            self.name = parse_device_name(device_name).name
        except DeviceNameError as exc:
            raise PhoneError(str(exc)) from None
        self.folder = folder
        self.auth_mode = auth_mode
        self._auth_string = auth_string
        self.model = model
        self.trust_file = trust_file
        if auth_mode is AuthType.PASSWORD and not auth_string:
            raise PhoneError(f"{self.name}: PASSWORD mode needs the authentication string; pass auth_string")
        folder.mkdir(parents=True, exist_ok=True)
        if mic is not None:
            write_private_key(folder / "mic.key", mic[1])
            write_file_atomic(folder / "mic.pem", certificate_to_pem(mic[0]))
        if auth_mode is AuthType.MIC and self.mic is None:
            raise PhoneError(f"{self.name}: MIC mode needs a MIC; pass mic=ManufacturingCa.issue_mic(...)")

    def __repr__(self) -> str:
        """Name and mode, never the authentication string."""
        return f"Phone({self.name!r}, auth_mode={self.auth_mode.name})"

    # -- credentials in the folder --------------------------------------------------------------------------------

    def _load(self, stem: str) -> tuple[x509.Certificate, PhoneKey] | None:
        cert_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        if not cert_path.exists() or not key_path.exists():
            return None
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise PhoneError(f"{key_path}: not an RSA or EC key; delete the phone's folder to reset it")
        return cert, key

    @property
    def lsc(self) -> x509.Certificate | None:
        """The phone's LSC, ``None`` when it has none."""
        pair = self._load("lsc")
        return pair[0] if pair else None

    @property
    def mic(self) -> x509.Certificate | None:
        """The phone's MIC, ``None`` when it has none."""
        pair = self._load("mic")
        return pair[0] if pair else None

    def _credential(self) -> tuple[x509.Certificate, PhoneKey, CertificateType] | None:
        order = ("lsc", "mic") if self.auth_mode is AuthType.LSC else ("mic", "lsc")
        for stem in order:
            pair = self._load(stem)
            if pair is not None:
                kind = CertificateType.LSC if stem == "lsc" else CertificateType.MIC
                return pair[0], pair[1], kind
        return None

    # -- one session ---------------------------------------------------------------------------------------------

    def _client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.trust_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    async def run(
        self,
        host: str,
        port: int,
        *,
        server_hostname: str | None = "localhost",
        timeout: float = 120.0,
        attempts: int = 1,
        retry_delay: float = 1.0,
    ) -> PhoneResult:
        """Connect to CAPF and let it run the scheduled operation; retry failed attempts.

        Args:
            host: CAPF's address.
            port: CAPF's port.
            server_hostname: The name CAPF's TLS certificate must carry (``None``: ``host``).
            timeout: Seconds to wait for each CAPF message (CAPF enrolls over EST meanwhile).
            attempts: Sessions to try in all; a phone retries after a refusal or a communication failure (CUCM
                phones retry a failed install three more times), not after UNKNOWN_DEVICE or NO_ACTION.
            retry_delay: Seconds between attempts.

        Returns:
            The result of the last attempt, with the time and number of all attempts.
        """
        started = time.monotonic()
        result: PhoneResult | None = None
        for attempt in range(1, max(attempts, 1) + 1):
            result = await self._session(host, port, server_hostname, timeout, started, attempt)
            if result.outcome not in (PhoneOutcome.REFUSED, PhoneOutcome.ERROR) or attempt >= attempts:
                break
            await asyncio.sleep(retry_delay)
        assert result is not None
        return result

    async def _session(
        self, host: str, port: int, server_hostname: str | None, timeout: float, started: float, attempt: int
    ) -> PhoneResult:
        state = _SessionState()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, ssl=self._client_context(), server_hostname=server_hostname or host
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            return self._result(PhoneOutcome.ERROR, state, started, attempt, f"cannot connect to CAPF: {exc!r}")
        try:
            outcome, detail = await self._converse(reader, writer, state, timeout)
        except (OSError, TimeoutError, CapfError, PhoneError) as exc:
            outcome, detail = PhoneOutcome.ERROR, f"{type(exc).__name__}: {exc}"
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        return self._result(outcome, state, started, attempt, detail)

    def _result(
        self, outcome: PhoneOutcome, state: _SessionState, started: float, attempt: int, detail: str
    ) -> PhoneResult:
        lsc = self.lsc
        return PhoneResult(
            device=self.name,
            auth_mode=self.auth_mode.name,
            outcome=outcome,
            end_reason=state.end_reason,
            lsc_serial=None if lsc is None else format(lsc.serial_number, "x"),
            key_type=state.key_type,
            elapsed=time.monotonic() - started,
            attempts=attempt,
            detail=detail,
        )

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: _SessionState, timeout: float
    ) -> tuple[PhoneOutcome, str]:
        conn = PhoneConnection()

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        async def next_event() -> Event:
            while isinstance(event := conn.next_event(), NeedData):
                conn.receive_data(await asyncio.wait_for(reader.read(65536), timeout))
            return event

        done: PhoneOutcome | None = None
        while True:
            event = await next_event()
            if isinstance(event, ConnectionClosed):
                return PhoneOutcome.ERROR, "CAPF closed the connection before END_SESSION"
            if isinstance(event, EndSession):
                state.end_reason = event.reason
                return self._ended(event.reason, done)
            if isinstance(event, AuthRequest):
                await send(self._authenticate(conn))
            elif isinstance(event, SignCertificateRequest | KeyGenerateRequest):
                await send(conn.request_in_progress())
                key = await asyncio.to_thread(_generate_key, event.key_type, event.key_size, event.curve)
                state.key_type = _describe_key(key)
                write_private_key(self.folder / "pending.key", key)
                if isinstance(event, SignCertificateRequest):
                    csr = build_lsc_csr(self.name, key, model=self.model)
                    await send(conn.send_csr(csr))
                else:
                    await send(conn.send_public_key(key.public_key()))
            elif isinstance(event, StoreCertificateRequest):
                done = PhoneOutcome.INSTALLED if self._store(event) else None
                await send(conn.acknowledge() if done else conn.fail(Reason.INVALID_ELEMENT))
            elif isinstance(event, FetchCertificateRequest):
                elements = [
                    CertificateElement.from_certificate(cert, kind)
                    for cert, kind in ((self.lsc, CertificateType.LSC), (self.mic, CertificateType.MIC))
                    if cert is not None
                ]
                await send(conn.send_certificates(*elements))
                done = PhoneOutcome.FETCHED
            elif isinstance(event, DeleteCertificateRequest):
                for stem in ("lsc.pem", "lsc.key"):
                    (self.folder / stem).unlink(missing_ok=True)
                await send(conn.acknowledge())
                done = PhoneOutcome.DELETED

    def _authenticate(self, conn: PhoneConnection) -> bytes:
        if self.auth_mode in (AuthType.LSC, AuthType.MIC):
            credential = self._credential()
            if credential is not None:
                cert, key, kind = credential
                return conn.authenticate(self.name, certificate=cert, private_key=key, certificate_type=kind)
        password = self._auth_string if self.auth_mode is AuthType.PASSWORD else ""
        return conn.authenticate(self.name, password=password)

    def _store(self, request: StoreCertificateRequest) -> bool:
        """Keep the LSC if it is for the pending key; returns whether it was stored."""
        pending = self.folder / "pending.key"
        if request.certificate is None or not pending.exists():
            return False
        try:
            cert = request.certificate.load()
        except CapfError:
            return False
        key = serialization.load_pem_private_key(pending.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            return False
        if _spki(cert.public_key()) != _spki(key.public_key()):
            return False
        write_private_key(self.folder / "lsc.key", key)
        write_file_atomic(self.folder / "lsc.pem", certificate_to_pem(cert))
        pending.unlink(missing_ok=True)
        return True

    @staticmethod
    def _ended(reason: Reason | int | None, done: PhoneOutcome | None) -> tuple[PhoneOutcome, str]:
        if reason == Reason.UNKNOWN_DEVICE:
            return PhoneOutcome.UNKNOWN_DEVICE, "CAPF does not know this device"
        if done is not None and reason in (Reason.UPDATE_CERTIFICATE, Reason.NO_ACTION):
            return done, ""
        if reason == Reason.NO_ACTION:
            return PhoneOutcome.NO_ACTION, "no operation pending"
        return PhoneOutcome.REFUSED, f"CAPF ended the session with reason {reason_name(reason)}"


def reason_name(reason: Reason | int | None) -> str:
    """A CAPF reason code for people: ``INVALID_ELEMENT (7)``, ``99 (unknown)`` or ``none``."""
    if reason is None:
        return "none"
    if isinstance(reason, Reason):
        return f"{reason.name} ({reason.value})"
    try:
        known = Reason(reason)
    except ValueError:
        return f"{reason} (unknown)"
    return f"{known.name} ({known.value})"


@dataclass
class _SessionState:
    end_reason: Reason | int | None = None
    key_type: str | None = None


async def run_phones(
    phones: Sequence[Phone],
    host: str,
    port: int,
    *,
    concurrency: int = 10,
    server_hostname: str | None = "localhost",
    timeout: float = 120.0,
    attempts: int = 1,
    retry_delay: float = 1.0,
    on_result: Callable[[PhoneResult], Awaitable[None] | None] | None = None,
) -> list[PhoneResult]:
    """Run many phones against CAPF, at most ``concurrency`` at a time.

    Args:
        phones: The phones.
        host: CAPF's address.
        port: CAPF's port.
        concurrency: How many sessions run at once.
        server_hostname: The name on CAPF's TLS certificate.
        timeout: Seconds to wait for each CAPF message.
        attempts: Sessions each phone tries in all (see :meth:`Phone.run`).
        retry_delay: Seconds between a phone's attempts.
        on_result: Called with each result as it arrives (a progress bar); may be a coroutine function.

    Returns:
        One result per phone, in the order of ``phones``.

    Raises:
        PhoneError: ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise PhoneError(f"concurrency must be at least 1, not {concurrency}")
    limit = asyncio.Semaphore(concurrency)

    async def one(phone: Phone) -> PhoneResult:
        async with limit:
            result = await phone.run(
                host,
                port,
                server_hostname=server_hostname,
                timeout=timeout,
                attempts=attempts,
                retry_delay=retry_delay,
            )
        if on_result is not None:
            awaited = on_result(result)
            if awaited is not None:
                await awaited
        return result

    return list(await asyncio.gather(*(one(p) for p in phones)))
