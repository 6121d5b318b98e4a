"""Facts, not code: numbers from vLLM, config.json files and measurements (see docs/catalog.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from saigen_vllm.catalog import load_catalog
from saigen_vllm.catalog.estimator import (
    GB,
    bytes_read_per_token,
    decode_roofline,
    evaluate,
    kv_bytes_per_token,
    sequence_bytes,
    tensor_parallel_size,
)
from saigen_vllm.catalog.markdown import render_models_markdown
from saigen_vllm.cli import main

CATALOG = load_catalog()
GB10 = CATALOG.hardware("gb10")


def models_json(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["models", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def row(rows: list[dict], model: str, precision: str) -> dict:
    return next(r for r in rows if r["model"] == model and r["precision"] == precision)


def test_at_least_32_models_each_sourced() -> None:
    assert len(CATALOG.models) >= 32
    for model in CATALOG.models:
        assert model.source.startswith("https://huggingface.co/" + model.id)
        for variant in model.variants:
            assert variant.source.startswith("https://huggingface.co/" + variant.repo)
    for profile in CATALOG.hardware_profiles:
        assert len(profile.source) > 20
    for item in CATALOG.measurements:
        assert item.source
    names = {p.name for p in CATALOG.hardware_profiles}
    assert {
        "gb10",
        "gb10x2",
        "h100",
        "h200",
        "a100-80gb",
        "l40s",
        "rtx4090",
        "rtx6000-ada",
    } <= names


def test_llama31_8b_kv_is_vllms_own_figure() -> None:
    # vLLM logged 2 GiB / 16,384 tokens = 128 KiB per token for this architecture
    rows = models_json("--hardware", "gb10")
    assert row(rows, "meta-llama/Llama-3.1-8B-Instruct", "bf16")["kv_bytes_per_token"] == 131_072


def test_phi3_medium_bf16_weights() -> None:
    rows = models_json()
    assert row(rows, "microsoft/Phi-3-medium-4k-instruct", "bf16")["weights_gb"] == pytest.approx(
        27.9, rel=0.05
    )


def test_llama33_70b_bf16_does_not_fit_but_fp8_and_nvfp4_do() -> None:
    rows = models_json("--context", "8192", "--concurrency", "1")
    assert row(rows, "meta-llama/Llama-3.3-70B-Instruct", "bf16")["fits"] is False
    assert row(rows, "meta-llama/Llama-3.3-70B-Instruct", "fp8")["fits"] is True
    assert row(rows, "meta-llama/Llama-3.3-70B-Instruct", "nvfp4")["fits"] is True


def test_qwen25_72b_fits_one_gb10_only_at_4_bits() -> None:
    rows = [
        r for r in models_json("--concurrency", "1") if r["model"] == "Qwen/Qwen2.5-72B-Instruct"
    ]
    assert {r["precision"]: r["fits"] for r in rows} == {"bf16": False, "awq-int4": True}
    assert row(rows, "Qwen/Qwen2.5-72B-Instruct", "bf16")["weights_gb"] == pytest.approx(
        145.4, 0.01
    )


def test_sliding_window_models_count_only_full_layers() -> None:
    gemma = CATALOG.model("google/gemma-2-9b-it")
    assert kv_bytes_per_token(gemma) == 168 * 1024  # 21 full layers, not 42
    oss = CATALOG.model("openai/gpt-oss-120b")
    assert kv_bytes_per_token(oss) == 36 * 1024
    assert kv_bytes_per_token(CATALOG.model("openai/gpt-oss-20b")) == 24 * 1024
    # the window layers add a fixed amount per sequence, not one per context token
    long = sequence_bytes(gemma, 8192) - sequence_bytes(gemma, 4096)
    assert long == 4096 * 168 * 1024


def test_quantized_sizes_match_measured_repos() -> None:
    # the 4-bit overhead rule reproduces the sizes of published AWQ repos without using them
    from saigen_vllm.catalog.estimator import weight_bytes

    for model_id, measured in [
        ("meta-llama/Llama-3.1-8B-Instruct", 5.73),
        ("codellama/CodeLlama-7b-Instruct-hf", 3.89),
        ("codellama/CodeLlama-34b-Instruct-hf", 18.3),
        ("Qwen/Qwen2.5-Coder-32B-Instruct", 19.3),
        ("google/gemma-2-9b-it", 6.2),
    ]:
        estimate = weight_bytes(CATALOG.model(model_id), "awq-int4") / GB
        assert estimate == pytest.approx(measured, rel=0.02), model_id
    fp8 = weight_bytes(CATALOG.model("google/gemma-2-9b-it"), "fp8") / GB
    assert fp8 == pytest.approx(10.2, rel=0.02)
    oss = weight_bytes(CATALOG.model("openai/gpt-oss-120b"), "mxfp4") / GB
    assert 61 <= oss <= 66
    assert 12.5 <= weight_bytes(CATALOG.model("openai/gpt-oss-20b"), "mxfp4") / GB <= 14


def test_moe_active_parameters_follow_from_the_experts() -> None:
    for model in CATALOG.models:
        if model.is_moe:
            assert model.expert_params_b and model.experts and model.experts_per_token
            active = model.params_b - model.expert_params_b * (
                1 - model.experts_per_token / model.experts
            )
            # model cards count active parameters with the input embedding table (Mixtral, Qwen3)
            # or without it (gpt-oss); either way the experts explain the card's number
            without_embedding = active - model.vocab_size * model.hidden_size / 1e9
            # (cards round to one decimal: 2.4B for DeepSeek-V2-Lite's 2.45)
            assert model.active_params_b in (
                pytest.approx(active, rel=0.03),
                pytest.approx(without_embedding, rel=0.03),
            ), model.id


def test_roofline_llama31_8b_fp8_near_34_and_above_measurements() -> None:
    rows = models_json()
    assert row(rows, "meta-llama/Llama-3.1-8B-Instruct", "fp8")["decode_tok_s"] == pytest.approx(
        34, abs=1.5
    )
    for measured in CATALOG.measurements:
        if measured.engine == "llama.cpp" or measured.model.startswith("openai/gpt-oss"):
            continue  # the reference marks these rooflines uncertain (MXFP4 layouts differ)
        if measured.batch > 1:
            continue  # aggregate throughput of a batch: above the one-stream ceiling by design
        ceiling = decode_roofline(CATALOG.model(measured.model), measured.precision, GB10)
        assert ceiling > measured.decode_tok_s, measured


def test_tensor_parallel_is_gpus_not_gigabytes() -> None:
    two = CATALOG.hardware("gb10x2")
    for model in CATALOG.models:
        assert tensor_parallel_size(model, GB10) == 1
        tp = tensor_parallel_size(model, two)
        assert model.attention_heads % tp == 0
    assert tensor_parallel_size(CATALOG.model("meta-llama/Llama-3.3-70B-Instruct"), two) == 2


def test_two_gb10s_fit_what_one_cannot() -> None:
    llama = CATALOG.model("meta-llama/Llama-3.3-70B-Instruct")
    one = evaluate(llama, "bf16", GB10, context=8192, concurrency=4)
    two = evaluate(llama, "bf16", CATALOG.hardware("gb10x2"), context=8192, concurrency=4)
    assert not one.fits and two.fits and two.tensor_parallel_size == 2


def test_fp8_kv_cache_halves_kv() -> None:
    model = CATALOG.model("meta-llama/Llama-3.1-8B-Instruct")
    assert kv_bytes_per_token(model, 1) * 2 == kv_bytes_per_token(model)
    auto = evaluate(model, "fp8", GB10, context=32768, concurrency=8)
    fp8 = evaluate(model, "fp8", GB10, context=32768, concurrency=8, kv_cache_dtype="fp8")
    assert fp8.max_concurrency >= 2 * auto.max_concurrency - 1


def test_context_beyond_model_maximum_does_not_fit() -> None:
    fit = evaluate(
        CATALOG.model("microsoft/Phi-3-mini-4k-instruct"), "bf16", GB10, context=8192, concurrency=1
    )
    assert not fit.fits and "maximum 4096" in fit.reason


def test_bytes_read_per_token_moe_reads_only_chosen_experts() -> None:
    mixtral = CATALOG.model("mistralai/Mixtral-8x7B-Instruct-v0.1")
    dense_equivalent = mixtral.active_params_b * 1e9 * 2
    assert bytes_read_per_token(mixtral, "bf16") == pytest.approx(dense_equivalent, rel=0.05)


def test_json_fields_from_a_fresh_cli() -> None:
    rows = models_json("--hardware", "gb10", "--context", "8192", "--concurrency", "15")
    for key in (
        "model",
        "precision",
        "weights_gb",
        "kv_bytes_per_token",
        "total_gb",
        "fits",
        "max_concurrency",
        "decode_tok_s",
    ):
        assert key in rows[0]


def test_recommend_gb10_names_a_fitting_model() -> None:
    result = CliRunner().invoke(
        main,
        ["recommend", "--hardware", "gb10", "--context", "8192", "--concurrency", "15", "--json"],
    )
    assert result.exit_code == 0, result.output
    choice = json.loads(result.output)["choice"]
    assert choice["fits"] and choice["total_gb"] <= choice["budget_gb"] * 0.9
    assert choice["decode_tok_s"] >= 15
    text = CliRunner().invoke(main, ["recommend", "--hardware", "gb10"]).output
    assert choice["model"] in text and "tok/s" in text


def test_recommend_too_big_explains() -> None:
    result = CliRunner().invoke(
        main, ["recommend", "--hardware", "rtx4090", "--context", "131072", "--concurrency", "64"]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "Nothing in the catalog fits" in text
    assert "KV cache for 64 x 131072 tokens needs" in text


def test_unknown_hardware_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["models", "--hardware", "gb11"])
    assert result.exit_code == 2
    assert "gb10" in result.output  # lists what exists


def test_docs_models_md_is_current() -> None:
    committed = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    assert committed == render_models_markdown(CATALOG), (
        "docs/models.md is stale: run `saigen-vllm models --markdown > docs/models.md`"
    )


def test_provider_model_info_and_requirements_from_catalog() -> None:
    from saigen_vllm.provider import VLLMProvider

    provider = VLLMProvider({"model": "nvidia/Llama-3.1-8B-Instruct-FP8"})
    info = provider.get_model_info()
    assert info.context_window == 131072
    req = provider.get_model_requirements()
    assert req is not None
    assert req["recommended_tensor_parallel"] == 1
    fp8 = next(v for v in req["variants"] if v["precision"] == "fp8")
    assert fp8["fits"] and fp8["weights_gb"] == pytest.approx(9.1, abs=0.1)
    assert provider.get_model_requirements("not/a-model") is None


def test_precision_of_a_served_repo() -> None:
    llama = CATALOG.model("meta-llama/Llama-3.1-8B-Instruct")
    assert llama.precision_of("nvidia/Llama-3.1-8B-Instruct-FP8") == "fp8"
    assert llama.precision_of("meta-llama/Llama-3.1-8B-Instruct") == "bf16"
    assert CATALOG.model("openai/gpt-oss-20b").precision_of("openai/gpt-oss-20b") == "mxfp4"


# -- attention beyond plain GQA: hand counts (vLLM's own figures: tests/integration/
#    test_catalog_referee.py) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "kv_per_token", "state_per_sequence"),
    [
        # 2 (K, V) x 32 layers x 8 KV heads x 128 x 2 bytes
        ("meta-llama/Llama-3.1-8B-Instruct", 2 * 32 * 8 * 128 * 2, 0),
        # MLA: 27 layers x (kv_lora_rank 512 + rope 64) x 2 bytes, no K/V pair
        ("deepseek-ai/DeepSeek-V2-Lite-Chat", 27 * (512 + 64) * 2, 0),
        # the 10 global layers only; the 52 sliding ones keep a window per sequence
        ("google/gemma-3-27b-it", 2 * 10 * 16 * 128 * 2, 0),
        # 6 attention layers; 23 Mamba-2 layers of conv 3 x (64x64 + 2x8x128) bf16 and
        # SSM 64x64x128 float32
        (
            "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
            2 * 6 * 2 * 128 * 2,
            23 * (3 * (64 * 64 + 2 * 8 * 128) * 2 + 64 * 64 * 128 * 4),
        ),
        # 12 attention layers; 36 DeltaNet layers of conv 3 x (2x16x128 + 32x128) and
        # recurrent 32x128x128, bf16
        (
            "Qwen/Qwen3-Next-80B-A3B-Instruct",
            2 * 12 * 2 * 256 * 2,
            36 * (3 * (2 * 16 * 128 + 32 * 128) * 2 + 32 * 128 * 128 * 2),
        ),
    ],
)
def test_kv_per_token_and_state_per_sequence_by_hand(
    model_id: str, kv_per_token: int, state_per_sequence: int
) -> None:
    from saigen_vllm.catalog.estimator import kv_bytes_per_token, state_bytes_per_sequence

    model = CATALOG.model(model_id)
    assert kv_bytes_per_token(model) == kv_per_token
    assert state_bytes_per_sequence(model) == state_per_sequence
    fields = row(models_json("--hardware", "gb10"), model_id, model.native_precision)
    assert fields["kv_bytes_per_token"] == kv_per_token
    assert fields["state_bytes_per_sequence"] == state_per_sequence


def test_hybrids_are_not_entered_as_plain_attention() -> None:
    """Entered as if every layer were attention, the hybrids' KV would be 4-10x too large."""
    from saigen_vllm.catalog.estimator import kv_bytes_per_token

    for model_id in (
        "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "Qwen/Qwen3-Next-80B-A3B-Instruct",
    ):
        model = CATALOG.model(model_id)
        plain = 2 * model.layers * model.kv_heads * model.head_dim * 2
        assert plain >= 4 * kv_bytes_per_token(model)


