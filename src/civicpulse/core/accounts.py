"""Creating staff accounts with their role, department and areas."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from civicpulse.core import audit
from civicpulse.core.models import Area, Department, Role, StaffProfile


@transaction.atomic
def create_staff(
    username: str,
    password: str,
    role: Role | str,
    *,
    department: Department | None = None,
    areas: list[Area] | None = None,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
):
    """Create or update one member of staff; re-running gives the same account."""
    User = get_user_model()
    user, _created = User.objects.get_or_create(username=username)
    user.first_name = full_name
    user.is_staff = is_staff or is_superuser
    user.is_superuser = is_superuser
    user.set_password(password)
    user.save()
    profile, _created = StaffProfile.objects.update_or_create(
        user=user, defaults={"role": Role(role), "department": department}
    )
    profile.areas.set(areas or [])
    audit.record("system", "staff.saved", user, detail={"role": str(role)})
    return user


def create_admin(username: str, password: str, *, email: str = ""):
    user = create_staff(username, password, Role.DATA_ADMIN, is_superuser=True)
    if email:
        user.email = email
        user.save(update_fields=["email"])
    return user
