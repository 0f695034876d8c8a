"""Diagnostics from the logs of the CAPF Online CA chain (private package; the public names live in capf_common)."""
