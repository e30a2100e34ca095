"""Retention: files of runs past their report's retention are deleted, locally and in object storage."""

from __future__ import annotations

import os
import time

from include.reports.retention import cleanup_expired
from tests.integration.reports.conftest import S3_CONN_ID, plant_run


def test_cleanup_removes_expired_files_and_keeps_the_rest(db, reports_env, s3_server, bucket):
    archive = reports_env["archive"]
    archive.mkdir(parents=True)
    files = {name: archive / f"{name}.csv" for name in ("old", "young", "long_kept")}
    for path in files.values():
        path.write_text("id\n1\n")
    s3 = s3_server.client()
    for name in ("old", "young"):
        s3.put_object(Bucket=bucket, Key=f"out/{name}.csv", Body=b"id\n1\n")
    old = plant_run(
        db,
        location=files["old"].as_uri(),
        age_days=31,
        retention_days=30,
        copies=(f"s3://{S3_CONN_ID}@{bucket}/out/old.csv",),
    )
    young = plant_run(
        db,
        location=files["young"].as_uri(),
        age_days=29,
        retention_days=30,
        copies=(f"s3://{S3_CONN_ID}@{bucket}/out/young.csv",),
    )
    kept = plant_run(db, location=files["long_kept"].as_uri(), age_days=31, retention_days=365)
    gone_already = plant_run(db, location=(archive / "never-there.csv").as_uri(), age_days=90, retention_days=30)
    staging = reports_env["staging"]
    (staging / "run-1").mkdir(parents=True)
    (staging / "run-2").mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(staging / "run-1", (two_days_ago, two_days_ago))

    summary = cleanup_expired()

    assert summary == {"expired_runs": 2, "files_deleted": 2, "staging_removed": 1}
    assert not files["old"].exists() and files["young"].exists() and files["long_kept"].exists()
    assert s3_server.keys(bucket) == ["out/young.csv"]
    cleaned = dict(db.execute("SELECT id, cleaned_at IS NOT NULL FROM analytics_report_runs").fetchall())
    assert cleaned == {old: True, young: False, kept: False, gone_already: True}
    assert [p.name for p in staging.iterdir()] == ["run-2"]
    assert cleanup_expired()["expired_runs"] == 0  # nothing left to do


def test_operator_command_lists_runs_and_errors(db, reports_env, capsys):
    from include.__main__ import main

    plant_run(db, location="file:///nowhere/x.csv", age_days=1, retention_days=30)
    db.execute("UPDATE analytics_report_runs SET status = 'failed', error = 'the query failed: boom'")

    assert main(["reports", "runs", "--limit", "5"]) == 0

    out = capsys.readouterr().out
    assert "planted" in out and "failed" in out and "error: the query failed: boom" in out
