"""Who may see what of the master index, written once for the pages, the API and "my space".

Staff:

* the master index's pages are for the roles that serve people one by one: the data bureau,
  leaders, department staff, hotline operators and grid workers. Analysts, PR officers and
  auditors work on aggregates, posts and the audit chain, not on a person's file;
* an entity is seen when its area lies within the user's area scope
  (``core.scoping``); an entity without an area is city-level, seen only by city-wide roles;
* the golden record is shown to everyone who sees the entity, masked. A source record's values
  are shown only to the data bureau and leaders, or to the staff of the department that holds
  it; other records are listed as "held by <department>" without values;
* unmasking ("reveal", with a reason) is for the data bureau and leaders; undoing a merge or a
  split is for the data bureau; the review queue is for the data bureau and department staff
  (pairs with a record of their own department, within their areas). A pair shows both
  records masked, whichever department holds them: a decision needs both sides.

Account holders (residents, enterprise representatives) see exactly the one entity their
account was verified against, never another, and never any staff page. A resident registers
online by proving their ID number, name and mobile; an enterprise's account is issued by the
data bureau after an in-person check (``issue_account``), never self-registered. One person
holds one account of a kind, counted over every entity merged into theirs.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicpulse.core import audit, scoping
from civicpulse.core.models import Role
from civicpulse.identity.checks import mask, name_key
from civicpulse.identity.models import Account, Entity, Kind, ReviewPair, SourceRecord

SUPERUSER = "superuser"
VIEW_ROLES = {
    Role.CITY_LEADER,
    Role.DATA_ADMIN,
    Role.DEPARTMENT_STAFF,
    Role.HOTLINE_OPERATOR,
    Role.GRID_WORKER,
}
# Roles that read every department's records and may unmask with a reason.
ALL_RECORDS_ROLES = {Role.CITY_LEADER, Role.DATA_ADMIN}
REVEAL_ROLES = {Role.CITY_LEADER, Role.DATA_ADMIN}
UNDO_ROLES = {Role.DATA_ADMIN}
REVIEW_ROLES = {Role.DATA_ADMIN, Role.DEPARTMENT_STAFF}

# How each attribute is masked (the kinds of ``checks.mask``); attributes not named here are
# not personal (gender, industry code, an enterprise's own name) and show as they are.
MASKS = {
    "resident": {
        "name": "name",
        "id_number": "resident_id",
        "phone": "mobile",
        "address": "address",
        "birth_date": "date",
    },
    "enterprise": {
        "uscc": "credit_code",
        "legal_representative": "name",
        "legal_rep": "name",
        "phone": "mobile",
        "address": "address",
    },
}
# What each canonical attribute is called on a page.
LABELS = {
    "name": gettext_lazy("name"),
    "id_number": gettext_lazy("resident ID number"),
    "gender": gettext_lazy("gender"),
    "birth_date": gettext_lazy("date of birth"),
    "phone": gettext_lazy("phone"),
    "address": gettext_lazy("address"),
    "uscc": gettext_lazy("unified social credit code"),
    "legal_representative": gettext_lazy("legal representative"),
    "industry_code": gettext_lazy("industry"),
}
# Attributes the city holds about a record that its owner still sees partly masked, so that a
# page left open on a shared screen does not give the whole number away.
ALWAYS_MASKED = {"id_number", "legal_rep_id_number"}


def role_of(user) -> str | None:
    """The user's staff role ("superuser" for one), or None for residents and visitors."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return SUPERUSER
    profile = scoping.profile_of(user)
    return profile.role if profile else None


def _has(user, roles: set) -> bool:
    role = role_of(user)
    return role == SUPERUSER or role in roles


def require_staff(user) -> str:
    """The reader's role, or PermissionDenied for anyone the master index is not for."""
    role = role_of(user)
    if role != SUPERUSER and role not in VIEW_ROLES:
        raise PermissionDenied(_("The master index is for staff who serve residents."))
    return role


