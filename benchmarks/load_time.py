"""How much does saigen pay to find and load this plugin?

Times, in fresh interpreters that already have pydantic loaded (as saigen does), the whole path a
host takes: scan the `saigen.providers` entry points, load `vllm`, create the provider,
call is_available(). Beside it, in the same run: importing the openai SDK alone (what an eager
provider would pay). Prints medians and the ratio.

    python benchmarks/load_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

# What saigen has loaded before it looks for providers: asyncio (its providers are async), logging,
# and pydantic with its models built.
PRELUDE = """
import asyncio, logging, time
from pydantic import BaseModel, Field
class Context(BaseModel):
    software_name: str = Field(default="x")
"""
PLUGIN = """
t0 = time.perf_counter()
from importlib.metadata import entry_points
(ep,) = [e for e in entry_points(group="saigen.providers") if e.name == "vllm"]
cls = ep.load()
provider = cls({"base_url": "http://localhost:8000/v1"})
assert provider.is_available()
print(time.perf_counter() - t0)
"""
SDK = """
t0 = time.perf_counter()
import openai
print(time.perf_counter() - t0)
"""
SCAN_ONLY = """
t0 = time.perf_counter()
from importlib.metadata import entry_points
list(entry_points(group="saigen.providers"))
print(time.perf_counter() - t0)
"""


def measure(body: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PRELUDE + body], capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    scan = measure(SCAN_ONLY, args.runs)
    plugin = measure(PLUGIN, args.runs)
    sdk = measure(SDK, args.runs)
    print(f"python {sys.version.split()[0]}, {args.runs} fresh interpreters each, medians")
    print(f"entry-point scan alone                      {scan:7.1f} ms")
    print(f"scan + load + create + is_available()      {plugin:7.1f} ms   (aim: < 40 ms)")
    print(f"baseline: import openai alone              {sdk:7.1f} ms")
    print(f"ratio plugin path / openai import          {plugin / sdk:7.2f}")


if __name__ == "__main__":
    main()
