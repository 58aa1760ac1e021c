"""The check API: everything a suite module imports, and nothing else.

A suite registers scenarios (`@scenario`, a traffic program driven through a `Driver`) and
checks (`@check(..., scenario=...)`, a judgement over that scenario's recording through a
`Judgement`), and uses the provider facts and small pure predicates below.
"""

from __future__ import annotations

from harness.checks._checklib import (
    DASHSCOPE_CHAT_PATHS,
    DASHSCOPE_IMAGE_PATHS,
    DASHSCOPE_MULTIMODAL,
    DASHSCOPE_REGIONS,
    DASHSCOPE_SYNTHESIS,
    DASHSCOPE_TASK_MODELS,
    DASHSCOPE_TASK_SUBMIT_PATHS,
    OPENAI_IMAGE_ITEM_FIELDS,
    PNG_SIGNATURE,
    SCRUBBED_SECRET,
    SPEC_DASHSCOPE_COMPAT,
    SPEC_DASHSCOPE_ERRORS,
    SPEC_DASHSCOPE_TASKS,
    SPEC_JOBS,
    SPEC_OPENAI_CHAT,
    SPEC_OPENAI_EDITS,
    SPEC_OPENAI_ERRORS,
    SPEC_OPENAI_IMAGES,
    SPEC_OWASP_API1,
    SPEC_OWASP_AUTH,
    SPEC_QWEN_IMAGE,
    SPEC_QWEN_IMAGE_ASYNC,
    SPEC_QWEN_IMAGE_EDIT,
    SPEC_QWEN_MT,
    SPEC_REPLICATE,
    SPEC_RFC9110_RETRY_AFTER,
    alias_step,
    carries_mark,
    dashscope_content,
    dashscope_parameters,
    decode_b64,
    describe,
    exactly_equal,
    expect_only_on,
    failure_text,
    image_paths_of,
    is_dashscope_sync_image,
    is_dashscope_task_image,
    is_error_envelope,
    json_object,
    paths,
    placeholder_credential,
    reads_as_server_fault,
    schema_errors,
    sha256_hex,
    short,
    submits,
    unmarked_during,
)
from harness.checks._fates import ACCEPTED as PARAM_ACCEPTED
from harness.checks._fates import ClientView
from harness.checks._fates import classify as classify_fate
from harness.checks._judge import Judgement
from harness.checks._nonanswer import REQUIREMENT as NON_ANSWER
from harness.checks._params import ENDPOINTS as PARAM_ENDPOINTS
from harness.checks._params import Parameter, wire
from harness.checks._params import plan as param_plan
from harness.checks._params import routes_of as param_routes
from harness.checks._registry import MAY, MUST, SHOULD, check, scenario
from harness.config._profile import Fallback, FallbackTarget, GatewayProfile, ModelRoute
from harness.errors import CheckFailed, CheckSkipped, UpstreamUnavailable
from harness.gateway.client import JobResult, dig
from harness.records._capture import CapturedRequest
from harness.records._recording import Answer, Recording, Step
from harness.scenarios._driver import Driver
from harness.scenarios._fuzzing import Campaign, FuzzCall, campaign

__all__ = [
    "DASHSCOPE_CHAT_PATHS",
    "DASHSCOPE_IMAGE_PATHS",
    "DASHSCOPE_MULTIMODAL",
    "DASHSCOPE_REGIONS",
    "DASHSCOPE_SYNTHESIS",
    "DASHSCOPE_TASK_MODELS",
    "DASHSCOPE_TASK_SUBMIT_PATHS",
    "MAY",
    "MUST",
    "NON_ANSWER",
    "OPENAI_IMAGE_ITEM_FIELDS",
    "PARAM_ACCEPTED",
    "PARAM_ENDPOINTS",
    "PNG_SIGNATURE",
    "SCRUBBED_SECRET",
    "SHOULD",
    "SPEC_DASHSCOPE_COMPAT",
    "SPEC_DASHSCOPE_ERRORS",
    "SPEC_DASHSCOPE_TASKS",
    "SPEC_JOBS",
    "SPEC_OPENAI_CHAT",
    "SPEC_OPENAI_EDITS",
    "SPEC_OPENAI_ERRORS",
    "SPEC_OPENAI_IMAGES",
    "SPEC_OWASP_API1",
    "SPEC_OWASP_AUTH",
    "SPEC_QWEN_IMAGE",
    "SPEC_QWEN_IMAGE_ASYNC",
    "SPEC_QWEN_IMAGE_EDIT",
    "SPEC_QWEN_MT",
    "SPEC_REPLICATE",
    "SPEC_RFC9110_RETRY_AFTER",
    "Answer",
    "Campaign",
    "CapturedRequest",
    "CheckFailed",
    "CheckSkipped",
    "ClientView",
    "Driver",
    "Fallback",
    "FallbackTarget",
    "FuzzCall",
    "GatewayProfile",
    "JobResult",
    "Judgement",
    "ModelRoute",
    "Parameter",
    "Recording",
    "Step",
    "UpstreamUnavailable",
    "alias_step",
    "campaign",
    "carries_mark",
    "check",
    "classify_fate",
    "dashscope_content",
    "dashscope_parameters",
    "decode_b64",
    "describe",
    "dig",
    "exactly_equal",
    "expect_only_on",
    "failure_text",
    "image_paths_of",
    "is_dashscope_sync_image",
    "is_dashscope_task_image",
    "is_error_envelope",
    "json_object",
    "param_plan",
    "param_routes",
    "paths",
    "placeholder_credential",
    "reads_as_server_fault",
    "scenario",
    "schema_errors",
    "sha256_hex",
    "short",
    "submits",
    "unmarked_during",
    "wire",
]
