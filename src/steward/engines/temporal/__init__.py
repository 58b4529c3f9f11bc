"""The Temporal engine (the `temporal` extra): a run is a workflow.

The workflow (workflow.py) owns what must survive any one machine: the run's
activations, the wait for a person's decision (signal `decided`), the approval expiry
and `max_run_seconds` (durable timers) and cancellation (workflow cancellation). Each
activation of the run is an activity (activities.py) that drives steward's one loop
(runtime/runner.py) over the embedded executor, so every event lands in steward's
journal and audit chain: the journal is the record, Temporal's history the engine's.
Workers (`steward worker`) run both; `TemporalRuns` (client.py) starts, signals and
cancels runs from the server, the CLI and the demo.
"""

TASK_QUEUE = "steward-runs"
DEFAULT_ADDRESS = "localhost:7233"


def require() -> None:
    """Raise a clear StewardError when the `temporal` extra is not installed."""
    from steward.core.errors import StewardError

    try:
        import temporalio  # noqa: F401
    except ImportError as exc:
        raise StewardError(
            "the temporal engine needs the `temporal` extra: pip install 'steward-governance[temporal]'",
            code="engine.unavailable",
        ) from exc
