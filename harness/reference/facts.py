"""The provider facts the reference gateway acts on: its own table, written from the providers'
documents (/work/shared/providers/*.md), not imported from the mocks or the checks. The mocks
and the checks keep their own; tests/test_oracles.py compares the three and names any fact on
which they disagree, so one wrong fact shows up as a disagreement instead of passing everywhere.
"""

from __future__ import annotations

# Text-to-image models that only DashScope's async task API serves (wan/wanx synthesis).
DASHSCOPE_TASK_MODELS = frozenset({"wan2.5-t2i-preview", "wan2.2-t2i-flash", "wan2.2-t2i-plus",
                                   "wanx2.1-t2i-turbo", "wanx2.1-t2i-plus", "wanx2.0-t2i-turbo", "wanx-v1"})
# Where those are submitted (with X-DashScope-Async: enable), and where a task is read.
DASHSCOPE_SYNTHESIS = "/api/v1/services/aigc/text2image/image-synthesis"
DASHSCOPE_TASK = "/api/v1/tasks/{task_id}"
# The sync route of the qwen-image family, generation and edit alike.
DASHSCOPE_MULTIMODAL = "/api/v1/services/aigc/multimodal-generation/generation"
DASHSCOPE_CHAT = "/compatible-mode/v1/chat/completions"
OPENAI_GENERATIONS = "/v1/images/generations"
OPENAI_EDITS = "/v1/images/edits"
OPENAI_CHAT = "/v1/chat/completions"
REPLICATE_MODEL_PREDICTIONS = "/v1/models/{owner_name}/predictions"
REPLICATE_PREDICTION = "/v1/predictions/{prediction_id}"
