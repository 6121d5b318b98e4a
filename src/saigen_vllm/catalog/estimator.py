"""The arithmetic of serving a model with vLLM: weights, KV cache, fit, concurrency, roofline.

Every formula is written out in docs/catalog.md. GB = 10^9 bytes, GiB = 2^30 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ATTENTION_KINDS, STATE_KINDS, Hardware, LayerGroup, ModelSpec

GIB = 2**30
GB = 10**9

BITS_PER_WEIGHT: dict[str, float] = {
    "bf16": 16.0,
    "fp8": 8.0,
    # 4-bit integers with a 16-bit scale and a 4-bit zero point per group of 128 weights
    "awq-int4": 4.0 + 20 / 128,
    "gptq-int4": 4.0 + 20 / 128,
    # FP4 values with an FP8 scale per block of 16 (NVFP4) or per block of 32 + E8M0 (MXFP4)
    "nvfp4": 4.5,
    "mxfp4": 4.25,
}
RUNTIME_RESERVE_GIB = 3.0
"""Activation peak + CUDA graphs + non-torch memory. vLLM publishes no rule; its logs show 1-3 GiB.
This is a planning estimate, not a vLLM figure."""
HEADROOM = 0.9
"""recommend() keeps 10 % of the memory budget free: "fits with room to spare"."""


def _linear_params(model: ModelSpec) -> float:
    return model.params_b * 1e9 - model.embedding_params


def weight_bytes(model: ModelSpec, precision: str) -> float:
    """Bytes of weights in ``precision``. Embeddings and lm_head stay bf16 in every quantized
    format; MXFP4 (gpt-oss) quantizes only the MoE experts."""
    bits = BITS_PER_WEIGHT[precision]
    embeddings = model.embedding_params * 2
    if precision == "bf16":
        return model.params_b * 1e9 * 2
    if precision == "mxfp4":
        experts = (model.expert_params_b or 0.0) * 1e9
        other = model.params_b * 1e9 - experts
        return experts * bits / 8 + other * 2
    return _linear_params(model) * bits / 8 + embeddings


def weights_gb(model: ModelSpec, precision: str) -> float:
    """The measured size of the variant when the catalog has one, else the estimate."""
    variant = model.variant(precision)
    if variant is not None and variant.weights_gb is not None:
        return variant.weights_gb
    return weight_bytes(model, precision) / GB


def bytes_read_per_token(model: ModelSpec, precision: str) -> float:
    """Weight bytes one decode step reads at batch 1: everything but the input embedding table
    (one row is read), and for MoE only the experts chosen for the token."""
    total = weight_bytes(model, precision)
    if not model.tie_word_embeddings:
        total -= model.vocab_size * model.hidden_size * 2
    if model.is_moe:
        assert model.expert_params_b and model.experts and model.experts_per_token
        expert_bits = BITS_PER_WEIGHT[precision] if precision != "bf16" else 16.0
        experts = model.expert_params_b * 1e9 * expert_bits / 8
        total -= experts * (1 - model.experts_per_token / model.experts)
    return total


def _attention_bytes_per_token(group: LayerGroup, kv_dtype_bytes: int) -> int:
    """One token's cache in ``group``: K and V per KV head, or MLA's one latent."""
    if group.kind == "mla":
        assert group.kv_lora_rank and group.qk_rope_head_dim
        return group.layers * (group.kv_lora_rank + group.qk_rope_head_dim) * kv_dtype_bytes
    if group.kind in ATTENTION_KINDS:
        assert group.kv_heads and group.head_dim
        return 2 * group.layers * group.kv_heads * group.head_dim * kv_dtype_bytes
    return 0


def kv_bytes_per_token(model: ModelSpec, kv_dtype_bytes: int = 2) -> int:
    """KV bytes per token of context on the layers that keep every token (full attention, MLA).
    Sliding-window and chunked layers keep a bounded number per sequence, state layers a fixed
    state (see below)."""
    return sum(
        _attention_bytes_per_token(group, kv_dtype_bytes)
        for group in model.layer_groups
        if group.kind in ("full", "mla")
    )


def _group_state_bytes(group: LayerGroup, state_dtype_bytes: int) -> int:
    """One sequence's state on every layer of a Mamba-2 or gated-DeltaNet group."""
    if group.kind not in STATE_KINDS:
        return 0
    assert group.state_heads and group.state_head_dim and group.state_size
    assert group.state_groups and group.conv_kernel
    heads = group.state_heads * group.state_head_dim
    if group.kind == "mamba2":
        conv = (group.conv_kernel - 1) * (heads + 2 * group.state_groups * group.state_size)
    else:
        conv = (group.conv_kernel - 1) * (2 * group.state_groups * group.state_size + heads)
    ssm = heads * group.state_size
    ssm_bytes = group.ssm_state_bytes or state_dtype_bytes
    return group.layers * (conv * state_dtype_bytes + ssm * ssm_bytes)


