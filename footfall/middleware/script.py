"""The tracker script served at ``/analytics/footfall.js``: ``footfall/static/footfall.js`` with the
server's settings baked in.

The source is written compact enough to stay under its budget (2 KiB gzipped, issue 7) without a
minifier, so the file in the package is the file served, but for the two values the server fills in:
in the source each is a JavaScript literal followed by a tag comment, ``false /*FOOTFALL_RESPECT_GPC*/``
and ``"/analytics/track" /*FOOTFALL_TRACK_PATH*/``, which baking replaces with the configured value.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from werkzeug.http import generate_etag, quote_etag

from footfall.errors import FootfallError
from footfall.settings import Settings

__all__ = ["SOURCE", "Script", "baked_script"]

SOURCE = Path(__file__).resolve().parents[1] / "static" / "footfall.js"
_TAGGED = re.compile(r'(?:true|false|"[^"\\]*") /\*(FOOTFALL_[A-Z_]+)\*/')


@dataclass(frozen=True)
class Script:
    """The script as served.

    :ivar content: the UTF-8 bytes of the script.
    :ivar etag: its strong entity tag, quoted (``"<sha1 hex>"``, RFC 9110 8.8.3).
    """

    content: bytes
    etag: str


def baked_script(settings: Settings) -> Script:
    """The tracker script for ``settings``: ``respect_gpc`` and ``track_path`` baked in.

    Built once per distinct pair of values and kept (the source is read from the package then).

    :param settings: footfall's settings.
    :return: the :class:`Script`.
    :raises FootfallError: the packaged source does not tag each baked value exactly once (a broken
        install or edit of ``footfall/static/footfall.js``).
    """
    return _bake(settings.respect_gpc, settings.track_path)


@functools.cache
def _bake(respect_gpc: bool, track_path: str) -> Script:
    values = {"FOOTFALL_RESPECT_GPC": json.dumps(respect_gpc), "FOOTFALL_TRACK_PATH": json.dumps(track_path)}
    source = SOURCE.read_text(encoding="utf-8")
    tags = [match.group(1) for match in _TAGGED.finditer(source)]
    if sorted(tags) != sorted(values):
        raise FootfallError(f"{SOURCE} must tag each of {sorted(values)} once, found {tags}")
    content = _TAGGED.sub(lambda match: values[match.group(1)], source).encode("utf-8")
    return Script(content, quote_etag(generate_etag(content)))
