"""The same link on Spark (local mode) as on DuckDB: same settings, same clusters.

Spark starts once per process (7-10 s) through civicpulse.lake.engine; the records are small so
the run stays within a minute on two cores.
"""

from __future__ import annotations

import pandas as pd
import pytest

from civicpulse.identity import linking
from tests.identity.test_linking import synthetic_residents
from tests.support import unavailable

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark_ready():
    from civicpulse.lake.engine import check_spark
    from civicpulse.lake.errors import EngineUnavailable

    try:
        check_spark("local[2]")
    except EngineUnavailable as exc:
        unavailable(f"Spark cannot run here: {exc}")


@pytest.fixture(scope="module")
def residents():
    return synthetic_residents(150, seed=11)


@pytest.fixture(scope="module")
def on_duckdb(residents):
    return linking.link(residents, "resident")


@pytest.fixture(scope="module")
def on_spark(spark_ready, residents):
    return linking.link(residents, "resident", engine="spark")


def test_spark_trains_and_clusters_like_duckdb(on_duckdb, on_spark, residents):
    assert on_spark.counts["engine"] == "spark"
    assert on_spark.counts["comparisons"] == on_duckdb.counts["comparisons"]
    pd.testing.assert_frame_equal(on_spark.clusters, on_duckdb.clusters)
    # the clusters are right, not just equal: each person is one cluster
    truth = residents.set_index("record_id")["person"]
    for _, group in on_spark.clusters.groupby("cluster_id"):
        assert truth[group["record_id"]].nunique() == 1
    assert on_spark.clusters["cluster_id"].nunique() == residents["person"].nunique()


def test_a_duckdb_model_scores_the_same_on_spark(spark_ready, on_duckdb, residents):
    again = linking.link(residents, "resident", model=on_duckdb.model, engine="spark")
    assert again.counts["trained"] is False
    pd.testing.assert_frame_equal(again.clusters, on_duckdb.clusters)
    left = on_duckdb.pairs.set_index(["record_l", "record_r"])
    right = again.pairs.set_index(["record_l", "record_r"])
    assert list(left.index) == list(right.index)
    assert right["match_weight"].to_numpy() == pytest.approx(left["match_weight"].to_numpy())
    assert list(right["explanation"]) == list(left["explanation"])
