"""Time Microsoft's Agent Governance Toolkit `govern()` on one allowed tool call, in the
interpreter that has it installed (`agent-governance-toolkit-core` on PyPI, MIT); bench_gate.py
runs this with STEWARD_BENCH_AGT_PYTHON so both figures come from the same run. It is not
a dependency of steward. Prints one JSON object: {"samples_ns": [...]}.

    python _agt_govern.py N WARM
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from agentmesh.governance.govern import govern  # noqa: E402

# one allow rule matched by the call's action, default deny: the policy decision and the
# in-memory audit record (AGT keeps its audit log in memory; nothing is made durable)
POLICY = """
apiVersion: governance.toolkit/v1
name: bench
default_action: deny
rules:
  - name: allow-put
    condition: "action.type == 'put'"
    action: allow
"""


def put(action: str, n: int) -> dict[str, object]:
    return {"id": n, "status": "ok"}


def main() -> None:
    n, warm = int(sys.argv[1]), int(sys.argv[2])
    governed = govern(put, policy=POLICY, agent_id="did:agent:bench")
    if governed(action="put", n=-1) != {"id": -1, "status": "ok"}:
        raise SystemExit("AGT did not allow the call")
    samples: list[int] = []
    for i in range(warm + n):
        started = time.perf_counter_ns()
        governed(action="put", n=i)
        samples.append(time.perf_counter_ns() - started)
    print(json.dumps({"samples_ns": samples[warm:]}))


if __name__ == "__main__":
    main()
