"""Publish ``dbt docs generate`` output where Cosmos's Airflow UI plugin serves it.

Cosmos's Airflow 3 plugin (Browse -> "dbt Docs") reads the JSON setting
``[cosmos] dbt_docs_projects`` (``AIRFLOW__COSMOS__DBT_DOCS_PROJECTS``), e.g.
``{"analytics": {"dir": "/usr/local/airflow/dbt_docs/analytics", "name": "dbt Docs (Analytics)"}}``,
and serves ``<dir>/index.html``, ``manifest.json`` and ``catalog.json``. The docs task reads the
same setting, so the artefacts land exactly where the UI looks. ``dir`` may be a local path
(readable by the API server: a shared volume in a multi-container deployment) or an object
storage URL (``s3://...`` with ``conn_id``), written through Airflow's ObjectStoragePath.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: What ``dbt docs generate`` writes and the plugin serves.
DOCS_ARTEFACTS = ("index.html", "manifest.json", "catalog.json")
_REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "wasb://", "abfs://", "abfss://", "az://")


class DocsPublishError(RuntimeError):
    """The docs cannot be published (setting missing or invalid, artefact missing)."""


@dataclass(frozen=True)
class DocsLocation:
    slug: str
    dir: str
    conn_id: str | None = None
    index: str = "index.html"

    @property
    def is_remote(self) -> bool:
        return self.dir.startswith(_REMOTE_SCHEMES)


def docs_projects_setting() -> str | None:
    """The raw ``[cosmos] dbt_docs_projects`` value, as the plugin reads it."""
    from airflow.configuration import conf

    return conf.get("cosmos", "dbt_docs_projects", fallback=None)


def docs_location(slug: str, setting: str | None = None) -> DocsLocation:
    """Where the UI reads the docs of project ``slug``; the error says what to configure."""
    raw = docs_projects_setting() if setting is None else setting
    if not raw:
        raise DocsPublishError(
            "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS is not set, so the Airflow UI serves no dbt docs; set it to "
            f'e.g. {{"{slug}": {{"dir": "/path/to/dbt_docs/{slug}", "name": "dbt Docs"}}}}'
        )
    try:
        projects = json.loads(raw)
    except ValueError as error:
        raise DocsPublishError(f"AIRFLOW__COSMOS__DBT_DOCS_PROJECTS is not valid JSON: {error}") from None
    entry = projects.get(slug) if isinstance(projects, dict) else None
    if not isinstance(entry, dict) or not entry.get("dir"):
        known = sorted(projects) if isinstance(projects, dict) else []
        raise DocsPublishError(
            f"AIRFLOW__COSMOS__DBT_DOCS_PROJECTS has no 'dir' for docs project {slug!r} (configured: {known}); "
            "set DBT_DOCS_SLUG to one of them or add it"
        )
    return DocsLocation(slug, str(entry["dir"]), entry.get("conn_id"), entry.get("index") or "index.html")


def _write_local(directory: Path, name: str, content: bytes) -> None:
    """Write ``directory/name`` atomically, so the UI never serves a half-written file."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, directory / name)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def publish_docs(project_dir: str, slug: str, **_context: Any) -> list[str]:
    """Cosmos docs-operator callback: copy the generated artefacts to the docs location of ``slug``.

    ``project_dir`` is the temporary copy of the dbt project the operator ran ``dbt docs generate``
    in. Returns the published paths.
    """
    location = docs_location(slug)
    target = Path(project_dir) / "target"
    missing = [name for name in DOCS_ARTEFACTS if not (target / name).is_file()]
    if missing:
        raise DocsPublishError(f"dbt docs generate did not produce {missing} in {target}; dbt's output above says why")
    published = []
    for name in DOCS_ARTEFACTS:
        content = (target / name).read_bytes()
        destination_name = location.index if name == "index.html" else name
        if location.is_remote:
            from airflow.sdk import ObjectStoragePath

            base = ObjectStoragePath(location.dir, conn_id=location.conn_id)
            base.mkdir(parents=True, exist_ok=True)
            destination = base / destination_name
            destination.write_bytes(content)
        else:
            directory = Path(location.dir)
            _write_local(directory, destination_name, content)
            destination = directory / destination_name
        published.append(str(destination))
    log.info("published dbt docs %r to %s: %s", slug, location.dir, ", ".join(published))
    return published
