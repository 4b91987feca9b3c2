"""Routing: the router trained from the store, triage below the threshold, operators'
corrections kept, moved and learnt, and the daily job."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from civicpulse.cases import jobs, routing
from civicpulse.cases.models import Case, RoutingCorrection, Service
from civicpulse.cases.workflow import Intake, take_in
from civicpulse.core.models import AuditEntry
from civicpulse.core.queue import REGISTRY, Run

INVENTED = "咕噜噗嗤"  # a word no demo case has


@pytest.fixture(scope="module")
def trained(demo_city, django_db_blocker):
    """The router trained once from the demo store; the model file is removed afterwards so
    no other module finds a router it did not train."""
    with django_db_blocker.unblock():
        report = routing.train_from_store()
    yield report
    routing.model_path().unlink(missing_ok=True)
    routing._loaded = None


@pytest.fixture
def router(trained, db):
    loaded = routing.current_router()
    assert loaded is not None
    return loaded


def test_router_beats_the_majority_baseline_on_held_out_cases(trained, router):
    assert trained.startswith("Router trained on")
    assert "majority baseline" in trained
    meta = router.meta
    assert meta["cases"] >= 15_000 and meta["services"] == 17
    assert meta["accuracy"] >= 0.95
    assert meta["accuracy"] > meta["baseline"] + 0.5


def test_router_routes_a_new_request_and_suggests_departments(router):
    code, confidence = router("3号楼暖气片不热，室温只有13度，家里有老人")
    assert code == "heating" and confidence >= router.threshold
    top = router.suggest("门口的路灯不亮了，晚上一片漆黑", k=3)
    assert len(top) == 3
    assert top[0][:2] == ("streetlight", "urban")
    assert [c for *_, c in top] == sorted((c for *_, c in top), reverse=True)
    assert router.route_many(["暖气不热", "路灯不亮"]) == [router("暖气不热"), router("路灯不亮")]


def test_current_router_is_loaded_once(router):
    assert routing.current_router() is router


def test_no_router_before_training(router, monkeypatch, tmp_path):
    monkeypatch.setattr(routing, "model_path", lambda: tmp_path / "none.joblib")
    assert routing.current_router() is None


def test_low_confidence_text_goes_to_triage(router, leader):
    unsure = take_in(Intake(channel="web", description="qwxz zzyv blorp"), leader, router=router)
    assert unsure.needs_triage
    assert unsure.routing_confidence < routing.THRESHOLD
    sure = take_in(
        Intake(channel="web", description="小区门口的路灯不亮，晚上一片漆黑"), leader, router=router
    )
    assert not sure.needs_triage and sure.service.code == "streetlight"
    assert sure.routing_confidence >= routing.THRESHOLD


def test_correct_records_moves_department_and_clears_triage(router, leader):
    case = Case.objects.filter(service__code="noise", status__in=Case.OPEN_STATUSES).first()
    case.needs_triage = True
    case.save(update_fields=["needs_triage"])
    routing.correct(case, Service.objects.get(code="pets"), leader)
    case.refresh_from_db()
    assert (case.service.code, case.department.code) == ("pets", "police")
    assert not case.needs_triage and case.status == "dispatched"
    fix = RoutingCorrection.objects.get(case=case)
    assert (fix.suggested, fix.corrected, fix.actor) == ("noise", "pets", "leader")
    moved = case.events.get(action="transferred")
    assert moved.note == routing.TRANSFER_REASON and moved.department.code == "police"
    assert case.events.filter(action="rerouted").exists()
    entry = AuditEntry.objects.filter(action="case.routing_corrected").latest("seq")
    assert entry.object_id == str(case.pk) and entry.detail["corrected"] == "pets"


def test_correct_within_a_department_or_of_a_closed_case_does_not_transfer(router, leader):
    case = Case.objects.filter(service__code="garbage", status__in=Case.OPEN_STATUSES).first()
    routing.correct(case, "snow", leader)  # both urban management
    case.refresh_from_db()
    assert case.service.code == "snow" and case.department.code == "urban"
    assert not case.events.filter(action="transferred").exists()
    closed = Case.objects.filter(service__code="noise", status="closed").first()
    routing.correct(closed, "pets", leader)
    closed.refresh_from_db()
    assert closed.service.code == "pets" and closed.department.code == "ecology"
    assert closed.status == "closed"


def test_repeated_corrections_are_learnt(router, leader):
    before, _ = router(f"小区里又出现了{INVENTED}，请处理")
    assert before != "pets"
    services = ["noise", "garbage", "heating", "parking", "property", "road"]
    for i, case in enumerate(Case.objects.filter(service__code__in=services).order_by("id")[:30]):
        case.description = f"{case.description}又是{INVENTED}的事情，第{i}回。"
        case.save(update_fields=["description"])
        routing.correct(case, "pets", leader)
    report = routing.train_from_store()
    assert "30 corrected by operators" in report
    relearnt = routing.current_router()
    assert relearnt is not router  # picked up by the file's new modification time
    code, confidence = relearnt(f"小区里又出现了{INVENTED}，请处理")
    assert code == "pets" and confidence >= relearnt.threshold
    assert relearnt("家里暖气不热，室温只有12度")[0] == "heating"  # the rest is not forgotten


def test_training_without_usable_cases_says_why(db, monkeypatch, tmp_path):
    monkeypatch.setattr(routing, "model_path", lambda: tmp_path / "router.joblib")
    Case.objects.update(needs_triage=True)  # cases waiting in triage teach nothing
    report = routing.train_from_store()
    assert report.startswith("Router not trained")
    assert not (tmp_path / "router.joblib").exists()


def test_daily_job_is_registered_and_idempotent(trained, db):
    spec = REGISTRY["cases.train_router"]
    assert spec.every == 86_400 and spec.handler is jobs.train_router
    run = Run(SimpleNamespace(save_checkpoint=lambda *a: None), "1", spec.name, {})
    jobs.train_router(run)  # trains when the store changed since the model was saved
    again = jobs.train_router(run)
    assert again["trained"] is False
    assert routing.current_router().meta["fingerprint"] == routing.store_fingerprint()
