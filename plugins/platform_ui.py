"""Airflow UI additions of the platform: the "Circuit breakers" page (Admin menu)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ui.breaker_page import URL_PREFIX, create_app


class PlatformUiPlugin(AirflowPlugin):
    name = "platform_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Circuit breakers"}]
    external_views = [
        {
            "name": "Circuit breakers",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "admin",
            "url_route": "circuit-breakers",
        }
    ]
