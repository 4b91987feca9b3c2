"""The audit chain catches an edited, a deleted and a reordered entry, each at the right place."""

from __future__ import annotations

import pytest
from django.db import connection

from civicpulse.core import audit
from civicpulse.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def _chain(n: int = 6) -> list[AuditEntry]:
    return [
        audit.record(
            f"user{i}",
            "case.update",
            object_type="cases.case",
            object_id=str(i),
            detail={"step": i, "note": "处理中"},
        )
        for i in range(n)
    ]


def _sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _table() -> str:
    return AuditEntry._meta.db_table


def test_intact_chain_verifies():
    entries = _chain()
    count, problem = audit.verify()
    assert problem is None
    assert count == entries[-1].seq
    assert entries[1].prev_hash == entries[0].hash


def test_edited_entry_is_caught():
    entries = _chain()
    target = entries[2]
    _sql(f"UPDATE {_table()} SET actor = %s WHERE seq = %s", "mallory", target.seq)
    _count, problem = audit.verify()
    assert problem is not None and problem.seq == target.seq
    assert "changed" in problem.reason


def test_deleted_entry_is_caught():
    entries = _chain()
    target = entries[3]
    _sql(f"DELETE FROM {_table()} WHERE seq = %s", target.seq)
    _count, problem = audit.verify()
    assert problem is not None and problem.seq == target.seq
    assert "missing" in problem.reason


def test_deleted_last_entry_is_caught():
    entries = _chain()
    _sql(f"DELETE FROM {_table()} WHERE seq = %s", entries[-1].seq)
    _count, problem = audit.verify()
    assert problem is not None and "removed from the end" in problem.reason


def test_reordered_entries_are_caught():
    entries = _chain()
    a, b = entries[1], entries[4]
    # swap the two entries' places in the sequence, keeping every row's own hash
    _sql(f"UPDATE {_table()} SET seq = %s WHERE seq = %s", -1, a.seq)
    _sql(f"UPDATE {_table()} SET seq = %s WHERE seq = %s", a.seq, b.seq)
    _sql(f"UPDATE {_table()} SET seq = %s WHERE seq = %s", b.seq, -1)
    _count, problem = audit.verify()
    assert problem is not None and problem.seq == a.seq
    assert "reordered" in problem.reason


def test_entries_cannot_be_changed_through_the_application():
    entry = _chain(1)[0]
    entry.actor = "mallory"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