def test_sliding_window_reservation_follows_vllm() -> None:
    """vLLM keeps window - 1 + in-flight tokens per sequence on a sliding layer (16,384 in
    flight on a GB10: 8,192 batched tokens, doubled by async scheduling), so gpt-oss at 16 k
    context holds its sliding layers in full and fits fewer sequences than the window alone
    would suggest."""
    from saigen_vllm.catalog.estimator import in_flight_tokens, sequence_bytes

    gb10 = CATALOG.hardware("gb10")
    assert in_flight_tokens(gb10) == 16384
    assert in_flight_tokens(CATALOG.hardware("gb10x2")) == 8192  # Ray: no async scheduling
    assert in_flight_tokens(CATALOG.hardware("rtx4090")) == 4096
    oss = CATALOG.model("openai/gpt-oss-120b")
    window_only = sequence_bytes(oss, 16384, in_flight_tokens=0)
    assert sequence_bytes(oss, 16384, in_flight_tokens=16384) > 1.9 * window_only


def test_extended_context_needs_rope_scaling_and_serve_adds_it() -> None:
    from saigen_vllm.serve import build_plan

    qwen = CATALOG.model("Qwen/Qwen3-8B")
    assert (qwen.native_context, qwen.max_context, qwen.longest_context) == (32768, 40960, 131072)
    plan = build_plan(CATALOG, "Qwen/Qwen3-8B", hardware="gb10", context=65536, concurrency=1)
    args = plan.vllm_args()
    overrides = json.loads(args[args.index("--hf-overrides") + 1])
    assert overrides == {"rope_scaling": qwen.rope_scaling}
    assert any("YaRN" in note for note in plan.notes)
    native = build_plan(CATALOG, "Qwen/Qwen3-8B", hardware="gb10", context=16384, concurrency=1)
    assert "--hf-overrides" not in native.vllm_args()


