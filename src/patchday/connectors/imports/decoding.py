"""Bytes of an uploaded file to text or JSON, refusing what is too large, not UTF-8 or not JSON."""

from __future__ import annotations

import json
import re
from typing import Final

from patchday.core.errors import InvalidImport

UTF8_BOM: Final = b"\xef\xbb\xbf"
# Control characters (line breaks and tabs included): no package manager or SBOM tool puts them in a name.
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def check_size(data: bytes, limit: int, source: str) -> None:
    """Raise InvalidImport when `data` is over `limit` bytes (the HTTP layer answers 413 before this)."""
    if len(data) > limit:
        raise InvalidImport(f"the file is {len(data)} bytes; at most {limit} are accepted", source=source)


def decode_utf8(data: bytes, source: str) -> str:
    """`data` as text (a leading UTF-8 byte order mark dropped); InvalidImport names the first bad byte."""
    body = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(data) - len(body))
        line = data.count(b"\n", 0, offset) + 1
        raise InvalidImport(
            f"byte {offset} (0x{data[offset]:02x}) is not valid UTF-8; save the file as UTF-8",
            source=source,
            line=line,
        ) from None


def load_json(data: bytes, source: str) -> object:
    """The decoded JSON value of `data`; InvalidImport names the line and column of a syntax error."""
    text = decode_utf8(data, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidImport(
            f"not valid JSON: {exc.msg} at column {exc.colno}", source=source, line=exc.lineno
        ) from None
    except RecursionError:
        raise InvalidImport("JSON nested too deeply", source=source) from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.int_info.default_max_str_digits)
        raise InvalidImport(f"not valid JSON: {exc}", source=source) from None
