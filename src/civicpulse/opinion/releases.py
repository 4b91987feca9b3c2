"""Official releases: what the city says in public, and who let it be said.

A release goes draft → in review → approved → published. The reviewer can send it back to its
author with a note (status "sent back"); the author edits it and submits it again. A published
release is never edited: :func:`correct` starts version n+1 of the same series as a draft, which
goes through the same steps, and when it is published the version before it becomes superseded —
still shown to the public as an earlier version, next to the note saying what was corrected.

Who may do what (checked here, so that a page, the API and the shell obey the same rules; a
superuser account gets no exception: statements speak for the city, and the role is the
authority):

==========================  =================================================================
step                        who
==========================  =================================================================
draft, edit, submit         draft: a PR officer or a city leader; edit and submit: its author
correct                     a PR officer or a city leader, on the current published version
review (approve/send back)  a PR officer, analyst or city leader who is not the author
approve                     a third person (neither author nor reviewer) with the authority
                            the warning needs (below)
publish                     the approver, or any PR officer, once approved
==========================  =================================================================

Authority to approve, by the most severe level the warning the release is about has reached
(a statement about an event that was once red speaks about a red event):

=====================================  ==========================================================
warning                                approver
=====================================  ==========================================================
level I (red) or II (orange)           a city leader
level III (yellow), IV (blue) or none  a city leader, or a PR officer whose scope is the whole
                                       city (no areas assigned)
=====================================  ==========================================================

Every step stores its actor and time on the release and appends to the audit chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicpulse.core import audit, scoping
from civicpulse.core.models import Role
from civicpulse.opinion.models import Release, Warning

AUTHOR_ROLES = {Role.PR_OFFICER, Role.CITY_LEADER}
REVIEWER_ROLES = {Role.PR_OFFICER, Role.ANALYST, Role.CITY_LEADER}
PUBLISHER_ROLES = {Role.PR_OFFICER}
# levels I and II (numbers 1 and 2) need the city's leadership to sign off
LEADER_ONLY_LEVELS = {1, 2}
TITLE_MAX = 200
BODY_MAX = 20_000
NOTE_MAX = 300
# who the public sees as the speaker: an office, never a person
PUBLIC_SPEAKER = gettext_lazy("City Information Office")

Status = Release.Status
OPEN_STATUSES = {Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.REJECTED}


class ReleaseError(ValueError):
    """A step that the actor may not take or that the release's state does not allow.
    ``field`` names the input at fault, if one is."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- who is who


def role_of(user) -> str | None:
    profile = scoping.profile_of(user)
    return profile.role if profile else None


def is_city_wide(user) -> bool:
    profile = scoping.profile_of(user)
    return profile is not None and not profile.areas.exists()


def warning_level(release: Release) -> int | None:
    """The level that decides who approves: the most severe the warning has reached."""
    warning = release.warning
    if warning is None:
        return None
    return min(warning.level, warning.peak_level or warning.level)


def may_approve_level(user, level: int | None) -> bool:
    role = role_of(user)
    if role == Role.CITY_LEADER:
        return True
    if level in LEADER_ONLY_LEVELS:
        return False
    return role == Role.PR_OFFICER and is_city_wide(user)


# --------------------------------------------------------------------------- checks


def _refuse(message: str) -> None:
    raise ReleaseError(message)


def check_draft(user) -> None:
    if role_of(user) not in AUTHOR_ROLES:
        _refuse(_("Only a PR officer or a city leader may draft a release."))


def check_edit(release: Release, user) -> None:
    if release.status not in (Status.DRAFT, Status.REJECTED):
        _refuse(
            _("Only a draft or a release sent back can be edited; this one is %(s)s.")
            % {"s": release.get_status_display()}
        )
    if release.author_id != user.pk:
        _refuse(_("Only the author may edit this draft."))


def check_submit(release: Release, user) -> None:
    if release.status not in (Status.DRAFT, Status.REJECTED):
        _refuse(
            _("Only a draft or a release sent back can be submitted; this one is %(s)s.")
            % {"s": release.get_status_display()}
        )
    if release.author_id != user.pk:
        _refuse(_("Only the author may submit this release for review."))


def check_review(release: Release, user) -> None:
    if release.status != Status.IN_REVIEW or release.reviewed_at is not None:
        _refuse(_("This release is not waiting for review."))
    if role_of(user) not in REVIEWER_ROLES:
        _refuse(_("Only a PR officer, an analyst or a city leader may review a release."))
    if release.author_id == user.pk:
        _refuse(_("The author may not review their own release."))