def may_reveal(user) -> bool:
    return _has(user, REVEAL_ROLES)


def may_undo(user) -> bool:
    return _has(user, UNDO_ROLES)


def may_review(user) -> bool:
    return _has(user, REVIEW_ROLES)


def department_id(user) -> int | None:
    profile = scoping.profile_of(user)
    return profile.department_id if profile else None


# --- entities and records -------------------------------------------------------------------


def entities(user) -> QuerySet:
    """The entities within the user's area scope (city-level ones only for city-wide roles)."""
    return scoping.scope(Entity.objects.all(), user)


def can_see_entity(user, entity: Entity) -> bool:
    if entity.area_id is None:
        return scoping.area_paths(user) is None
    return scoping.can_see_area(user, entity.area)


def require_entity(user, entity: Entity) -> None:
    if not can_see_entity(user, entity):
        raise PermissionDenied(_("This resident or enterprise is outside your area."))


def sees_record_values(user, record: SourceRecord) -> bool:
    """May ``user`` read this source record's values (still masked unless revealed)?"""
    if _has(user, ALL_RECORDS_ROLES):
        return True
    own = department_id(user)
    return own is not None and record.source.department_id == own


def review_pairs(user) -> QuerySet:
    """Pending pairs the user may decide: all for the data bureau; for department staff, pairs
    with a record of their department whose entities lie in their area scope."""
    pairs = ReviewPair.objects.filter(status=ReviewPair.Status.PENDING).select_related(
        "record_a__source__department",
        "record_b__source__department",
        "record_a__entity",
        "record_b__entity",
    )
    if _has(user, {Role.DATA_ADMIN}):
        return pairs
    own = department_id(user)
    if not _has(user, REVIEW_ROLES) or own is None:
        return pairs.none()
    pairs = pairs.filter(
        Q(record_a__source__department_id=own) | Q(record_b__source__department_id=own)
    )
    paths = scoping.area_paths(user)
    if paths is None:
        return pairs
    inside_a, inside_b = Q(), Q()
    for path in paths:
        inside_a |= Q(record_a__entity__area__path__startswith=path)
        inside_b |= Q(record_b__entity__area__path__startswith=path)
    return pairs.filter(inside_a, inside_b)


# --- masking --------------------------------------------------------------------------------


def masked(kind: str, attribute: str, value) -> str:
    """One attribute as staff see it by default."""
    if value in (None, ""):
        return ""
    text = str(value)
    how = MASKS.get(kind, {}).get(attribute)
    if how is None:
        return text
    if how == "date":  # the year may show (age bands), never the day
        return text[:4] + "-**-**"
    return mask(how, text)


def shown(kind: str, attributes: dict, *, reveal: bool = False) -> list[dict]:
    """Attributes as rows for a page: name, value (masked unless ``reveal``), whether masked."""
    rows = []
    for name, value in attributes.items():
        if isinstance(value, dict | list):
            continue
        text = "" if value is None else str(value)
        hidden = not reveal and name in MASKS.get(kind, {})
        rows.append(
            {
                "name": name,
                "label": LABELS.get(name, name),
                "value": masked(kind, name, text) if hidden else text,
                "masked": hidden,
            }
        )
    return rows


def shown_to_owner(kind: str, attributes: dict) -> list[dict]:
    """Attributes as their owner sees them: their own data, except ID numbers partly masked."""
    rows = []
    for name, value in attributes.items():
        if isinstance(value, dict | list):
            continue
        text = "" if value is None else str(value)
        hidden = name in ALWAYS_MASKED
        rows.append(
            {
                "name": name,
                "label": LABELS.get(name, name),
                "value": mask("resident_id", text) if hidden else text,
                "masked": hidden,
            }
        )
    return rows


# --- account holders ------------------------------------------------------------------------


def account_of(user) -> Account | None:
    """The user's "my space" account; staff and visitors have none."""
    if not getattr(user, "is_authenticated", False) or role_of(user) is not None:
        return None
    return Account.objects.select_related("entity").filter(user=user).first()