def state_bytes_per_sequence(model: ModelSpec, state_dtype_bytes: int = 2) -> int:
    """The fixed state one sequence holds on Mamba-2 and gated-DeltaNet layers, whatever its
    length (vLLM's MambaStateShapeCalculator shapes; the model's dtype unless the model sets
    the SSM state's own, as Nemotron-H's float32)."""
    return sum(_group_state_bytes(group, state_dtype_bytes) for group in model.layer_groups)


def windowed_tokens(window: int, context: int, in_flight_tokens: int) -> int:
    """Tokens vLLM reserves per sequence on a sliding-window layer: the window, plus the tokens
    scheduled but not yet settled (freed on a processed-token basis), never more than the
    context (vLLM's SlidingWindowSpec.max_admission_blocks_per_request, without block rounding).
    """
    return min(window - 1 + in_flight_tokens, context)


VLLM_BLOCK_SIZE = 16
"""vLLM's default --block-size on GPUs (tokens per KV-cache block); its CPU backend uses 128."""
STATE_COPIES = {"mamba2": 3, "gated_deltanet": 2}
"""States vLLM 0.32 keeps per sequence and state layer with prefix caching on (its default;
mamba cache mode "align"): two, plus one prefill checkpoint for Mamba-2 mixers."""


def _per_layer_token_bytes(group: LayerGroup, kv_dtype_bytes: int) -> int:
    return _attention_bytes_per_token(group, kv_dtype_bytes) // group.layers


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def sequence_bytes(
    model: ModelSpec,
    context: int,
    kv_dtype_bytes: int = 2,
    in_flight_tokens: int = 0,
    *,
    block_size: int = VLLM_BLOCK_SIZE,
    state_dtype_bytes: int = 2,
) -> int:
    """What vLLM 0.32's KV-cache manager reserves for one sequence of ``context`` tokens, so
    that its "Maximum concurrency" is ``KV memory / sequence_bytes``: whole blocks per layer
    (full and MLA layers: the context; sliding: the window and the in-flight tokens, plus one
    block); for hybrids with state layers, the attention block is enlarged until one block of a
    layer holds a state, states are padded to that page, layers are grouped by kind into groups
    of one size (the fewest of a kind, or the most when within 1.5x), and each state group keeps
    ``STATE_COPIES`` pages. vllm/v1/kv_cache_interface.py, vllm/v1/core/kv_cache_utils.py."""
    groups = model.layer_groups
    states = [g for g in groups if g.kind in STATE_KINDS]
    attention = [g for g in groups if g.kind not in STATE_KINDS]

    def attention_blocks(group: LayerGroup, size: int) -> int:
        if group.kind == "sliding":
            assert group.window
            return _cdiv(windowed_tokens(group.window, context, in_flight_tokens), size) + 1
        if group.kind == "chunked":
            assert group.window
            return _cdiv(min(group.window + in_flight_tokens, context), size)
        return _cdiv(context, size)

    if not states:
        return sum(
            group.layers
            * attention_blocks(group, block_size)
            * block_size
            * _per_layer_token_bytes(group, kv_dtype_bytes)
            for group in attention
        )
    state_page = max(_group_state_bytes(g, state_dtype_bytes) // g.layers for g in states)
    token_bytes = max((_per_layer_token_bytes(g, kv_dtype_bytes) for g in attention), default=0)
    size = _cdiv(_cdiv(state_page, token_bytes), block_size) * block_size if token_bytes else 1
    page = max(size * token_bytes, state_page)
    counts = [g.layers for g in groups]
    group_size = max(counts) if max(counts) < min(counts) * 1.5 else min(counts)
    blocks = sum(_cdiv(g.layers, group_size) * attention_blocks(g, size) for g in attention)
    blocks += sum(_cdiv(g.layers, group_size) * STATE_COPIES[g.kind] for g in states)
    return blocks * group_size * page


def in_flight_tokens(hardware: Hardware) -> int:
    """vLLM's ``max_in_flight_tokens`` for `vllm serve` on ``hardware``: its default
    --max-num-batched-tokens for the GPU's memory (2,048 below 70 GiB or on an A100, 8,192 up
    to 160 GiB, 16,384 above), doubled by asynchronous scheduling (on by default, not with the
    Ray backend of a multi-node profile). vllm/engine/arg_utils.py, vllm/config/vllm.py."""
    if hardware.memory_gib >= 160:
        batched = 16384
    elif hardware.memory_gib >= 70 and "a100" not in hardware.name:
        batched = 8192
    else:
        batched = 2048
    return batched * (2 if hardware.nodes == 1 else 1)


def _valid_tensor_parallel(model: ModelSpec, size: int) -> bool:
    """vLLM's rule: attention heads divide evenly; KV heads divide evenly or are replicated."""
    if model.attention_heads % size:
        return False
    if size <= model.kv_heads:
        return model.kv_heads % size == 0
    return size % model.kv_heads == 0


def tensor_parallel_size(model: ModelSpec, hardware: Hardware) -> int:
    """One per GPU of the profile (GPUs, not gigabytes), lowered until vLLM accepts it."""
    size = hardware.gpus
    while size > 1 and not _valid_tensor_parallel(model, size):
        size -= 1
    return size


def decode_roofline(
    model: ModelSpec, precision: str, hardware: Hardware, context: int = 0
) -> float | None:
    """Batch-1 decode ceiling in tokens/s: bandwidth / bytes read per token (weights, plus the
    KV cache of ``context`` tokens). With tensor parallelism each GPU reads its share. None
    when the hardware's bandwidth is not known."""
    if hardware.bandwidth_gbs is None:
        return None
    tp = tensor_parallel_size(model, hardware)
    per_token = bytes_read_per_token(model, precision) + kv_bytes_per_token(model) * context
    return round(hardware.bandwidth_gbs * GB * tp / per_token, 1)


@dataclass(frozen=True)
class Fit:
    """How ``model`` in ``precision`` fits ``hardware`` at ``context`` x ``concurrency``."""

    model: str
    repo: str
    precision: str
    hardware: str
    context: int
    concurrency: int
    kv_cache_dtype: str
    weights_gb: float
    kv_bytes_per_token: int
    """on the layers that keep every token (full attention, MLA)"""
    state_bytes_per_sequence: int
    """fixed per sequence on state layers (Mamba-2, gated DeltaNet); 0 for pure attention"""
    kv_gb: float
    reserve_gb: float
    total_gb: float
    budget_gb: float
    fits: bool
    max_concurrency: int
    tensor_parallel_size: int
    decode_tok_s: float | None
    """batch-1 ceiling with an empty context (None: bandwidth unknown)"""
    decode_tok_s_at_context: float | None
    """batch-1 ceiling with ``context`` tokens already in the KV cache"""
    reason: str

    @property
    def decode_shown(self) -> str:
        return "?" if self.decode_tok_s is None else f"{self.decode_tok_s:.1f}"

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def evaluate(
    model: ModelSpec,
    precision: str,
    hardware: Hardware,
    *,
    context: int,
    concurrency: int,
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
) -> Fit:
    kv_bytes = 1 if kv_cache_dtype == "fp8" else 2
    variant = model.variant(precision)
    tp = tensor_parallel_size(model, hardware)
    utilization = gpu_memory_utilization or hardware.gpu_memory_utilization
    budget = hardware.memory_gib * GIB * utilization * tp
    weights = weights_gb(model, precision) * GB
    reserve = RUNTIME_RESERVE_GIB * GIB * tp
    per_seq = sequence_bytes(model, context, kv_bytes, in_flight_tokens(hardware))
    if tp > 1 and any(group.kind == "mla" for group in model.layer_groups):
        per_seq *= tp  # MLA's latent is not split over tensor-parallel ranks: each holds it all
    kv_total = per_seq * concurrency
    needed = weights + reserve + kv_total
    free_for_kv = budget - weights - reserve
    max_conc = max(0, int(free_for_kv // per_seq)) if per_seq else 0
    reasons = []
    if variant is None:
        reasons.append(f"no {precision} variant in the catalog")
    if context > model.longest_context:
        reasons.append(f"context {context} exceeds the model's maximum {model.longest_context}")
    if free_for_kv <= 0:
        reasons.append(
            f"weights {weights / GB:.1f} GB + reserve {reserve / GB:.1f} GB exceed the "
            f"{budget / GB:.1f} GB vLLM may use"
        )
    elif needed > budget:
        reasons.append(
            f"KV cache for {concurrency} x {context} tokens needs {kv_total / GB:.1f} GB, only "
            f"{free_for_kv / GB:.1f} GB left (at most {max_conc} sequences)"
        )
    return Fit(
        model=model.id,
        repo=variant.repo if variant else "",
        precision=precision,
        hardware=hardware.name,
        context=context,
        concurrency=concurrency,
        kv_cache_dtype=kv_cache_dtype,
        weights_gb=round(weights / GB, 2),
        kv_bytes_per_token=kv_bytes_per_token(model, kv_bytes),
        state_bytes_per_sequence=state_bytes_per_sequence(model),
        kv_gb=round(kv_total / GB, 2),
        reserve_gb=round(reserve / GB, 2),
        total_gb=round(needed / GB, 2),
        budget_gb=round(budget / GB, 2),
        fits=not reasons,
        max_concurrency=max_conc if variant and context <= model.longest_context else 0,
        tensor_parallel_size=tp,
        decode_tok_s=decode_roofline(model, precision, hardware),
        decode_tok_s_at_context=decode_roofline(model, precision, hardware, context),
        reason="; ".join(reasons),
    )
