"""CAPF's device registry: what CUCM's database holds for each phone's certificate operation, and its outcome.

Per device CUCM keeps the CAPF settings an administrator enters on the phone page (authentication mode and
string, key order and size, the certificate operation and the date it must complete by) and, after each
attempt, the certificate status (``tkCertificateStatus``) and operation (``tkCertificateOperation``). After a
successful install CUCM clears the operation (No Pending Operation) and sets Upgrade Success; after a failure
the operation stays pending, so the phone's next attempt runs it again.

The registry is shared by the CAPF server's connections (and may be read from another thread): every access
takes a lock.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from cryptography import x509

from capf_common import (
    AuthType,
    CapfOperationResult,
    CertificateOperation,
    CertificateStatus,
    Curve,
    DeviceNameError,
    KeyType,
    parse_device_name,
)

__all__ = [
    "DeviceConfig",
    "DeviceRecord",
    "DeviceRegistry",
    "FailureReason",
    "KeyOrder",
    "Operation",
    "RegistryError",
    "certificate_status",
]


class RegistryError(ValueError):
    """A device entry is invalid or missing; the message names the cause and the fix."""


class Operation(enum.Enum):
    """The certificate operation scheduled for a device (CUCM's "Certificate Operation")."""

    INSTALL = "install"
    """Install/Upgrade: the phone makes a key and CSR, CAPF enrolls it (Online CA) and stores the LSC."""
    FETCH = "fetch"
    """Troubleshoot: the phone sends its certificates, CAPF writes them to its trace."""
    DELETE = "delete"
    """Delete: the phone removes its LSC."""
    NONE = "none"
    """No Pending Operation: CAPF ends the session with NO_ACTION."""

    @property
    def database(self) -> CertificateOperation:
        """The ``tkCertificateOperation`` value CUCM stores for this operation."""
        return {
            Operation.INSTALL: CertificateOperation.INSTALL_UPGRADE,
            Operation.FETCH: CertificateOperation.TROUBLESHOOT,
            Operation.DELETE: CertificateOperation.DELETE,
            Operation.NONE: CertificateOperation.NO_PENDING_OPERATION,
        }[self]


class KeyOrder(enum.Enum):
    """CUCM's "Key Order": which key the phone must generate."""

    RSA_ONLY = "RSA Only"
    EC_ONLY = "EC Only"
    EC_PREFERRED = "EC Preferred, RSA Backup"


class FailureReason(enum.Enum):
    """The reasons CUCM's certificate status names after a failed operation (the AXL status suffixes)."""

    INVALID_LSC = "INVALID_LSC"
    INVALID_AUTHENTICATION_STRING = "INVALID_AUTHENTICATION_STRING"
    INVALID_MIC = "INVALID_MIC"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    PHONE_COMMUNICATION_FAILURE = "PHONE_COMMUNICATION_FAILURE"
    KEY_GENERATION_FAILED_TIMEOUT = "KEY_GENERATION_FAILED_TIMEOUT"
    CA_COMMUNICATION_FAILURE = "CA_COMMUNICATION_FAILURE"
    CA_REJECTED_CONNECTION = "CA_REJECTED_CONNECTION"
    USER_INITIATED_REQUEST_LATE_TIMEDOUT = "USER_INITIATED_REQUEST_LATE_TIMEDOUT"

    @classmethod
    def for_result(cls, result: CapfOperationResult) -> FailureReason | None:
        """The status reason CUCM pairs with a CAPF operation result (``None`` when the result names none)."""
        return {
            CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR: cls.INVALID_AUTHENTICATION_STRING,
            CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC: cls.INVALID_LSC,
            CapfOperationResult.CAPF_OP_FAIL_INVALID_MIC: cls.INVALID_MIC,
            CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS: cls.INVALID_CREDENTIALS,
            CapfOperationResult.CAPF_OP_FAIL_PHONE_COMM_ERROR: cls.PHONE_COMMUNICATION_FAILURE,
            CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST: cls.USER_INITIATED_REQUEST_LATE_TIMEDOUT,
        }.get(result)


_STATUS_PREFIX = {Operation.INSTALL: "UPGRADE", Operation.DELETE: "DELETE", Operation.FETCH: "TROUBLESHOOT"}


def certificate_status(
    operation: Operation, result: CapfOperationResult, reason: FailureReason | None = None
) -> CertificateStatus:
    """The certificate status CUCM records for an operation's outcome.

    Args:
        operation: The operation that ran (not ``NONE``).
        result: The CAPF operation result.
        reason: The failure reason; derived from ``result`` when ``None``.

    Returns:
        ``UPGRADE_SUCCESS``, ``UPGRADE_FAILED_CA_COMMUNICATION_FAILURE``, ... (the plain ``*_FAILED`` status when
        no reason applies, for example a CA reason for a Troubleshoot, which CUCM does not have).

    Raises:
        RegistryError: ``operation`` is ``NONE``.
    """
    if operation is Operation.NONE:
        raise RegistryError("no certificate status belongs to 'no pending operation'; pass the operation that ran")
    prefix = _STATUS_PREFIX[operation]
    if result in (CapfOperationResult.CAPF_OP_SUCCESS, CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT):
        return CertificateStatus[f"{prefix}_SUCCESS"]
    reason = reason or FailureReason.for_result(result)
    if reason is not None and f"{prefix}_FAILED_{reason.value}" in CertificateStatus.__members__:
        return CertificateStatus[f"{prefix}_FAILED_{reason.value}"]
    return CertificateStatus[f"{prefix}_FAILED"]


@dataclass(frozen=True)
class DeviceConfig:
    """A device's CAPF settings, as entered on CUCM's phone page.

    Attributes:
        name: The device name (``SEP`` + MAC, upper case).
        auth_mode: How the phone must authenticate: ``AuthType.PASSWORD`` (by authentication string),
            ``NO_PASSWORD`` (null string), ``LSC`` or ``MIC`` (by existing certificate, precedence to LSC/MIC).
        auth_string: The authentication string (``PASSWORD`` mode); never logged or shown.
        key_order: Which key the phone generates.
        key_size: RSA modulus bits (512..4096).
        curve: The EC curve.
        operation: The scheduled certificate operation.
        deadline: "Operation Completes By" (aware datetime); a phone arriving later gets
            ``CAPF_OP_FAIL_LATE_REQUEST``. ``None``: no deadline.
        model: The phone model, for the Online CA common name form (``CP-8865-SEP…``); informational.
    """

    name: str
    auth_mode: AuthType = AuthType.PASSWORD
    auth_string: str | None = field(default=None, repr=False)
    key_order: KeyOrder = KeyOrder.RSA_ONLY
    key_size: int = 2048
    curve: Curve = Curve.SECP256R1
    operation: Operation = Operation.INSTALL
    deadline: dt.datetime | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        """Check the settings (a CUCM page would refuse the same input)."""
        try:
            canonical = parse_device_name(self.name).name
        except DeviceNameError as exc:
            raise RegistryError(str(exc)) from None
        object.__setattr__(self, "name", canonical)
        if self.auth_mode not in (AuthType.PASSWORD, AuthType.NO_PASSWORD, AuthType.LSC, AuthType.MIC):
            raise RegistryError(
                f"{self.name}: authentication mode {self.auth_mode!r} is not one of CUCM's; use PASSWORD, "
                "NO_PASSWORD, LSC or MIC"
            )
        if self.auth_mode is AuthType.PASSWORD and not self.auth_string:
            raise RegistryError(
                f"{self.name}: 'By Authentication String' needs an authentication string; set auth_string "
                "(4 to 10 digits in CUCM) or use NO_PASSWORD"
            )
        if self.key_size not in (512, 1024, 2048, 3072, 4096):
            raise RegistryError(f"{self.name}: key size {self.key_size} is not one of 512, 1024, 2048, 3072, 4096")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise RegistryError(f"{self.name}: the deadline must carry a time zone (e.g. datetime.UTC)")

    @property
    def key_type(self) -> KeyType:
        """The key type CAPF asks for (EC when the key order allows EC)."""
        return KeyType.RSA if self.key_order is KeyOrder.RSA_ONLY else KeyType.EC


@dataclass(frozen=True)
class DeviceRecord:
    """A device's database row: its settings and the outcome of the last operation.

    Attributes:
        config: The CAPF settings.
        operation: ``tkCertificateOperation``: the pending operation (No Pending Operation after a success).
        status: ``tkCertificateStatus``.
        result: The last CAPF operation result, ``None`` before the first attempt.
        lsc: The LSC issued last, ``None`` when none (or after a delete).
        attempts: Sessions the phone opened for this device.
        detail: A one-line description of the last outcome (never a secret).
        updated: When the row last changed (UTC).
    """

    config: DeviceConfig
    operation: CertificateOperation
    status: CertificateStatus = CertificateStatus.NONE
    result: CapfOperationResult | None = None
    lsc: x509.Certificate | None = None
    attempts: int = 0
    detail: str = ""
    updated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def name(self) -> str:
        """The device name."""
        return self.config.name

    @property
    def lsc_serial(self) -> str | None:
        """The LSC's serial number in hex, ``None`` without an LSC."""
        return None if self.lsc is None else format(self.lsc.serial_number, "x")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (no authentication string)."""
        return {
            "device": self.name,
            "auth_mode": self.config.auth_mode.name,
            "operation": self.operation.label,
            "status": self.status.label,
            "result": self.result.name if self.result is not None else None,
            "lsc_serial": self.lsc_serial,
            "attempts": self.attempts,
            "detail": self.detail,
        }


class DeviceRegistry:
    """The devices CAPF knows, by name (case-insensitive), with their status.

    Args:
        devices: Initial device settings.
    """

    def __init__(self, devices: Iterable[DeviceConfig] = ()) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, DeviceRecord] = {}
        self.unknown_attempts: list[str] = []
        """Device names that opened a session without being configured (in order)."""
        for device in devices:
            self.add(device)

    def add(self, config: DeviceConfig) -> DeviceRecord:
        """Add or replace a device (its status starts as Operation Pending, or None without an operation)."""
        pending = config.operation is not Operation.NONE
        record = DeviceRecord(
            config,
            config.operation.database,
            CertificateStatus.OPERATION_PENDING if pending else CertificateStatus.NONE,
        )
        with self._lock:
            self._records[config.name.upper()] = record
        return record

    def schedule(self, name: str, operation: Operation, *, deadline: dt.datetime | None = None) -> DeviceRecord:
        """Schedule a new operation for a configured device (keeps its LSC).

        Raises:
            RegistryError: The device is not configured.
        """
        with self._lock:
            record = self._get(name)
            config = replace(record.config, operation=operation, deadline=deadline)
            record = replace(
                record,
                config=config,
                operation=operation.database,
                status=CertificateStatus.OPERATION_PENDING if operation is not Operation.NONE else record.status,
                updated=dt.datetime.now(dt.UTC),
            )
            self._records[name.upper()] = record
            return record

    def _get(self, name: str) -> DeviceRecord:
        record = self._records.get(name.upper())
        if record is None:
            raise RegistryError(f"device {name} is not configured in CAPF; add it with DeviceRegistry.add")
        return record

    def get(self, name: str) -> DeviceRecord | None:
        """The device's record, ``None`` when it is not configured."""
        with self._lock:
            return self._records.get(name.upper())

    def __getitem__(self, name: str) -> DeviceRecord:
        """The device's record.

        Raises:
            RegistryError: The device is not configured.
        """
        with self._lock:
            return self._get(name)

    def __contains__(self, name: object) -> bool:
        """Whether a device of that name is configured."""
        with self._lock:
            return isinstance(name, str) and name.upper() in self._records

    def __iter__(self) -> Iterator[DeviceRecord]:
        """The records, in the order the devices were added (a snapshot)."""
        with self._lock:
            return iter(list(self._records.values()))

    def __len__(self) -> int:
        """The number of configured devices."""
        with self._lock:
            return len(self._records)

    def note_attempt(self, name: str) -> DeviceRecord | None:
        """Count a session of a device; remember unknown names. Returns the record (``None`` when unknown)."""
        with self._lock:
            record = self._records.get(name.upper())
            if record is None:
                self.unknown_attempts.append(name)
                return None
            record = replace(record, attempts=record.attempts + 1)
            self._records[name.upper()] = record
            return record

    def record_outcome(
        self,
        name: str,
        operation: Operation,
        result: CapfOperationResult,
        *,
        reason: FailureReason | None = None,
        lsc: x509.Certificate | None = None,
        clear_lsc: bool = False,
        detail: str = "",
    ) -> DeviceRecord:
        """Record the outcome of an operation as CUCM does (status, result; the operation clears on success).

        Args:
            name: The device.
            operation: The operation that ran.
            result: Its CAPF operation result.
            reason: The failure reason for the status (derived from ``result`` when ``None``).
            lsc: The LSC issued (install).
            clear_lsc: Forget the LSC (delete).
            detail: A one-line description.

        Returns:
            The updated record.

        Raises:
            RegistryError: The device is not configured.
        """
        status = certificate_status(operation, result, reason)
        success = result in (CapfOperationResult.CAPF_OP_SUCCESS, CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT)
        with self._lock:
            record = self._get(name)
            record = replace(
                record,
                config=replace(record.config, operation=Operation.NONE) if success else record.config,
                operation=CertificateOperation.NO_PENDING_OPERATION if success else record.operation,
                status=status,
                result=result,
                lsc=None if clear_lsc else (lsc or record.lsc),
                detail=detail,
                updated=dt.datetime.now(dt.UTC),
            )
            self._records[name.upper()] = record
            return record
