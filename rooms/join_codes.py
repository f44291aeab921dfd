"""Reading a meeting code the way people type or paste it ("Enter a code or link").

Meet accepts `abc-defg-hij`, `abcdefghij`, any case, stray spaces, and a whole link
(`https://meet.example.org/abc-defg-hij`, with or without the scheme, a trailing slash, a query,
or the meeting page's `/meetings/abc-defg-hij/`): so does this. What comes out is the code in
its canonical form, or None.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from rooms.models import JOIN_CODE_REGEX

MAX_INPUT_LENGTH = 500
_CODE = re.compile(JOIN_CODE_REGEX)
_LETTERS_ONLY = re.compile(r"[a-z]{10}")


def parse_join_code(text: str) -> str | None:
    """The canonical code (abc-defg-hij) in what someone typed or pasted, or None."""
    text = text.strip()
    if not text or len(text) > MAX_INPUT_LENGTH:
        return None
    if "/" in text:
        # A link: the code is its path's last segment (the host is not ours to judge: a
        # link copied from another name of this site works too).
        path = urlsplit(text if "://" in text else f"//{text}").path
        segments = [segment for segment in path.split("/") if segment]
        if not segments:
            return None
        text = segments[-1]
    letters = re.sub(r"[\s\-]", "", text).lower()
    if not _LETTERS_ONLY.fullmatch(letters):
        return None
    code = f"{letters[:3]}-{letters[3:7]}-{letters[7:]}"
    return code if _CODE.fullmatch(code) else None
