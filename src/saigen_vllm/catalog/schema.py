"""Typed views of the catalog's package data, validated by pydantic when loaded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["bf16", "fp8", "awq-int4", "gptq-int4", "nvfp4", "mxfp4"]
PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8", "nvfp4", "mxfp4", "awq-int4", "gptq-int4")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    repo: str
    format: Precision
    weights_gb: float | None = Field(None, gt=0, description="measured size of the repo")
    source: str = Field(min_length=8)


LayerKind = Literal["full", "sliding", "chunked", "mla", "mamba2", "gated_deltanet"]
ATTENTION_KINDS = ("full", "sliding", "chunked")
STATE_KINDS = ("mamba2", "gated_deltanet")


class LayerGroup(_Strict):
    """Layers that keep the same kind of per-sequence memory, in the words of the model's
    config.json (and of vLLM's KV-cache specs):

    - ``full``: K and V of every token (``kv_heads`` x ``head_dim`` each);
    - ``sliding`` / ``chunked``: the same, for the last ``window`` tokens / the current chunk;
    - ``mla``: one latent of ``kv_lora_rank`` + ``qk_rope_head_dim`` per token, no K/V pair
      (DeepSeek V2/V3);
    - ``mamba2``: a fixed state per sequence, conv ``(conv_kernel - 1) x (state_heads x
      state_head_dim + 2 x state_groups x state_size)`` and SSM ``state_heads x state_head_dim x
      state_size`` (Nemotron-H);
    - ``gated_deltanet``: conv ``(conv_kernel - 1) x (2 x state_groups x state_size +
      state_heads x state_head_dim)`` and recurrent ``state_heads x state_head_dim x state_size``,
      where ``state_groups`` are the key heads and ``state_size`` the key head size (Qwen3-Next,
      Qwen3.5/3.6).
    Layers without attention or state (MLP, MoE blocks) are not listed."""

    kind: LayerKind
    layers: int = Field(gt=0)
    kv_heads: int | None = Field(None, gt=0)
    head_dim: int | None = Field(None, gt=0)
    window: int | None = Field(None, gt=0)
    kv_lora_rank: int | None = Field(None, gt=0)
    qk_rope_head_dim: int | None = Field(None, gt=0)
    state_heads: int | None = Field(None, gt=0)
    state_head_dim: int | None = Field(None, gt=0)
    state_size: int | None = Field(None, gt=0)
    state_groups: int | None = Field(None, gt=0)
    conv_kernel: int | None = Field(None, gt=1)
    ssm_state_bytes: int | None = Field(
        None, description="bytes per SSM state element when the model sets it (Nemotron-H: 4)"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> LayerGroup:
        state = ("state_heads", "state_head_dim", "state_size", "state_groups", "conv_kernel")
        needed = {
            "full": (),
            "sliding": ("window",),
            "chunked": ("window",),
            "mla": ("kv_lora_rank", "qk_rope_head_dim"),
            "mamba2": state,
            "gated_deltanet": state,
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} layer group needs {', '.join(missing)}")
        return self


class ModelSpec(_Strict):
    id: str
    family: str
    params_b: float = Field(gt=0)
    active_params_b: float | None = Field(None, gt=0)
    layers: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool
    native_context: int = Field(gt=0)
    max_context: int = Field(gt=0)
    experts: int | None = None
    experts_per_token: int | None = None
    expert_params_b: float | None = None
    """routed experts only: shared experts are read for every token, so they count as active
    with the rest of the weights"""
    sliding_window: int | None = None
    full_attention_layers: int | None = None
    attention: list[LayerGroup] | None = Field(
        None,
        description="per layer type, for models that are not plain attention on every layer; "
        "without it every layer is full attention (or sliding, by the two fields above)",
    )
    extended_context: int | None = Field(
        None, gt=0, description="context with rope scaling (YaRN) beyond the native one"
    )
    rope_scaling: dict[str, Any] | None = Field(
        None, description="what vLLM needs (--hf-overrides) to reach extended_context"
    )
    native_precision: Precision = "bf16"
    reasoning_parser: str | None = Field(
        None, description="vLLM --reasoning-parser for a model that reasons before answering"
    )
    request_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="request fields a generation job wants for this model (thinking off); "
        "the user's extra_body wins",
    )
    playbook: str | None = Field(
        None, description="the NVIDIA DGX Spark playbook that serves this model, when one does"
    )
    license: str
    gated: bool
    capabilities: list[Literal["code", "structured_output", "long_context"]]
    released: str
    source: str = Field(min_length=8)
    variants: list[Variant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.kv_heads > self.attention_heads or self.attention_heads % self.kv_heads:
            raise ValueError(f"{self.id}: attention heads must be a multiple of KV heads")
        moe = (self.experts, self.experts_per_token, self.expert_params_b)
        if any(v is not None for v in moe) and not all(v is not None for v in moe):
            raise ValueError(f"{self.id}: experts, experts_per_token, expert_params_b go together")
        if (self.sliding_window is None) != (self.full_attention_layers is None):
            raise ValueError(f"{self.id}: sliding_window needs full_attention_layers")
        if self.attention is not None:
            if self.sliding_window is not None:
                raise ValueError(f"{self.id}: give sliding layers in `attention`, not both")
            listed = sum(group.layers for group in self.attention)
            if listed > self.layers:
                raise ValueError(f"{self.id}: `attention` lists {listed} of {self.layers} layers")
        if (self.extended_context is None) != (self.rope_scaling is None):
            raise ValueError(f"{self.id}: extended_context goes with rope_scaling")
        return self

    @property
    def longest_context(self) -> int:
        """The most context vLLM can be given: with rope scaling when the model has it."""
        return self.extended_context or self.max_context

    @property
    def layer_groups(self) -> list[LayerGroup]:
        """``attention`` when given, else every layer full attention with the model's KV heads
        and head size, the sliding-window layers apart."""
        if self.attention is not None:
            return [
                group.model_copy(
                    update={
                        "kv_heads": group.kv_heads or self.kv_heads,
                        "head_dim": group.head_dim or self.head_dim,
                    }
                )
                if group.kind in ATTENTION_KINDS
                else group
                for group in self.attention
            ]
        full = LayerGroup(
            kind="full",
            layers=self.full_attention_layers or self.layers,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
        )
        if self.sliding_window is None:
            return [full]
        sliding = LayerGroup(
            kind="sliding",
            layers=self.sliding_layers,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            window=self.sliding_window,
        )
        return [full, sliding]

    @property
    def is_moe(self) -> bool:
        return self.experts is not None

    @property
    def sliding_layers(self) -> int:
        if self.full_attention_layers is None:
            return 0
        return self.layers - self.full_attention_layers

    @property
    def embedding_params(self) -> float:
        """Input embedding plus lm_head parameters (once when tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def all_variants(self) -> list[Variant]:
        """The base repo in its native precision, then the quantized variants."""
        base = Variant(
            repo=self.id, format=self.native_precision, weights_gb=None, source=self.source
        )
        return [base, *self.variants]

    def precision_of(self, repo: str) -> str:
        """The format of the variant published as ``repo`` (the native one for the base repo or
        a name the catalog does not list, such as a served alias)."""
        for item in self.all_variants():
            if item.repo.lower() == repo.lower():
                return item.format
        return self.native_precision

    def variant(self, precision: str) -> Variant | None:
        for item in self.all_variants():
            if item.format == precision:
                return item
        return None


class Hardware(_Strict):
    name: str
    title: str
    gpus: int = Field(ge=1)
    nodes: int = Field(1, ge=1, description="machines the GPUs are spread over (Ray beyond 1)")
    memory_gib: float = Field(gt=0)
    bandwidth_gbs: float | None = Field(
        None, gt=0, description="memory bandwidth; None for a GPU known only from nvidia-smi"
    )
    unified_memory: bool
    gpu_memory_utilization: float = Field(gt=0, lt=1)
    interconnect: str = ""
    match: list[str] = Field(
        default_factory=list,
        description="regular expressions for the name nvidia-smi reports (whole words)",
    )
    source: str = Field(min_length=8)


class Measurement(_Strict):
    model: str
    precision: Precision
    engine: str
    batch: int
    decode_tok_s: float
    source: str = Field(min_length=4)
