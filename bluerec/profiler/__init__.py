"""The profiler: an LLM that writes a readable profile of a user from their interaction history.

- :mod:`.prompts` — ``PromptConfig``, ``HistoryItem``, ``build_messages``, ``fit_to_budget`` (token budget,
  oldest items dropped first), ``render_prompt``, ``history_items_for``;
- :mod:`.template` — model-free baselines: ``raw_history_text`` and ``template_profile``;
- :mod:`.backends` — ``ProfilerBackend`` protocol and ``GenerationConfig``; ``hf.HFProfiler`` (any causal LM),
  ``openai_compat.OpenAICompatProfiler`` (``/v1/chat/completions``), ``micro`` (offline tokenizer + tiny Qwen2);
- :mod:`.warmstart` — supervised warm start (TRL SFT, loss on the profile tokens only);
- :mod:`.profile` — ``generate_profiles``: one profile per user to a resumable JSONL file.

Submodules are imported explicitly (``from bluerec.profiler.prompts import ...``) so that importing the
package does not import torch.
"""
