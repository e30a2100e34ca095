"""Report files in object storage through Airflow's ``ObjectStoragePath`` (``s3://``, ``file://``...).

Publishing never exposes a partial file: on a local filesystem the file is written under a
temporary name and renamed; object stores make an upload visible only when it completes.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

_LOCAL_PROTOCOLS = ("file", "local")
_COPY_BUFFER = 8 * 1024 * 1024
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    """``name`` reduced to characters that are safe in file names and object keys."""
    return _UNSAFE_NAME.sub("_", name).strip("._-") or "report"


def storage_path(url: str, conn_id: str | None = None) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for ``url`` (a ``conn_id@`` in the URL is used when ``conn_id`` is not given)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)


def is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in _LOCAL_PROTOCOLS


def archive_path(base_url: str, conn_id: str | None, stem: str, slot: datetime, file_name: str) -> ObjectStoragePath:
    """Where the archived copy of a run's file lives: ``<base>/<report>/<yyyy>/<mm>/<dd>/<file>``."""
    return storage_path(base_url, conn_id) / stem / f"{slot:%Y}" / f"{slot:%m}" / f"{slot:%d}" / file_name


def publish(
    source: Path | ObjectStoragePath, target: ObjectStoragePath, *, check: Callable[[], None] | None = None
) -> str:
    """Copy ``source`` to ``target`` so that ``target`` only ever appears complete; return its URL.

    ``check()`` is called before every block and may raise to stop (a run's time limit).
    """
    if is_local(target):
        # The temporary file is plain pathlib: through ObjectStoragePath, Airflow's lineage would
        # report it as one of the task's outputs. The task reports the file it published.
        final = Path(target.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.partial")
        try:
            with source.open("rb") as src, partial.open("wb") as out:
                _copy(src, out, check)
            partial.replace(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    else:
        with source.open("rb") as src, target.open("wb") as out:
            _copy(src, out, check)
    return str(target)


def _copy(src, out, check: Callable[[], None] | None) -> None:
    if check is None:
        shutil.copyfileobj(src, out, _COPY_BUFFER)
        return
    while True:
        check()
        block = src.read(_COPY_BUFFER)
        if not block:
            return
        out.write(block)


def delete(location: str) -> bool:
    """Delete the file at ``location``; ``False`` if it was already gone."""
    path = storage_path(location)
    if not path.exists():
        return False
    path.unlink()
    return True


def link_for(path: ObjectStoragePath, expiry_seconds: int) -> str:
    """A link to ``path`` for an email: a signed URL where the store supports it, else the URL itself."""
    if not is_local(path):
        try:
            return path.sign(expiration=expiry_seconds)
        except (NotImplementedError, AttributeError, TypeError):
            log.info("object store of %s cannot sign URLs; linking to the URL itself", path)
    return location_without_credentials(path)


def location_without_credentials(path: ObjectStoragePath) -> str:
    """The URL of ``path`` without the ``conn_id@`` that ``str()`` puts in it."""
    return str(path).replace(f"{path.conn_id}@", "", 1) if path.conn_id else str(path)
