"""A gateway that ignores its configured DashScope base for image generation.

Every Qwen-Image generation goes to DashScope's Singapore host, `dashscope-intl.aliyuncs.com`
(the default host LiteLLM's DashScope image integration falls back to), whatever base and region
its config names; edits, chat, OpenAI and Replicate use their configured bases. Everything else is
the reference gateway. Run: `python -m tests.gateways.stray_region --config FILE --port N`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import uvicorn

from harness.reference.app import build_app
from harness.reference.gateway import DASHSCOPE_MULTIMODAL, ReferenceGateway, Route

DEFAULT_IMAGE_BASE = "https://dashscope-intl.aliyuncs.com"


class StrayRegionGateway(ReferenceGateway):
    async def dashscope_multimodal(self, route: Route, content: list[dict[str, str]],
                                   params: dict[str, Any]) -> list[str]:
        if route.capability != "image.generate":
            return await super().dashscope_multimodal(route, content, params)
        body = {"model": route.upstream_model,
                "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}
        # The bug: the configured base is ignored, the region's key is still used.
        response = await self.http.post(DEFAULT_IMAGE_BASE + DASHSCOPE_MULTIMODAL, json=body,
                                        headers=self.upstream_headers("dashscope"))
        answer = response.json()
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