def check_approve(release: Release, user) -> None:
    if release.status != Status.IN_REVIEW or release.reviewed_at is None:
        _refuse(_("Only a reviewed release can be approved."))
    if user.pk in (release.author_id, release.reviewer_id):
        _refuse(_("The approver must be neither the author nor the reviewer."))
    level = warning_level(release)
    if not may_approve_level(user, level):
        if level in LEADER_ONLY_LEVELS:
            _refuse(_("A release about a level I or II warning needs a city leader's approval."))
        _refuse(_("Approval needs a city leader or a PR officer responsible for the whole city."))


def check_publish(release: Release, user) -> None:
    if release.status != Status.APPROVED:
        _refuse(_("Only an approved release can be published."))
    if user.pk != release.approver_id and role_of(user) not in PUBLISHER_ROLES:
        _refuse(_("Only the approver or a PR officer may publish."))


def check_correct(release: Release, user) -> None:
    if release.status != Status.PUBLISHED:
        _refuse(_("Only the current published version can be corrected."))
    if role_of(user) not in AUTHOR_ROLES:
        _refuse(_("Only a PR officer or a city leader may correct a release."))
    pending = Release.objects.filter(series=release.series, status__in=OPEN_STATUSES).first()
    if pending is not None:
        _refuse(
            _("A correction of this release is already under way (version %(v)d).")
            % {"v": pending.version}
        )


CHECKS: dict[str, Callable] = {
    "edit": check_edit,
    "submit": check_submit,
    "review": check_review,
    "approve": check_approve,
    "publish": check_publish,
    "correct": check_correct,
}


def allowed_actions(release: Release, user) -> list[str]:
    """The steps this user may take on this release now, in workflow order (for the page's
    buttons; each step checks again when it is taken)."""
    allowed = []
    for name, check in CHECKS.items():
        try:
            check(release, user)
        except ReleaseError:
            continue
        allowed.append(name)
    return allowed


# --------------------------------------------------------------------------- input


