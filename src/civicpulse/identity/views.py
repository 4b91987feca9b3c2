"""The master index's pages.

Staff (mounted at /identity/):

    /identity/                          search by master ID, whole ID number / credit code, name
    /identity/entities/<code>/          the 360° view of one resident or enterprise (POST: reveal)
    /identity/events/<pk>/undo/         undo a merge or a split (POST, data bureau)
    /identity/review/                   pairs the linker was unsure of
    /identity/review/<pk>/              a person's decision on one pair (POST)

Residents and enterprise representatives (mounted at /my/): sign in, register, their own page
and one of their requests.

Who may see what is decided in :mod:`identity.access`; these views gather, mask and audit.
Every look at personal data, and every refused registration, is written to the audit chain.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicpulse.cases import services as cases
from civicpulse.core import audit, ratelimit
from civicpulse.identity import access, master
from civicpulse.identity.checks import check_credit_code, check_resident_id, normalise, to_halfwidth
from civicpulse.identity.forms import (
    DecisionForm,
    MySpaceLoginForm,
    RegisterForm,
    RevealForm,
    SearchForm,
)
from civicpulse.identity.models import Account, Entity, EntityEvent, Kind, SourceRecord
from civicpulse.identity.records import HOTLINE_REPORTERS

SEARCH_LIMIT = 50
# What a master ID looks like (a kind's letter, then digits): searched as a code, never a name.
_MASTER_CODE = re.compile(rf"[{''.join(master.PREFIX.values())}]\d{{{master.CODE_DIGITS}}}")
REVIEW_PAGE = 30
REGISTRATIONS_PER_HOUR = 10
SIGN_INS_PER_10_MINUTES = 20
UNDOABLE = {EntityEvent.Action.MERGED, EntityEvent.Action.SPLIT}


def _undoable(event: EntityEvent) -> bool:
    """Merges, splits and a person's rulings can be undone (``master.undo``), each once."""
    if event.undone_by_id is not None:
        return False
    ruling = event.action == EntityEvent.Action.LINKED and "pairs" in (event.detail or {})
    return event.action in UNDOABLE or ruling


# --- shared pieces --------------------------------------------------------------------------


def _explanation(explanation: dict | None) -> dict:
    """A match explanation as the page draws it: each field's weight with a bar scaled to the
    strongest one, agreeing fields (positive weight) apart from disagreeing ones."""
    explanation = explanation or {}
    fields = [f for f in explanation.get("fields") or [] if isinstance(f, dict)]
    strongest = max((abs(float(f.get("weight") or 0)) for f in fields), default=0) or 1
    rows = []
    for f in fields:
        weight = float(f.get("weight") or 0)
        field = str(f.get("field", ""))
        rows.append(
            {
                "field": field,
                "label": str(f.get("label") or master.FIELD_LABELS.get(field, field)),
                "level": str(f.get("level", "")),
                "weight": round(weight, 2),
                "bar": round(100 * abs(weight) / strongest),
                "agrees": weight > 0,
            }
        )
    prior, total = explanation.get("prior"), explanation.get("match_weight")
    return {
        "prior": None if prior is None else round(float(prior), 2),
        "total": None if total is None else round(float(total), 2),
        "linked_by": explanation.get("linked_by_label", ""),
        "fields": rows,
    }


def _department_name(record: SourceRecord) -> str:
    department = record.source.department
    return department.name if department else _("no department")


def _reporter_ids(records) -> list[int]:
    """The cases app's reporters behind the hotline-reporters records (their key is the pk)."""
    return [int(r.key) for r in records if r.source.name == HOTLINE_REPORTERS and r.key.isdigit()]


def _too_many() -> str:
    return _("Too many attempts from your connection: try again later.")


def _client(request: HttpRequest) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown")[:64]


# --- search ---------------------------------------------------------------------------------


