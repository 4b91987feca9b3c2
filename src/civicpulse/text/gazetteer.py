"""Which of a city's places a text names: districts, streets, communities and grids by name.

Plain Python, no Django. The caller passes ``(name, area code, depth)`` entries, with the short
forms it wants found too (both 松河区 and 松河); depth 1 is a district, 2 a street, 3 a
community, 4 a grid.

All names go into one regex shaped like a trie (names sharing a first character share one
branch), so the regex engine, in C, skips every position whose character starts no name and
follows one branch where one does. Matching is leftmost, and longest at that position (松河区
before 松河); matches never overlap. A name that starts or ends with a Latin letter or a digit
matches only as a whole word (Heyang not in Heyangxyz, 1号楼 not in 21号楼).

One name may belong to several places (every district has a 第1网格; two districts may each
have a 幸福社区). Such a name counts only when another place named in the same text settles it:
a code is taken to start with the code of the place above it (GB/T 2260 style: 239901 →
239901001 → 239901001002), so 松岭区幸福社区 picks the 幸福社区 under 松岭区. Unsettled, the
name stands for the nearest known place holding all its places (two 丽园社区 in one street
name that street), or is left out rather than guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from civicpulse.text.tokenize import normalize, normalize_quick

DEPTHS = {1: "district", 2: "street", 3: "community", 4: "grid"}


class Gazetteer:
    """A city's place names, compiled for fast lookup in short texts."""

    def __init__(self, entries: Iterable[tuple[str, str, int]]):
        self.codes_of: dict[str, list[str]] = {}  # normalised name -> its places' codes
        self.depth_of: dict[str, int] = {}
        for number, entry in enumerate(entries, 1):
            name, code, depth = _checked(number, entry)
            if self.depth_of.setdefault(code, depth) != depth:
                raise ValueError(
                    f"entry {number}: area {code!r} given depth {depth}, "
                    f"but depth {self.depth_of[code]} before"
                )
            codes = self.codes_of.setdefault(name, [])
            if code not in codes:
                codes.append(code)
        if not self.codes_of:
            raise ValueError("a gazetteer needs at least one (name, code, depth) entry")
        # the nearest place that holds every place of an ambiguous name, if one is known
        self._shared: dict[str, str | None] = {
            name: _common_ancestor(codes, self.depth_of)
            for name, codes in self.codes_of.items()
            if len(codes) > 1
        }
        self._pattern = re.compile(_trie_regex(list(self.codes_of)))

    def __len__(self) -> int:
        return len(self.codes_of)

    def find(self, text: str) -> list[str]:
        """Codes of the places ``text`` names, in order of first mention, each once."""
        if not isinstance(text, str):
            raise TypeError(f"text is {type(text).__name__}, not str")
        names = self._pattern.findall(normalize_quick(text))
        if not names:
            return []
        codes_of = self.codes_of
        sure = [codes_of[n][0] for n in names if len(codes_of[n]) == 1]
        found: list[str] = []
        for name in names:
            codes = codes_of[name]
            if len(codes) > 1:
                under = [c for c in codes if any(c != s and c.startswith(s) for s in sure)]
                if len(under) == 1:
                    codes = under
                elif self._shared[name] is not None:
                    codes = [self._shared[name]]  # all under one place: say that place
                else:
                    continue  # not settled by the text: better no place than a wrong one
            if codes[0] not in found:
                found.append(codes[0])
        return found

    def best(self, text: str) -> str | None:
        """The most specific place ``text`` names (the deepest; the first of equals)."""
        found = self.find(text)
        if not found:
            return None
        depth_of = self.depth_of
        return max(found, key=lambda code: depth_of[code])  # max keeps the first of equals


def _common_ancestor(codes: list[str], depth_of: dict[str, int]) -> str | None:
    """The deepest known code that all of ``codes`` start with (and is none of them)."""
    shared = os.path.commonprefix(codes)
    for end in range(len(shared), 0, -1):
        if shared[:end] in depth_of and shared[:end] not in codes:
            return shared[:end]
    return None


def _checked(number: int, entry) -> tuple[str, str, int]:
    try:
        name, code, depth = entry
    except (TypeError, ValueError):
        raise ValueError(f"entry {number}: expected (name, code, depth), got {entry!r}") from None
    if not isinstance(name, str) or not normalize(name).strip():
        raise ValueError(f"entry {number}: the name must be a non-empty string, got {name!r}")
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"entry {number}: the code must be a non-empty string, got {code!r}")
    if isinstance(depth, bool) or depth not in DEPTHS:
        raise ValueError(
            f"entry {number} ({name}): depth must be 1 (district), 2 (street), 3 (community) "
            f"or 4 (grid), got {depth!r}"
        )
    return normalize(name).strip(), code.strip(), depth


_ALNUM = re.compile(r"[0-9a-z]")  # Latin names and numbers must not match inside a word
_NOT_AFTER = "(?<![0-9a-z].)"  # after a name's first character: none of ours just before it
_NOT_BEFORE = "(?![0-9a-z])"


def _trie_regex(names: list[str]) -> str:
    """A regex matching any of ``names``, longest first, as nested groups of shared prefixes:
    each alternative starts with its own literal character, so the engine can skip ahead.
    A name that starts or ends with a Latin letter or digit matches only as a whole word."""
    trie: dict = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = True  # a name ends here
    parts = [
        re.escape(ch) + (_NOT_AFTER if _ALNUM.match(ch) else "") + _branch(child, ch)
        for ch, child in sorted(trie.items())
    ]
    return "|".join(parts)


def _branch(node: dict, last: str) -> str:
    """The rest of the names below ``node``; ``last`` is the character just matched."""
    parts = [re.escape(ch) + _branch(child, ch) for ch, child in sorted(node.items()) if ch]
    stop = _NOT_BEFORE if _ALNUM.match(last) else ""
    if "" not in node:
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
    if not parts:
        return stop
    # the name may stop here, but a longer one is tried first
    return "(?:" + "|".join(parts) + "|" + stop + ")"
