"""`POST /api/predict/eclo` on its lane (api/lanes.py): a row the active model accepts is scored, stored and
answered there; everything the route refuses is handed to it (api/predictions/controllers.py) before anything
is stored."""

from __future__ import annotations

from litestar.types import Scope

from api.predictions import schemas as s
from api.predictions.single import SinglePredictionService
from api.predictions.single_http import decode_object
from api.resources import Resources
from api.users.services import Principal

PATH = "/api/predict/eclo"


async def predict_on_lane(resources: Resources, user: Principal, body: bytes, _: Scope) -> s.Prediction | None:
    service = SinglePredictionService(resources)
    try:
        scored = service.score(decode_object(body))  # the route's decoder: any JSON object
    except Exception:  # a refusal (or a fault the route answers as a 500): nothing is stored yet
        return None
    return await service.store(user, scored)
