"""A user's own app, passed as `--app tests.cli.background_app:create_app`: one handler, on `background` only."""

from __future__ import annotations

from typing import Any

from conveyor import Conveyor, Settings


def create_app(settings: Settings | None = None) -> Conveyor:
    app = Conveyor(settings)

    @app.handler("background", "send-email")
    async def send_email(payload: Any) -> str:
        return "sent"

    return app
