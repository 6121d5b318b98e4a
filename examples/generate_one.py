"""Generate saidata for one package with saigen-vllm alone (no saigen needed).

    export SAIGEN_VLLM_BASE_URL=http://localhost:8000/v1     # or pass --base-url
    python examples/generate_one.py nginx

Configuration comes from the environment (SAIGEN_VLLM_*, see docs/configuration.md) and the flags
below. Prints the reply, then what it cost in tokens and time. Exits 1 with the provider's message
(which says what to fix) when generation fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from saigen_vllm import GenerationContext, VLLMProvider
from saigen_vllm.errors import LLMProviderError


async def generate(software: str, config: dict[str, object]) -> int:
    provider = VLLMProvider(config)
    try:
        response = await provider.generate_saidata(GenerationContext(software_name=software))
    except LLMProviderError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await provider.aclose()
    meta = response.metadata or {}
    print(response.content)
    print(
        f"# {response.model_used}: {meta['prompt_tokens']} prompt + {meta['completion_tokens']} "
        f"completion tokens in {meta['latency_s']} s ({meta['endpoint']})",
        file=sys.stderr,
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("software")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    args = parser.parse_args()
    config = {k: v for k, v in (("base_url", args.base_url), ("model", args.model)) if v}
    return asyncio.run(generate(args.software, config))


if __name__ == "__main__":
    sys.exit(main())