def _identifier(text: str) -> str | None:
    """The query as a whole identifier (resident ID number or credit code), if it is one."""
    compact = to_halfwidth(text).replace(" ", "").upper()
    if len(compact) != 18 or not compact.isalnum():
        return None
    for check in (check_resident_id, check_credit_code):
        checked = check(compact)
        if checked:
            return checked.value
    return compact  # an invalid identifier is kept as given; look it up exactly all the same


def _search(user, query: str) -> tuple[str, list[Entity], str]:
    """(what the query was taken as, the entities found in scope, a message for the reader)."""
    scoped = access.entities(user).select_related("area").annotate(held=Count("records"))
    code = to_halfwidth(query).strip().upper()
    if scoped.filter(code=code).exists() or _MASTER_CODE.fullmatch(code):
        return "code", list(scoped.filter(code=code)), ""
    identifier = _identifier(query)
    if identifier is not None:
        return "identifier", list(scoped.filter(identifier=identifier)[:SEARCH_LIMIT]), ""
    digits = sum(ch.isdigit() for ch in query)
    if digits >= 4:
        return (
            "refused",
            [],
            _("Give a whole ID number or credit code: parts of numbers are not searched."),
        )
    name = normalise(query)
    if len(name) < 2:
        return "refused", [], _("Give a whole name (at least two characters).")
    found = scoped.filter(attributes__name__iexact=name).order_by("code")[:SEARCH_LIMIT]
    return "name", list(found), ""


def _row(entity: Entity) -> dict:
    golden = entity.attributes or {}
    identifier_kind = "uscc" if entity.kind == Kind.ENTERPRISE else "id_number"
    return {
        "entity": entity,
        "name": access.masked(entity.kind, "name", golden.get("name")),
        "identifier": access.masked(entity.kind, identifier_kind, entity.identifier),
        "held": getattr(entity, "held", None),
    }


