"""Provider path: the raw OpenAI SDK against a loopback server speaking the Chat
Completions protocol, against steward's provider and its fallback chain on the same
server, in the same run; the response cache's hit latency against a provider call; and
streaming time-to-first-token, raw SDK against steward's stream.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from _common import Measurement, Report, main, sample_async, scaled

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from providers.openai_server import OpenAIServer, Reply, Stream
from steward.core.messages import Message
from steward.models.cache import ResponseCache, cache_key
from steward.models.protocol import ModelRequest, TextDelta
from steward.models.providers.openai_compat import OpenAICompatModel
from steward.models.routing import FallbackModel

PROMPT = [{"role": "user", "content": "Where is order 10005?"}]
REQUEST = ModelRequest((Message("user", "Where is order 10005?"),))


async def collect(quick: bool) -> Report:
    n = scaled(quick, 400, 40)
    report = Report("providers", "Provider path overhead, cache hits, time to first token", quick,
                    params={"calls": n, "server": "loopback Chat Completions"})  # fmt: skip
    with OpenAIServer(fallback=Reply("Order 10005 has shipped.")) as server:
        raw = AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)
        model = OpenAICompatModel("gpt-4o-mini", base_url=server.base_url, api_key="sk-bench")
        chain = FallbackModel([model])

        async def raw_call(_i: int) -> Any:
            return await raw.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)  # type: ignore[arg-type]

        baseline = report.add(
            Measurement(
                "raw", "raw SDK: chat.completions.create", await sample_async(raw_call, n, 20)
            )
        )
        provider = report.add(Measurement("provider", "OpenAICompatModel.respond",
                                          await sample_async(lambda _i: model.respond(REQUEST), n, 20)))  # fmt: skip
        chained = report.add(Measurement("chain", "FallbackModel (breaker) + provider",
                                         await sample_async(lambda _i: chain.respond(REQUEST), n, 20)))  # fmt: skip

        cache = ResponseCache(300)
        answer = await model.respond(REQUEST)
        cache.put(cache_key("desk@v1", model.name, REQUEST), answer)

        async def cache_hit(_i: int) -> Any:
            return cache.get(cache_key("desk@v1", model.name, REQUEST))

        hit = report.add(
            Measurement(
                "cache_hit",
                "response cache hit (key + lookup)",
                await sample_async(cache_hit, n * 10, 100),
            )
        )

        server_stream = Stream(["Order ", "10005 ", "has ", "shipped."])
        ttft_raw: list[int] = []
        ttft_ours: list[int] = []
        for _ in range(n // 2):
            server.enqueue(server_stream)
            started = time.perf_counter_ns()
            stream = await raw.chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, stream=True
            )  # type: ignore[arg-type]
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    ttft_raw.append(time.perf_counter_ns() - started)
                    break
            await stream.close()
            server.enqueue(server_stream)
            started = time.perf_counter_ns()
            async for item in model.stream(REQUEST):
                if isinstance(item, TextDelta) and len(ttft_ours) < len(ttft_raw):
                    ttft_ours.append(time.perf_counter_ns() - started)
        raw_first = report.add(
            Measurement("ttft_raw", "time to first token: raw SDK stream", ttft_raw, unit="stream")
        )
        our_first = report.add(Measurement("ttft_ours", "time to first token: OpenAICompatModel.stream", ttft_ours,
                                           unit="stream"))  # fmt: skip
        await raw.close()
        await model.aclose()
    report.figure(
        "provider_overhead",
        "provider overhead p50 vs raw SDK",
        provider.p50_us - baseline.p50_us,
        "µs",
    )
    report.figure(
        "chain_overhead",
        "fallback chain overhead p50 vs raw SDK",
        chained.p50_us - baseline.p50_us,
        "µs",
    )
    report.figure("cache_hit", "cache hit p50", hit.p50_us, "µs")
    report.figure(
        "cache_speedup", "provider call / cache hit (p50)", provider.p50_us / hit.p50_us, "x"
    )
    report.figure(
        "ttft_overhead",
        "time-to-first-token overhead p50",
        our_first.p50_us - raw_first.p50_us,
        "µs",
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
