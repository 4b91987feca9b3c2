"""Who may see which part of the city.

Every query of personal or departmental data goes through these functions, so that the rule
"staff see their own areas, leaders see the city" is written once.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from civicpulse.core.models import Area, Role, StaffProfile

# Roles that see the whole city unless given areas. Department staff are then limited by their
# department instead (each domain app applies that); a grid worker always needs an area.
CITY_WIDE_ROLES = {
    Role.CITY_LEADER,
    Role.DATA_ADMIN,
    Role.ANALYST,
    Role.AUDITOR,
    Role.PR_OFFICER,
    Role.HOTLINE_OPERATOR,
    Role.DEPARTMENT_STAFF,
}


def profile_of(user) -> StaffProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.staff_profile
    except StaffProfile.DoesNotExist:
        return None


def area_paths(user) -> list[str] | None:
    """The tree paths a user may see; ``None`` means the whole city, ``[]`` means nothing."""
    if getattr(user, "is_superuser", False):
        return None
    profile = profile_of(user)
    if profile is None:
        return []
    paths = list(profile.areas.values_list("path", flat=True))
    if not paths:
        if profile.role == Role.DEPARTMENT_STAFF and profile.department_id is None:
            return []  # neither a department nor areas: nothing to work on yet
        return None if profile.role in CITY_WIDE_ROLES else []
    return paths


def can_see_area(user, area: Area) -> bool:
    paths = area_paths(user)
    return paths is None or any(area.path.startswith(p) for p in paths)


def require_area(user, area: Area) -> None:
    if not can_see_area(user, area):
        raise PermissionDenied("this area is outside your scope")


def scope(queryset: QuerySet, user, area_field: str = "area") -> QuerySet:
    """Limit a queryset to the rows whose area lies within the user's scope."""
    paths = area_paths(user)
    if paths is None:
        return queryset
    if not paths:
        return queryset.none()
    condition = Q()
    for path in paths:
        condition |= Q(**{f"{area_field}__path__startswith": path})
    return queryset.filter(condition)


def home_area(user) -> Area | None:
    """Where a user's cockpit opens: their one area, or the city."""
    paths = area_paths(user)
    if paths:
        return Area.objects.filter(path__in=paths).order_by("path").first()
    return Area.objects.filter(level=Area.Level.CITY).first()
