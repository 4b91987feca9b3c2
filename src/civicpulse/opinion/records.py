"""The shape of a post on its way in, before it is scored and stored.

Every channel (file, feed, push) turns what it reads into :class:`RawPost` or into a
:class:`Refusal` that names the line, the field and the reason; nothing else crosses from the
readers into the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_TEXT = 10_000  # characters; longer posts are refused, not cut


@dataclass(slots=True)
class RawPost:
    source: str  # the Source's name
    external_id: str  # the post's id at its source (unique per source)
    text: str
    created_at: datetime  # aware
    author: str = ""  # hashed before it is stored
    url: str = ""
    reach: int = 0  # followers or views
    reposts: int = 0
    lon: float | None = None
    lat: float | None = None
    place: str = ""  # a place name the source gave, if any
    line: int = 0  # where it was read (row, entry or item number), for refusals

    @property
    def key(self) -> str:
        return f"{self.source}:{self.external_id}"


@dataclass(slots=True)
class Refusal:
    line: int
    reason: str
    field: str = ""
    raw: str = ""
