"""The Litestar application factory."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import LifeSpanReceive, LifeSpanScope, LifeSpanSend, Receive, Scope, Send

from api.analysis.controllers import AnalysisToolController
from api.chat.controllers import ChatController, ConversationController
from api.chat.lane import PATH as CHAT_PATH
from api.chat.lane import chat_hit_on_lane
from api.datasets.controllers import DatasetController, SharedDatasetController
from api.db.session import provide_db_session
from api.errors import EXCEPTION_HANDLERS
from api.health.controllers import HealthController
from api.insights.controllers import InsightController, SharedInsightController
from api.jobs.controllers import JobController
from api.labels.controllers import LabelController
from api.lanes import Lanes
from api.observability.exposition import metrics_endpoint
from api.observability.http import add_request_id, observability_middleware
from api.openapi import JsonOpenAPI, SwaggerOpenAPI, answer_options_with_every_method, document_errors
from api.predictions.controllers import PredictionController, ScoringJobController
from api.predictions.lane import PATH as PREDICT_PATH
from api.predictions.lane import predict_on_lane
from api.proximity.controllers import ProximityController
from api.registry.controllers import ModelController
from api.resources import Resources, close_resources, freeze_startup_objects, open_resources
from api.settings import Settings, get_settings
from api.users.auth import auth_middleware
from api.users.controllers import UserController

logger = logging.getLogger("hab.api")


class HabApp(Litestar):
    """Litestar, with the hot routes offered first to their lanes (api/lanes.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        routes = {PREDICT_PATH: predict_on_lane, CHAT_PATH: chat_hit_on_lane}
        self.lanes = Lanes(functools.partial(Litestar.__call__, self), self._resources, routes)

    def _resources(self) -> Resources | None:
        return getattr(self.state, "resources", None)

    async def __call__(
        self, scope: Scope | LifeSpanScope, receive: Receive | LifeSpanReceive, send: Send | LifeSpanSend
    ) -> None:
        if self.lanes.takes(scope):
            await self.lanes(cast("Scope", scope), cast("Receive", receive), cast("Send", send))
        else:
            await super().__call__(scope, receive, send)


# Multipart framing around the file is small; this is headroom over the configured file limit.
_MULTIPART_OVERHEAD = 1 << 20


def create_app(settings: Settings | None = None) -> HabApp:
    settings = settings or get_settings()
    settings.sealing_secret()  # refuse to start without a real HAB_SECRET_KEY, before the first chat job needs it

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.resources = await open_resources(settings, follow_models=True)
        freeze_startup_objects()
        try:
            yield
        finally:
            await close_resources(app.state.resources)

    app = HabApp(
        route_handlers=[
            HealthController,
            UserController,
            DatasetController,
            SharedDatasetController,
            PredictionController,
            ScoringJobController,
            ModelController,
            JobController,
            LabelController,
            ChatController,
            ConversationController,
            AnalysisToolController,
            InsightController,
            SharedInsightController,
            ProximityController,
            metrics_endpoint,
        ],
        lifespan=[lifespan],
        dependencies={"db_session": Provide(provide_db_session)},
        middleware=[observability_middleware, auth_middleware],
        before_send=[add_request_id],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.upload_max_bytes + _MULTIPART_OVERHEAD,
        openapi_config=OpenAPIConfig(
            title="hab API",
            version="1.3.0",
            path="/schema",
            render_plugins=[JsonOpenAPI(), SwaggerOpenAPI(path="/swagger")],
            description="대구 교통안전 데이터 플랫폼 hab의 API",
        ),
        debug=False,
        logging_config=None,  # logging is configured once per process (api/observability/logs.py)
    )
    document_errors(app)  # every operation documents hab's real error body for each status it can answer
    answer_options_with_every_method(app)
    return app