def surviving(entity: Entity) -> Entity:
    """The active entity a (possibly merged) entity now lives in; its code stays a valid link."""
    seen = {entity.pk}
    while entity.status == Entity.Status.MERGED and entity.merged_into_id is not None:
        entity = Entity.objects.select_related("area").get(pk=entity.merged_into_id)
        if entity.pk in seen:  # a cycle would be a bug elsewhere: stop rather than spin
            break
        seen.add(entity.pk)
    return entity


def _digits(value) -> str:
    return re.sub(r"\D", "", str(value or ""))[-11:]


def _same_name(a, b) -> bool:
    return bool(a) and bool(b) and name_key(str(a)) == name_key(str(b))


def verify_resident(id_number: str, name: str, mobile: str) -> Entity | None:
    """The active resident whose golden ID number, name and phone are these, or None."""
    for entity in Entity.objects.filter(
        kind=Kind.RESIDENT, status=Entity.Status.ACTIVE, identifier=id_number
    ):
        golden = entity.attributes
        phone = _digits(golden.get("phone"))
        if _same_name(golden.get("name"), name) and phone and phone == _digits(mobile):
            return entity
    return None


class AccountError(Exception):
    """A "my space" account that may not be made; ``code`` says why, for callers and tests."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


# Which account each kind of entity takes: a resident their own, an enterprise its legal
# representative's.
RELATIONS = {Kind.RESIDENT: Account.Relation.SELF, Kind.ENTERPRISE: Account.Relation.REPRESENTATIVE}


def lineage(entity: Entity) -> list[int]:
    """The entity and every entity merged into it, however many merges back: one person's
    accounts may sit on any of them, and all count as that person's."""
    found, frontier = [entity.pk], [entity.pk]
    while frontier:
        frontier = [
            pk
            for pk in Entity.objects.filter(merged_into_id__in=frontier).values_list(
                "pk", flat=True
            )
            if pk not in found
        ]
        found += frontier
    return found


def claim(entity: Entity, relation: str) -> Entity:
    """Lock the entity (``select_for_update``, so two sign-ups for one person queue up) and
    make sure no account of ``relation`` exists on it or on anything merged into it. Call
    inside ``transaction.atomic``; the account is then created in the same transaction."""
    locked = Entity.objects.select_for_update().get(pk=entity.pk)
    if locked.status != Entity.Status.ACTIVE:
        raise AccountError(
            _("%(code)s was merged; give the entity it went into.") % {"code": locked.code},
            code="merged",
        )
    if Account.objects.filter(entity_id__in=lineage(locked), relation=relation).exists():
        raise AccountError(_("This entity already has such an account."), code="taken")
    return locked


def issue_account(entity: Entity, user, relation: str, *, actor) -> Account:
    """Give ``user`` a "my space" account on ``entity``, by the data bureau, after the person
    was checked in person at the service hall. The only way to an enterprise account: the
    market register names the legal representative but holds no ID number of theirs, so a
    name typed online proves nothing. ``actor`` is the data-bureau user who issues it."""
    if not _has(actor, {Role.DATA_ADMIN}):
        raise PermissionDenied(_("Only the data bureau issues my-space accounts."))
    if RELATIONS.get(entity.kind) != relation:
        raise AccountError(
            _("A %(kind)s takes an account of another relation.")
            % {"kind": entity.get_kind_display()},
            code="relation",
        )
    if role_of(user) is not None:
        raise AccountError(_("Staff accounts cannot hold a my-space account."), code="staff")
    if Account.objects.filter(user=user).exists():
        raise AccountError(_("This user already has a my-space account."), code="has account")
    with transaction.atomic():
        locked = claim(entity, relation)
        account = Account.objects.create(
            user=user, entity=locked, relation=relation, verified_at=timezone.now()
        )
        audit.record(
            actor,
            "identity.account.issue",
            locked,
            detail={"code": locked.code, "user": user.get_username(), "relation": relation},
        )
    return account
