"""Build the dbt manifest the ``transform`` DAG renders from (``make dbt-manifest``).

``dbt parse`` reads the project and writes ``target/manifest.json`` without touching the
database, so it runs at image build time, in CI and on a laptop alike.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from include.transform.project import DbtProject, offline_profiles_yml

log = logging.getLogger(__name__)


#: Project files whose change makes the manifest stale.
_PROJECT_FILE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py", ".md")
_NOT_PROJECT_DIRS = {"target", "logs", "dbt_packages", ".git"}


class ManifestBuildError(RuntimeError):
    """``dbt parse`` failed; the message carries dbt's error."""


def build_manifest(project: DbtProject) -> Path:
    """Run ``dbt parse`` in-process for ``project`` and return the manifest path.

    A project whose profile comes from the ``warehouse`` connection is parsed with an offline
    profile: ``dbt parse`` reads a profile but never connects. dbt writes into a scratch target
    directory, so its partial-parse state (made with that profile) is not left in the project for
    the DAG's first dbt run to trip over; only the manifest is copied out.
    """
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dbt-parse-") as scratch:
        profiles_dir = project.profiles_dir or offline_profiles_yml(project, Path(scratch)).parent
        target = Path(scratch) / "target"
        result = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(project.project_path),
                "--profiles-dir",
                str(profiles_dir),
                "--profile",
                project.profile_name,
                "--target",
                project.target_name,
                "--target-path",
                str(target),
                "--quiet",
            ]
        )
        if not result.success:
            raise ManifestBuildError(f"dbt parse failed for {project.project_path}: {result.exception}")
        built = target / "manifest.json"
        if not built.is_file():
            raise ManifestBuildError(f"dbt parse succeeded but wrote no {built}")
        project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, project.manifest_path)
    log.debug("dbt manifest of %s written to %s", project.project_name, project.manifest_path)
    return project.manifest_path


def manifest_is_current(project: DbtProject) -> bool:
    """Whether the manifest exists and is newer than every file of the project."""
    if not project.has_manifest:
        return False
    built_at = project.manifest_path.stat().st_mtime
    for path in project.project_path.rglob("*"):
        if _NOT_PROJECT_DIRS.intersection(path.relative_to(project.project_path).parts):
            continue
        if path.suffix in _PROJECT_FILE_SUFFIXES and path.stat().st_mtime > built_at:
            return False
    return True


def ensure_manifest(project: DbtProject) -> Path:
    """Build the manifest unless it is current; return its path."""
    return project.manifest_path if manifest_is_current(project) else build_manifest(project)
