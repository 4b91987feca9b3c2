import django.db.models.deletion
from django.db import migrations, models


def index_existing_records(apps, schema_editor):
    """Records stored before the keys existed get theirs, so incremental links find them."""
    from civicpulse.identity.records import blocking_keys

    SourceRecord = apps.get_model("identity", "SourceRecord")
    BlockingKey = apps.get_model("identity", "BlockingKey")
    batch = []
    records = SourceRecord.objects.order_by("pk").values_list("pk", "kind", "normalised")
    for pk, kind, normalised in records.iterator(chunk_size=5_000):
        batch += [
            BlockingKey(record_id=pk, kind=kind, rule=rule, value=value)
            for rule, value in blocking_keys(kind, normalised or {})
        ]
        if len(batch) >= 5_000:
            BlockingKey.objects.bulk_create(batch)
            batch = []
    BlockingKey.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0002_master_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="BlockingKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("resident", "resident"), ("enterprise", "enterprise")],
                        max_length=10,
                    ),
                ),
                ("rule", models.PositiveSmallIntegerField()),
                ("value", models.CharField(max_length=128)),
                (
                    "record",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="identity.sourcerecord",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["value", "rule", "kind"], name="identity_blocking_key")
                ],
            },
        ),
        migrations.RunPython(index_existing_records, migrations.RunPython.noop),
    ]
