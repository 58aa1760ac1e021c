"""A gateway that ignores its configured DashScope base for images.

Every Qwen-Image generation goes to DashScope's Singapore host, `dashscope-intl.aliyuncs.com`
(the default host LiteLLM's DashScope image integration falls back to), and every edit to the
Hong Kong host, `cn-hongkong.dashscope.aliyuncs.com` (a region gwconf does not mock), whatever
base and region its config names; chat, OpenAI and Replicate use their configured bases.
Everything else is the reference gateway.
Run: `python -m tests.gateways.stray_region --config FILE --port N`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from harness.reference.app import build_app
from harness.reference.errors import GatewayError
from harness.reference.gateway import DASHSCOPE_MULTIMODAL, ReferenceGateway, Route

DEFAULT_IMAGE_BASE = "https://dashscope-intl.aliyuncs.com"
DEFAULT_EDIT_BASE = "https://cn-hongkong.dashscope.aliyuncs.com"


class StrayRegionGateway(ReferenceGateway):
    async def dashscope_multimodal(self, route: Route, content: list[dict[str, str]],
                                   params: dict[str, Any]) -> list[str]:
        if route.capability not in ("image.generate", "image.edit"):
            return await super().dashscope_multimodal(route, content, params)
        base = DEFAULT_IMAGE_BASE if route.capability == "image.generate" else DEFAULT_EDIT_BASE
        body = {"model": route.upstream_model,
                "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}
        # The bug: the configured base is ignored, the region's key is still used.
        try:
            response = await self.http.post(base + DASHSCOPE_MULTIMODAL, json=body,
                                            headers=self.upstream_headers("dashscope"))
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GatewayError(502, "upstream_unreachable", f"dashscope: {type(exc).__name__}") from exc
        if response.status_code >= 400 or self.is_business_error(answer):
            raise self.upstream_error("dashscope", response, answer)
        choices = answer.get("output", {}).get("choices", [])
        return [part["image"] for choice in choices
                for part in choice.get("message", {}).get("content", []) if "image" in part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gateways.stray_region")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    uvicorn.run(build_app(config, StrayRegionGateway).app, host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
