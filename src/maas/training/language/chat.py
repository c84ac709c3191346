"""The special tokens and the ChatML chat template that maas's own language models use.

Standard library only, so the corpus generator (and a torch-free caller) can write
conversations in exactly the form the tokenizer's Jinja template renders:
``<|im_start|>role\\ncontent<|im_end|>\\n`` per message, then ``<|im_start|>assistant\\n``
when a reply is wanted. A test holds ``render_chat`` and the template to the same text.

>>> render_chat([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
'<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["CHAT_TEMPLATE", "END_OF_TEXT", "IM_END", "IM_START", "SPECIAL_TOKENS", "render_chat"]

END_OF_TEXT: Final = "<|endoftext|>"
"""Separates documents in training, and is bos, eos and pad (as in GPT-2)."""
IM_START: Final = "<|im_start|>"
IM_END: Final = "<|im_end|>"
"""Ends a chat message; generation stops at it as at ``END_OF_TEXT``."""
SPECIAL_TOKENS: Final = (END_OF_TEXT, IM_START, IM_END)
"""In this order they take ids 0, 1 and 2 in every tokenizer maas trains."""

CHAT_TEMPLATE: Final = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""Jinja, as ``tokenizer.apply_chat_template`` reads it from the saved tokenizer."""


def render_chat(messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool) -> str:
    """What ``CHAT_TEMPLATE`` renders for ``messages``, without Jinja."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")
