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
    sliding_window: int | None = None
    full_attention_layers: int | None = None
    native_precision: Precision = "bf16"
    reasoning_parser: str | None = Field(
        None, description="vLLM --reasoning-parser for a model that reasons before answering"
    )
    request_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="request fields a generation job wants for this model (thinking off); "
        "the user's extra_body wins",
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
        return self

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
