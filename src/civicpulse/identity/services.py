"""What other apps use of identity: the identifier checks (GB 11643 resident ID numbers,
GB 32100 unified social credit codes, mainland mobile numbers), the heuristics that spot names
and addresses, and masking. The checks live in :mod:`civicpulse.identity.checks` (plain Python);
other apps import them from here, as the house rules ask of every domain app."""

from __future__ import annotations

from civicpulse.identity.checks import (
    CheckResult,
    check_credit_code,
    check_mobile,
    check_resident_id,
    looks_like_address,
    looks_like_person_name,
    mask,
    name_key,
    normalise,
    to_halfwidth,
)

__all__ = [
    "CheckResult",
    "check_credit_code",
    "check_mobile",
    "check_resident_id",
    "looks_like_address",
    "looks_like_person_name",
    "mask",
    "name_key",
    "normalise",
    "to_halfwidth",
]
