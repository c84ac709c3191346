"""Language models: a byte-level BPE tokenizer and a small causal LM, trained and saved by maas.

Like ``maas.training``, the package import stays light (no torch, no transformers); import the
module you need:

- ``maas.training.language.chat``           special tokens and the ChatML template (stdlib only)
- ``maas.training.language.corpus``         the built-in corpus or a user's text file, and a split
- ``maas.training.language.builtin_corpus`` the generator of the shipped corpus text
- ``maas.training.language.tokenizer``      byte-level BPE trained on the corpus, with the template
- ``maas.training.language.model``          GPT-2 or Llama causal LMs built from a config
- ``maas.training.language.trainer``        the deterministic training loop and perplexity
- ``maas.training.language.export``         the Hugging Face folder (safetensors), reloaded and
  checked against the trained model
- ``maas.training.language.spec``           the ``language-model`` job spec (torch-free)
- ``maas.training.language.pipeline``       the job: corpus -> tokenizer -> model -> folder ->
  one ``hf`` archive -> a registered version
"""

from __future__ import annotations

__all__: list[str] = []
