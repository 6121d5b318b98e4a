"""Reasoning text is never saidata: a think block at the start of a reply is cut off.

Reasoning models write their thinking into the reply unless the server runs a reasoning parser
(then it arrives as ``reasoning_content``, which the client never reads): Qwen3 opens
``<think>`` itself; templates of "thinking" variants open it in the prompt, so the reply carries
only the closing ``</think>``. Either way the answer is what follows the first closing tag.
"""

from __future__ import annotations

import re

_OPENING = re.compile(r"\s*<(think|thinking|reasoning)>", re.I)
_CLOSING = re.compile(r"</(think|thinking|reasoning)>", re.I)

HINT = (
    "turn thinking off for generation jobs (extra_body: {chat_template_kwargs: "
    "{enable_thinking: false}} for Qwen3), or serve the model with its --reasoning-parser."
)


def split_reasoning(text: str) -> tuple[str, str, bool]:
    """``(reasoning, answer, closed)``: the leading think block (``""`` when there is none), the
    text after it, and whether the block was closed (an unclosed one is all reasoning)."""
    opening = _OPENING.match(text)
    if opening is not None:
        closing = _CLOSING.search(text, opening.end())
        if closing is None:
            return text, "", False
        return text[: closing.end()], text[closing.end() :].lstrip(), True
    closing = _CLOSING.search(text)
    if closing is not None and "<" + closing.group(1) + ">" not in text[: closing.start()]:
        return text[: closing.end()], text[closing.end() :].lstrip(), True  # opened in the prompt
    return "", text, True