@never_cache
@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    access.require_staff(request.user)
    form = SearchForm(request.GET or None)
    taken_as, results, note = "", None, ""
    if form.is_bound and form.is_valid():
        taken_as, found, note = _search(request.user, form.cleaned_data["q"])
        results = [_row(e) for e in found]
        audit.record(
            request.user,
            "identity.search",
            object_type="identity.entity",
            detail={"by": taken_as, "found": [e.code for e in found]},
        )
    return render(
        request,
        "identity/search.html",
        {"form": form, "results": results, "taken_as": taken_as, "note": note},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


# --- the 360° view --------------------------------------------------------------------------


def _records(user, entity: Entity, *, reveal: bool) -> tuple[list[dict], list[SourceRecord]]:
    """The entity's source records grouped by department, values only where the user may
    read them; and the records the user may read."""
    groups: OrderedDict[str, dict] = OrderedDict()
    readable = []
    records = entity.records.select_related("source__department", "entity").order_by(
        "source__department__code", "source__name", "-observed_at"
    )
    for record in records:
        visible = access.sees_record_values(user, record)
        department = _department_name(record)
        group = groups.setdefault(department, {"department": department, "records": []})
        item = {"record": record, "source": record.source, "visible": visible}
        if visible:
            readable.append(record)
            item["attributes"] = access.shown(record.kind, record.attributes, reveal=reveal)
            item["problems"] = [p for p in record.problems or [] if isinstance(p, dict)]
            item["explanation"] = _explanation(master.explain(record))
        group["records"].append(item)
    return list(groups.values()), readable


def _history(user, entity: Entity) -> list[dict]:
    undo_allowed = access.may_undo(user)
    return [
        {
            "event": event,
            "undoable": undo_allowed and _undoable(event),
        }
        for event in entity.events.order_by("at", "id")
    ]


def _golden(entity: Entity, *, reveal: bool) -> list[dict]:
    rows = access.shown(entity.kind, entity.attributes or {}, reveal=reveal)
    for row in rows:
        origin = (entity.provenance or {}).get(row["name"]) or {}
        row["source"] = origin.get("source", "")
        row["rule"] = origin.get("rule", "")
    return rows


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def entity_view(request: HttpRequest, code: str) -> HttpResponse:
    access.require_staff(request.user)
    entity = get_object_or_404(Entity.objects.select_related("area"), code=code)
    access.require_entity(request.user, entity)
    survivor = access.surviving(entity)
    if survivor.pk != entity.pk:
        # the survivor's code is told only to those who may open it
        if not access.can_see_entity(request.user, survivor):
            raise PermissionDenied
        messages.info(
            request,
            _("%(old)s was merged into %(new)s.") % {"old": entity.code, "new": survivor.code},
        )
        return redirect("identity:entity", code=survivor.code)

    reveal, reason, status = False, "", 200
    reveal_form = RevealForm()
    if request.method == "POST":
        if not access.may_reveal(request.user):
            raise PermissionDenied(_("Your role may not unmask personal data."))
        reveal_form = RevealForm(request.POST)
        if reveal_form.is_valid():
            reveal, reason = True, reveal_form.cleaned_data["reason"]
        else:
            status = 400

    groups, readable = _records(request.user, entity, reveal=reveal)
    services = [
        {"title": r.source.service_title, "department": _department_name(r), "since": r.observed_at}
        for r in readable
        if r.source.service_title
    ]
    reporter_ids = _reporter_ids(readable)
    requests = cases.cases_for_reporters(reporter_ids, viewer=request.user) if reporter_ids else []
    audit.record(
        request.user,
        "identity.reveal" if reveal else "identity.view",
        entity,
        detail={
            "code": entity.code,
            "revealed": reveal,
            "reason": reason,
            "records_shown": [r.pk for r in readable],
            "requests_shown": len(requests),
        },
    )
    response = render(
        request,
        "identity/entity.html",
        {
            "entity": entity,
            "golden": _golden(entity, reveal=reveal),
            "groups": groups,
            "services": services,
            "requests": requests,
            "history": _history(request.user, entity),
            "revealed": reveal,
            "may_reveal": access.may_reveal(request.user),
            "reveal_form": reveal_form,
            "absorbed": list(entity.absorbed.values_list("code", flat=True)),
        },
        status=status,
    )
    return response


@login_required
@require_POST
def undo_event(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    event = get_object_or_404(EntityEvent.objects.select_related("entity__area"), pk=pk)
    access.require_entity(request.user, event.entity)
    if not access.may_undo(request.user):
        raise PermissionDenied(_("Only the data bureau may undo a merge or a split."))
    if not _undoable(event):
        messages.error(request, _("This step cannot be undone (or already was)."))
        return redirect("identity:entity", code=event.entity.code)
    try:
        master.undo(event, user=request.user)  # audited there, with the undoing event
    except master.MasterError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Undone: both records keep their history."))
    event.entity.refresh_from_db()
    return redirect("identity:entity", code=access.surviving(event.entity).code)


# --- the review queue -----------------------------------------------------------------------


def _side(record: SourceRecord) -> dict:
    return {
        "record": record,
        "department": _department_name(record),
        "entity": record.entity.code if record.entity_id else "",
        "values": {
            a["name"]: a["value"] for a in access.shown(record.kind, record.attributes or {})
        },
    }


def _pair(pair) -> dict:
    a, b = _side(pair.record_a), _side(pair.record_b)
    names = list(OrderedDict.fromkeys([*a["values"], *b["values"]]))
    return {
        "pair": pair,
        "a": a,
        "b": b,
        "rows": [
            {
                "name": n,
                "label": access.LABELS.get(n, n),
                "a": a["values"].get(n, ""),
                "b": b["values"].get(n, ""),
            }
            for n in names
        ],
        "explanation": _explanation(pair.explanation),
        "form": DecisionForm(),
    }


@never_cache
@login_required
@require_GET
def review(request: HttpRequest) -> HttpResponse:
    access.require_staff(request.user)
    if not access.may_review(request.user):
        raise PermissionDenied(_("The review queue is for the data bureau and departments."))
    pending = access.review_pairs(request.user)
    total = pending.count()
    pairs = [_pair(p) for p in pending.order_by("-match_probability", "id")[:REVIEW_PAGE]]
    audit.record(
        request.user,
        "identity.review.view",
        object_type="identity.reviewpair",
        detail={"pairs": [p["pair"].pk for p in pairs], "pending": total},
    )
    return render(request, "identity/review.html", {"pairs": pairs, "total": total})


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    if not access.may_review(request.user):
        raise PermissionDenied(_("The review queue is for the data bureau and departments."))
    pair = access.review_pairs(request.user).filter(pk=pk).first()
    if pair is None:
        raise Http404(_("No such pair is waiting for you (it may have been decided already)."))
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose Same or Different."))
        return redirect("identity:review")
    decision, note = form.cleaned_data["decision"], form.cleaned_data["note"]
    try:
        master.decide(pair, decision, user=request.user, note=note)  # audited there
    except master.MasterError as exc:
        messages.error(request, str(exc))
        return redirect("identity:review")
    messages.success(request, _("Decided; later runs will keep to it."))
    return redirect("identity:review")


# --- my space -------------------------------------------------------------------------------


class MySpaceLogin(auth_views.LoginView):
    """Django's sign-in with its own page; attempts per client are limited, so passwords
    cannot be tried by the thousand."""

    template_name = "identity/my_login.html"
    authentication_form = MySpaceLoginForm
    next_page = reverse_lazy("myspace:home")

    def post(self, request, *args, **kwargs):
        if not ratelimit.hit(
            f"identity.login:{_client(request)}", limit=SIGN_INS_PER_10_MINUTES, per=600
        ):
            response = render(
                request,
                self.template_name,
                {"form": self.get_form_class()(request), "refusal": _too_many()},
                status=429,
            )
            response["Retry-After"] = "600"
            return response
        return super().post(request, *args, **kwargs)


class MySpaceLogout(auth_views.LogoutView):
    next_page = reverse_lazy("myspace:login")


def _mine(request: HttpRequest) -> tuple[Account, Entity] | None:
    account = access.account_of(request.user)
    if account is None:
        return None
    return account, access.surviving(account.entity)


def _my_requests(records) -> list[dict]:
    ids = _reporter_ids(records)
    return cases.cases_for_reporters(ids) if ids else []


def _holdings(records) -> list[dict]:
    """What each department holds about the owner, shown to them unmasked (ID numbers apart)."""
    groups: OrderedDict[str, dict] = OrderedDict()
    for record in records:
        department = _department_name(record)
        group = groups.setdefault(department, {"department": department, "records": []})
        group["records"].append(
            {
                "source": record.source,
                "as_of": record.observed_at,
                "attributes": access.shown_to_owner(record.kind, record.attributes or {}),
                "problems": [p for p in record.problems or [] if isinstance(p, dict)],
            }
        )
    return list(groups.values())


@never_cache
def my_home(request: HttpRequest) -> HttpResponse:
    mine = _mine(request)
    if mine is None:
        return redirect(f"{reverse('myspace:login')}?next={reverse('myspace:home')}")
    account, entity = mine
    records = list(
        entity.records.select_related("source__department").order_by(
            "source__department__code", "source__name"
        )
    )
    ids = _reporter_ids(records)
    audit.record(
        request.user,
        "identity.myspace.view",
        entity,
        detail={"relation": account.relation},
    )
    return render(
        request,
        "identity/my_space.html",
        {
            "account": account,
            "entity": entity,
            "golden": access.shown_to_owner(entity.kind, entity.attributes or {}),
            "requests": cases.cases_for_reporters(ids) if ids else [],
            "notices": cases.notifications_for_reporters(ids) if ids else [],
            "services": [
                {
                    "title": r.source.service_title,
                    "department": _department_name(r),
                    "since": r.observed_at,
                }
                for r in records
                if r.source.service_title
            ],
            "holdings": _holdings(records),
        },
    )


@never_cache
def my_request(request: HttpRequest, tracking_no: str) -> HttpResponse:
    mine = _mine(request)
    if mine is None:
        return redirect(f"{reverse('myspace:login')}?next={request.path}")
    _account, entity = mine
    records = entity.records.select_related("source")
    found = [c for c in _my_requests(records) if c["tracking_no"] == tracking_no]
    if not found:
        raise Http404(_("You have no request with this number."))
    ids = _reporter_ids(records)
    notices = [n for n in cases.notifications_for_reporters(ids) if n["tracking_no"] == tracking_no]
    audit.record(
        request.user,
        "identity.myspace.request",
        entity,
        detail={"tracking_no": tracking_no},
    )
    return render(
        request,
        "identity/my_request.html",
        {"entity": entity, "case": found[0], "notices": notices},
    )


def _refused(request: HttpRequest, why: str) -> None:
    """Audit a refused registration, once per client and hour: the refusals themselves are
    limited only by the rate limit, and a visitor must not write to the audit chain at will."""
    if ratelimit.hit(f"identity.register.audited:{_client(request)}", limit=1, per=3600):
        audit.record(
            "anonymous",
            "identity.register.refused",
            object_type="identity.account",
            detail={"why": why, "client": _client(request)},
        )


def _register_page(request, form, *, status=200, refusal="") -> HttpResponse:
    if form.is_bound:
        form.forget_id_number()
    context = {"form": form, "refusal": refusal}
    return render(request, "identity/my_register.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def my_register(request: HttpRequest) -> HttpResponse:
    """A resident's sign-up. The order of the checks is the point: the format of what was
    typed, then the identity, and only then whether the user name is free, so a stranger
    learns neither whose details match nor which user names exist."""
    if request.method == "GET":
        return _register_page(request, RegisterForm())
    if not ratelimit.hit(
        f"identity.register:{_client(request)}", limit=REGISTRATIONS_PER_HOUR, per=3600
    ):
        _refused(request, "rate")
        response = _register_page(request, RegisterForm(), status=429, refusal=_too_many())
        response["Retry-After"] = "3600"
        return response
    form = RegisterForm(request.POST)
    if not form.is_valid():
        return _register_page(request, form, status=400)
    data = form.cleaned_data
    entity = access.verify_resident(data["id_number"], data["name"], data["mobile"])
    no_match = _("These details do not match our records (or an account already exists for them).")
    if entity is None:
        audit.record(
            "anonymous",
            "identity.register.refused",
            object_type="identity.account",
            detail={"why": "no match"},
        )
        return _register_page(request, form, status=400, refusal=no_match)
    username = data["username"]
    if get_user_model().objects.filter(username__iexact=username).exists():
        form.add_error("username", _("This user name is taken; choose another."))
        return _register_page(request, form, status=400)
    try:
        with transaction.atomic():
            locked = access.claim(entity, Account.Relation.SELF)
            user = get_user_model().objects.create_user(username, password=data["password1"])
            account = Account.objects.create(
                user=user, entity=locked, relation=Account.Relation.SELF, verified_at=timezone.now()
            )
    except access.AccountError:
        audit.record(
            "anonymous",
            "identity.register.refused",
            object_type="identity.account",
            detail={"why": "taken"},
        )
        return _register_page(request, form, status=400, refusal=no_match)
    except IntegrityError:  # the same user name, taken a moment ago by someone else
        form.add_error("username", _("This user name is taken; choose another."))
        return _register_page(request, form, status=400)
    audit.record(user, "identity.register", account.entity, detail={"relation": account.relation})
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("myspace:home")