def _text(value: str, field: str, label: str, limit: int, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ReleaseError(_("%(field)s is required.") % {"field": label}, field=field)
    if len(value) > limit:
        raise ReleaseError(
            _("%(field)s is too long: %(n)d characters, at most %(max)d.")
            % {"field": label, "n": len(value), "max": limit},
            field=field,
        )
    return value


def _title(value: str) -> str:
    title = _text(value, "title", _("The title"), TITLE_MAX)
    if "\n" in title or "\r" in title:
        raise ReleaseError(_("The title must be one line."), field="title")
    return title


def _body(value: str) -> str:
    return _text(value, "body", _("The statement"), BODY_MAX).replace("\r\n", "\n")


def _locked(release: Release) -> Release:
    """The release's row as it is now, locked until the step's transaction ends; the check is
    made on it, so two people clicking at once cannot both pass."""
    # of=self: PostgreSQL cannot lock the nullable side of the join to the warning
    locked = Release.objects.select_for_update(of=("self",)).select_related("warning")
    return locked.get(pk=release.pk)


def _sync(release: Release) -> Release:
    """Bring the caller's instance up to date with what the step saved."""
    release.refresh_from_db()
    return release


# --------------------------------------------------------------------------- steps


def draft(user, title: str, body: str, warning: Warning | None = None) -> Release:
    """Start a new release (version 1 of a new series)."""
    check_draft(user)
    release = Release.objects.create(
        series=uuid.uuid4(),
        version=1,
        warning=warning,
        title=_title(title),
        body=_body(body),
        author=user,
    )
    audit.record(
        user,
        "release.drafted",
        release,
        detail={"series": release.series, "version": 1, "warning": warning and warning.pk},
    )
    return release


KEEP = object()  # ``edit``'s default: leave the warning as it is


def edit(
    release: Release, user, title: str, body: str, warning: Warning | None | object = KEEP
) -> Release:
    """Change a draft or a release that was sent back. A correction keeps its series' warning;
    pass ``warning=None`` to detach a first version from its warning."""
    title, body = _title(title), _body(body)
    with transaction.atomic():
        fresh = _locked(release)
        check_edit(fresh, user)
        fresh.title, fresh.body = title, body
        if fresh.version == 1 and warning is not KEEP:
            fresh.warning = warning
        fresh.save(update_fields=["title", "body", "warning"])
        audit.record(user, "release.edited", fresh, detail={"version": fresh.version})
    return _sync(release)


def submit(release: Release, user) -> Release:
    """Hand the release to review; a release sent back starts its review afresh."""
    with transaction.atomic():
        fresh = _locked(release)
        check_submit(fresh, user)
        fresh.status = Status.IN_REVIEW
        fresh.submitted_at = timezone.now()
        fresh.reviewer, fresh.reviewed_at = None, None
        fresh.save(update_fields=["status", "submitted_at", "reviewer", "reviewed_at"])
        audit.record(user, "release.submitted", fresh, detail={"version": fresh.version})
    return _sync(release)


def review(release: Release, user, approve: bool, note: str = "") -> Release:
    """The second pair of eyes: pass the release on for approval, or send it back to its
    author with a note saying why (a note is then required)."""
    note = _text(note, "note", _("The note"), 2000, required=not approve)
    with transaction.atomic():
        fresh = _locked(release)
        check_review(fresh, user)
        fresh.reviewer, fresh.reviewed_at, fresh.review_note = user, timezone.now(), note
        if approve:
            fresh.save(update_fields=["reviewer", "reviewed_at", "review_note"])
            audit.record(user, "release.reviewed", fresh, detail={"note": note[:200]})
        else:
            fresh.status = Status.REJECTED
            fresh.save(update_fields=["status", "reviewer", "reviewed_at", "review_note"])
            audit.record(user, "release.sent_back", fresh, detail={"note": note[:200]})
    return _sync(release)


def approve(release: Release, user) -> Release:
    """The third person, with the authority the warning's level needs, signs it off."""
    with transaction.atomic():
        fresh = _locked(release)
        check_approve(fresh, user)
        fresh.status = Status.APPROVED
        fresh.approver, fresh.approved_at = user, timezone.now()
        fresh.save(update_fields=["status", "approver", "approved_at"])
        audit.record(
            user,
            "release.approved",
            fresh,
            detail={"level": warning_level(fresh), "role": role_of(user)},
        )
    return _sync(release)


def publish(release: Release, user) -> Release:
    """Make an approved release public; a correction supersedes the version before it."""
    with transaction.atomic():
        fresh = _locked(release)
        check_publish(fresh, user)
        now = timezone.now()
        earlier = list(
            Release.objects.select_for_update().filter(
                series=fresh.series, status=Status.PUBLISHED, version__lt=fresh.version
            )
        )
        for old in earlier:
            old.status = Status.SUPERSEDED
            old.save(update_fields=["status"])
            audit.record(user, "release.superseded", old, detail={"by_version": fresh.version})
        fresh.status, fresh.publisher, fresh.published_at = Status.PUBLISHED, user, now
        fresh.save(update_fields=["status", "publisher", "published_at"])
        audit.record(
            user,
            "release.published",
            fresh,
            detail={"series": fresh.series, "version": fresh.version},
        )
    return _sync(release)


def correct(release: Release, user, title: str, body: str, note: str) -> Release:
    """Start version n+1 of a published release as a draft; the published one stays until the
    correction itself is published."""
    title, body = _title(title), _body(body)
    note = _text(note, "note", _("What was corrected"), NOTE_MAX)
    with transaction.atomic():
        fresh = _locked(release)
        check_correct(fresh, user)
        version = Release.objects.filter(series=fresh.series).aggregate(v=Max("version"))["v"]
        try:
            with transaction.atomic():
                correction = Release.objects.create(
                    series=fresh.series,
                    version=version + 1,
                    warning=fresh.warning,
                    title=title,
                    body=body,
                    correction_note=note,
                    author=user,
                )
        except IntegrityError:
            raise ReleaseError(_("Someone else started a correction a moment ago.")) from None
        audit.record(
            user,
            "release.correction_drafted",
            correction,
            detail={
                "series": fresh.series,
                "version": correction.version,
                "of": fresh.pk,
                "note": note,
            },
        )
    return correction


# --------------------------------------------------------------------------- reading


def public_releases():
    """What the public may read: published versions only, newest first."""
    return Release.objects.filter(status=Status.PUBLISHED).order_by("-published_at", "-pk")


def public_versions(series) -> list[Release]:
    """A series as the public sees it: versions that were published, newest first."""
    return list(
        Release.objects.filter(
            series=series, status__in=(Status.PUBLISHED, Status.SUPERSEDED)
        ).order_by("-version")
    )
