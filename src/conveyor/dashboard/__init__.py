"""The web dashboard: plain ES modules and CSS, served at `/` beside the GraphQL API they talk to.

`dashboard_routes()` returns the Starlette routes; `conveyor.api.create_api` mounts them when this package is
present and `CONVEYOR_DASHBOARD_ENABLED` is not false. Nothing is built or fetched: the files ship as they are.
"""

from conveyor.dashboard.routes import DashboardConfig, base_path, dashboard_routes, load_dashboard_config

__all__ = ["DashboardConfig", "base_path", "dashboard_routes", "load_dashboard_config"]
