"""steward: run AI agents in production under governance.

Every action an agent proposes crosses one seam, the gate, where it is validated,
decided by policy, limited, budgeted, approved where policy says so, executed at most
once, scanned and recorded.
"""

__version__ = "0.1.0"
