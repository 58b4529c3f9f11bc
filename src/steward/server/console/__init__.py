"""The operator console: server-rendered pages over the same service as the API."""
