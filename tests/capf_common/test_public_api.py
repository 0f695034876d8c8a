"""Pins the public surface of capf_common: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import capf_common

EXPECTED_ALL = {
    "__version__",
    "CapfError",
    # CAPF protocol
    "CapfProtocolError",
    "RemoteProtocolError",
    "FramingError",
    "SessionMismatchError",
    "LocalProtocolError",
    "CapfSignatureError",
    "CapfAuthenticationError",
    "CAPF_PORT",
    "PROTOCOL_ID",
    "PROTOCOL_VERSION",
    "Command",
    "ElementTag",
    "Reason",
    "AuthType",
    "CertificateType",
    "KeyType",
    "Curve",
    "HashId",
    "Element",
    "Message",
    "MessageDecoder",
    "decode_message",
    "decode_messages",
    "CertificateElement",
    "HashedSignature",
    "SudiData",
    "describe_element",
    "CapfMessage",
    "AuthRequest",
    "AuthResponse",
    "KeyGenerateRequest",
    "KeyGenerateResponse",
    "SignCertificateRequest",
    "SignCertificateResponse",
    "RequestInProgress",
    "StoreCertificateRequest",
    "StoreCertificateResponse",
    "FetchCertificateRequest",
    "FetchCertificateResponse",
    "DeleteCertificateRequest",
    "DeleteCertificateResponse",
    "EndSession",
    "parse_message",
    "CapfServerConnection",
    "PhoneConnection",
    "SessionState",
    "ConnectionClosed",
    "Event",
    "NeedData",
    "NEED_DATA",
    "SigningKey",
    "auth_data",
    "sudi_signed_data",
    "sign_auth_data",
    "verify_auth_signature",
    "make_auth_signatures",
    "make_sudi_data",
    "verify_sudi_data",
    "verify_auth_response",
    # certificates and formats: errors
    "CertificateFormatError",
    "ChainError",
    "MissingIssuerError",
    "SelfSignedCertificateError",
    "CertificateValidityError",
    "ChainSignatureError",
    "DeviceNameError",
    "CtlFormatError",
    "LogReadError",
    "FileWriteError",
    # certificates and formats: conversions and chains
    "load_pkcs7_certificates",
    "pkcs7_to_pem",
    "pkcs7_to_der",
    "certificates_to_pkcs7",
    "load_certificates",
    "load_certificate",
    "load_csr",
    "certificate_to_pem",
    "certificate_to_der",
    "order_chain",
    "verify_chain",
    "write_file_atomic",
    "write_private_key",
    # LSC profile and device names
    "DEVICE_NAME_PREFIXES",
    "DeviceName",
    "parse_device_name",
    "is_valid_device_name",
    "lsc_common_name",
    "LSC_EXTENDED_KEY_USAGES",
    "build_lsc",
    "build_lsc_csr",
    "LscDeviation",
    "LscCheck",
    "check_lsc",
    # code tables
    "CapfOperationResult",
    "CertificateStatus",
    "CertificateOperation",
    "LIBEST_ERROR_NAMES",
    "libest_table",
    "est_error_name",
    "est_error_code",
    "CodeInfo",
    "CURL_ERRORS",
    "ADCS_HRESULTS",
    "IIS_WIN32_STATUS",
    # CTL/ITL files
    "CtlRole",
    "CtlHeader",
    "CtlRecord",
    "CtlFile",
    "parse_ctl",
    "format_ctl",
    # diagnostics from logs
    "LogEntry",
    "LogSource",
    "parse_capf_trace",
    "parse_nginx_error_log",
    "parse_iis_log",
    "detect_log_source",
    "IIS_DEFAULT_FIELDS",
    "ProblemInfo",
    "PROBLEMS",
    "Evidence",
    "Finding",
    "RequestTimeline",
    "LogFile",
    "Report",
    "parse_log",
    "analyze",
    "analyze_logs",
    "analyze_entries",
    "CapfTraceFormatter",
    "NginxErrorLogFormatter",
    "EstLogFormatter",
    "iis_log_header",
    "format_iis_record",
}


def test_all_is_pinned() -> None:
    assert set(capf_common.__all__) == EXPECTED_ALL
    assert len(capf_common.__all__) == len(set(capf_common.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in capf_common.__all__:
        obj = getattr(capf_common, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_root_error_is_an_exception() -> None:
    assert issubclass(capf_common.CapfError, Exception)
