"""Result bytes that say which job they belong to: how `gwconf load` tells a right result from a wrong one.

Every mock serves the same PNG to every task, so a gateway that hands job A's result to job B would
go unseen. Under load the mocks tag results: each file URL they answer with carries the job's marker
token (`/files/fox.png?job=TOKEN`), and the file served for such a URL is the PNG with one `tEXt`
chunk naming the token (still a valid PNG). Off by default: checks compare bytes to the provider's.
"""

from __future__ import annotations

import re
import struct
import zlib

JOB_QUERY = "job"
TAG_KEYWORD = b"gwconf-job"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tag_file_urls(text: str, base_url: str, token: str) -> str:
    """Every `{base_url}/files/NAME` in an answer, with the job's token as its query."""
    pattern = re.escape(base_url) + r"/files/[^\s\"'?#]+"
    return re.sub(pattern, lambda m: f"{m.group(0)}?{JOB_QUERY}={token}", text)


def tag_png(data: bytes, token: str) -> bytes:
    """The PNG with a `tEXt` chunk `gwconf-job` = token before IEND (other bytes: unchanged)."""
    if not data.startswith(PNG_SIGNATURE) or not data.endswith(b"IEND\xaeB`\x82"):
        return data
    payload = TAG_KEYWORD + b"\x00" + token.encode("ascii", "replace")
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + payload) & 0xFFFFFFFF)
    iend = len(data) - 12
    return data[:iend] + chunk + data[iend:]


def png_tag(data: bytes) -> str | None:
    """The job token a tagged PNG carries, or None."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind = data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        if kind == b"tEXt" and body.startswith(TAG_KEYWORD + b"\x00"):
            return body[len(TAG_KEYWORD) + 1:].decode("ascii", "replace")
        at += 12 + length
    return None
