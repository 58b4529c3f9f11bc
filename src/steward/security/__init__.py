"""Security services: result scanners, redaction, provenance of values."""
