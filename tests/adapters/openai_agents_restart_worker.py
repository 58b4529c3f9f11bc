"""One process of the restart test: `ask` starts a governed run that pauses on a reviewed
refund and saves its RunState; `resume` (a new process) attaches and resumes it. Every
refund that really runs appends a line to refunds.txt."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agents import Agent, Runner, RunState, function_tool

import steward
from steward.adapters.openai_agents import attach, start
from steward.testing.openai_agents import FakeModel, call


def refund_agent(workdir: Path) -> Agent[None]:
    @function_tool
    def issue_refund(order_id: str, amount_usd: float) -> str:
        """Refund an order."""
        with (workdir / "refunds.txt").open("a", encoding="utf-8") as ledger:
            ledger.write(f"{order_id} {amount_usd}\n")
        return f"refunded ${amount_usd:.2f} on order {order_id}"

    args = {"order_id": "10056", "amount_usd": 120.0}
    model = FakeModel([[call("issue_refund", args, "call_refund")]])
    return Agent(name="refunds", tools=[issue_refund], model=model)


async def main(phase: str, workdir: Path, run_id: str = "") -> None:
    url = f"sqlite:///{workdir / 'steward.db'}"
    model = "openai:gpt-4o-mini"
    async with await steward.open(url, specs=workdir / "agents") as st:
        if phase == "ask":
            governed = await start(st, "refund-agent", refund_agent(workdir), "refund $120",
                                   model_name=model)  # fmt: skip
            paused = await Runner.run(governed.agent, "refund $120")
            state = paused.to_state()
            [waiting] = await governed.pending(state)
            (workdir / "state.json").write_text(state.to_string(), "utf-8")
            print(governed.run.id, waiting.approval_id)
            return
        # resume: a new process, a new Steward, a new agent object, the saved state; it
        # does not finish the run, as if it crashed right after the SDK's run
        governed = await attach(st, run_id, refund_agent(workdir), model_name=model)
        saved = (workdir / "state.json").read_text("utf-8")
        state = await RunState.from_string(governed.agent, saved)
        await governed.apply_decisions(state, timeout=30)
        print((await Runner.run(governed.agent, state)).final_output)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:]))
