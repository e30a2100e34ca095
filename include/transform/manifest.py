"""Build the dbt manifest the ``transform`` DAG renders from (``make dbt-manifest``).

``dbt parse`` reads the project and writes ``target/manifest.json`` without touching the
database, so it runs at image build time, in CI and on a laptop alike.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from include.transform.project import DbtProject

log = logging.getLogger(__name__)


class ManifestBuildError(RuntimeError):
    """``dbt parse`` failed; the message carries dbt's error."""


def build_manifest(project: DbtProject) -> Path:
    """Run ``dbt parse`` in-process for ``project`` and return the manifest path."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(project.project_path),
            "--profiles-dir",
            str(project.profiles_dir),
            "--profile",
            project.profile_name,
            "--target",
            project.target_name,
            "--quiet",
        ]
    )
    if not result.success:
        raise ManifestBuildError(f"dbt parse failed for {project.project_path}: {result.exception}")
    built = project.project_path / "target" / "manifest.json"
    if not built.is_file():
        raise ManifestBuildError(f"dbt parse succeeded but wrote no {built}")
    if built.resolve() != project.manifest_path.resolve():
        project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, project.manifest_path)
    log.info("dbt manifest of %s written to %s", project.project_name, project.manifest_path)
    return project.manifest_path