def test_review_fixes() -> None:
    assert CATALOG.model("mistralai/Mixtral-8x7B-Instruct-v0.1").gated
    assert (
        "Llama 3.1 Community License"
        in CATALOG.model("deepseek-ai/DeepSeek-R1-Distill-Llama-8B").source
    )
    for model_id in ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct"):
        assert CATALOG.model(model_id).longest_context == 131072
    assert CATALOG.hardware("l40s").memory_gib == 44.99
    (oss,) = [m for m in CATALOG.measurements if m.model == "openai/gpt-oss-120b"]
    assert oss.decode_tok_s == 34 and "stock vLLM" in oss.source


def test_recommend_on_gb10_picks_a_playbook_model_and_says_why() -> None:
    result = CliRunner().invoke(
        main,
        ["recommend", "--hardware", "gb10", "--context", "16384", "--concurrency", "16", "--json"],
    )
    report = json.loads(result.output)
    choice = CATALOG.model(report["choice"]["model"])
    assert choice.playbook and "NVIDIA serves it" in report["reason"]
    efficiency = report["measured_efficiency"]
    assert 0.6 <= efficiency <= 0.86  # the median of the catalog's own measurements
    expected = report["choice"]["decode_tok_s_at_context"] * efficiency
    assert expected >= 15
    # Qwen2.5-Coder-32B AWQ: its ceiling at 8 k times the measured efficiency is under the floor
    rejected = {(r["model"], r["precision"]): r["why"] for r in report["rejected"]}
    assert "below 15 tok/s" in rejected[("Qwen/Qwen2.5-Coder-32B-Instruct", "awq-int4")]
