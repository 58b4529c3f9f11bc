"""Telemetry: traces, metrics, logs and cost, all consumers of the journal's committed
event stream. Business logic never calls a tracer or a counter; `install()` subscribes
consumers to a Journal, and each sees every batch after it commits."""
