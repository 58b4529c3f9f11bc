"""Evaluation suites: cases with expected outcomes, run against an agent version in a
sandbox, checked, judged, compared with a baseline; and the promotion gate they feed."""
