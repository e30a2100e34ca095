"""Which dbt project the ``transform`` DAG renders, from the environment (no code changes needed).

* ``DBT_PROJECT_PATH``: the dbt project directory (default: the bundled ``dbt/``).
* ``DBT_PROFILES_DIR``: a directory holding the project's own ``profiles.yml``. Unset (the
  default), dbt's profile comes from the Airflow connection ``warehouse`` (Cosmos's
  ``PostgresUserPasswordProfileMapping``), so the warehouse is configured once, for every part of
  the platform; ``DBT_SCHEMA`` (default ``analytics``) and ``DBT_THREADS`` (default 4) complete it.
* ``DBT_MANIFEST_PATH``: the manifest Cosmos renders from (default: ``<project>/target/manifest.json``).
* ``DBT_PROFILE`` / ``DBT_TARGET`` (dbt's own variables): profile and target (default: the
  ``profile:`` of ``dbt_project.yml``; that profile's ``target:`` in ``profiles.yml``, else ``warehouse``).
* ``DBT_DOCS_SLUG``: the project key in ``AIRFLOW__COSMOS__DBT_DOCS_PROJECTS`` the docs are
  published under (default: ``analytics``).

Read when the DAG file is parsed: only environment variables and two small YAML files, no
database, no Airflow Variables.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

#: The dbt project bundled with the platform.
BUNDLED_PROJECT = Path(__file__).resolve().parents[2] / "dbt"
DEFAULT_DOCS_SLUG = "analytics"
#: The profile target when the profile comes from the ``warehouse`` connection.
WAREHOUSE_TARGET = "warehouse"
DEFAULT_SCHEMA = "analytics"
DEFAULT_THREADS = 4
#: Seconds dbt waits for a connection to the warehouse (then the ``dbt`` breaker counts a failure).
CONNECT_TIMEOUT = 10


def dbt_executable() -> str:
    """The ``dbt`` on ``PATH``, else the one installed next to this Python (the venv's ``bin/``).

    Cosmos needs an executable for ``dbt ls`` rendering and ``InvocationMode.SUBPROCESS`` even
    though tasks run dbt in-process; Airflow processes do not always have the venv on ``PATH``.
    """
    return shutil.which("dbt") or str(Path(sys.executable).parent / "dbt")


class DbtProjectError(ValueError):
    """The configured dbt project cannot be used (names the path and what is missing)."""


def _read_yaml(path: Path, what: str) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DbtProjectError(f"{what} not found: {path}") from None
    except yaml.YAMLError as error:
        raise DbtProjectError(f"{what} {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DbtProjectError(f"{what} {path} must be a YAML mapping")
    return document


@dataclass(frozen=True)
class DbtProject:
    """A dbt project, its profile and where its manifest is."""

    project_path: Path
    #: ``None``: the profile comes from the ``warehouse`` connection.
    profiles_dir: Path | None
    manifest_path: Path
    project_name: str
    profile_name: str
    target_name: str
    docs_slug: str = DEFAULT_DOCS_SLUG
    schema: str = DEFAULT_SCHEMA
    threads: int = DEFAULT_THREADS

    @property
    def profiles_yml(self) -> Path | None:
        return self.profiles_dir / "profiles.yml" if self.profiles_dir is not None else None

    @property
    def has_manifest(self) -> bool:
        return self.manifest_path.is_file()

    @property
    def needs_dbt_deps(self) -> bool:
        """Whether tasks must run ``dbt deps``: packages are declared but not installed in the project."""
        declared = any((self.project_path / name).is_file() for name in ("packages.yml", "dependencies.yml"))
        return declared and not (self.project_path / "dbt_packages").is_dir()

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> DbtProject:
        """The project the environment points at; errors name the variable or file at fault."""
        env = os.environ if environ is None else environ
        project_path = Path(env.get("DBT_PROJECT_PATH") or BUNDLED_PROJECT).expanduser().resolve()
        profiles_dir = Path(env["DBT_PROFILES_DIR"]).expanduser().resolve() if env.get("DBT_PROFILES_DIR") else None
        manifest_path = Path(env.get("DBT_MANIFEST_PATH") or project_path / "target" / "manifest.json")
        project_file = _read_yaml(project_path / "dbt_project.yml", "dbt project file (DBT_PROJECT_PATH)")
        project_name = project_file.get("name")
        if not project_name:
            raise DbtProjectError(f"{project_path / 'dbt_project.yml'} has no 'name'")
        profile_name = env.get("DBT_PROFILE") or project_file.get("profile")
        if not profile_name:
            raise DbtProjectError(f"{project_path / 'dbt_project.yml'} has no 'profile' and DBT_PROFILE is not set")
        target_name = env.get("DBT_TARGET") or (
            cls._default_target(profiles_dir / "profiles.yml", profile_name) if profiles_dir else WAREHOUSE_TARGET
        )
        try:
            threads = int(env.get("DBT_THREADS") or DEFAULT_THREADS)
        except ValueError:
            raise DbtProjectError(f"DBT_THREADS={env['DBT_THREADS']!r} is not a number of threads") from None
        return cls(
            project_path=project_path,
            profiles_dir=profiles_dir,
            manifest_path=manifest_path.expanduser().resolve(),
            project_name=str(project_name),
            profile_name=str(profile_name),
            target_name=str(target_name),
            docs_slug=env.get("DBT_DOCS_SLUG") or DEFAULT_DOCS_SLUG,
            schema=env.get("DBT_SCHEMA") or DEFAULT_SCHEMA,
            threads=threads,
        )

    @staticmethod
    def _default_target(profiles_yml: Path, profile_name: str) -> str:
        profiles = _read_yaml(profiles_yml, "dbt profiles file (DBT_PROFILES_DIR)")
        profile = profiles.get(profile_name)
        if not isinstance(profile, dict):
            raise DbtProjectError(f"{profiles_yml} has no profile {profile_name!r} (profiles: {sorted(profiles)})")
        target = profile.get("target")
        if not target:
            raise DbtProjectError(f"profile {profile_name!r} in {profiles_yml} has no 'target'; set DBT_TARGET")
        return str(target)

    def load_mode(self):
        """``LoadMode.DBT_MANIFEST`` when the manifest exists, else ``LoadMode.DBT_LS`` with a warning."""
        from cosmos.constants import LoadMode

        if self.has_manifest:
            log.info("rendering dbt project %s from manifest %s", self.project_name, self.manifest_path)
            return LoadMode.DBT_MANIFEST
        log.warning(
            "dbt manifest %s not found: rendering dbt project %s with `dbt ls` instead, which runs dbt on "
            "every parse of the DAG file (seconds, not milliseconds). Build the manifest with "
            "`make dbt-manifest` (the Docker image builds it at build time).",
            self.manifest_path,
            self.project_name,
        )
        return LoadMode.DBT_LS


def offline_profiles_yml(project: DbtProject, directory: Path) -> Path:
    """A ``profiles.yml`` that lets dbt parse ``project`` without a database (``dbt parse`` never connects)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profiles.yml"
    target = {
        "type": "postgres",
        "host": "localhost",
        "port": 5432,
        "user": "dbt_parse",
        "password": "",
        "dbname": "dbt_parse",
        "schema": project.schema,
        "threads": project.threads,
    }
    profile = {"target": project.target_name, "outputs": {project.target_name: target}}
    path.write_text(yaml.safe_dump({project.profile_name: profile}))
    return path


def local_manifest_project_config(project: DbtProject):
    """Cosmos ``ProjectConfig`` for ``project``, reading a local manifest with plain ``pathlib``.

    Cosmos wraps every ``manifest_path`` in Airflow's ObjectStoragePath, whose first read in a
    process loads the filesystem providers and every Airflow plugin (for hook lineage): about half a
    second on each parse of the DAG file (the DAG processor and every task parse it in a fresh
    process), more than rendering the project itself. The manifest here is a local file, so a
    ``pathlib.Path`` (a type ``ProjectConfig.manifest_path`` declares) reads the same bytes; see
    ``bench/dbt_parse.py``.
    """
    from cosmos import ProjectConfig

    config = ProjectConfig(
        dbt_project_path=project.project_path,
        manifest_path=project.manifest_path if project.has_manifest else None,
        install_dbt_deps=project.needs_dbt_deps,
    )
    if project.has_manifest:
        config.manifest_path = project.manifest_path
    return config
