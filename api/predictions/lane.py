"""`POST /api/predict/eclo` on its lane (api/lanes.py): a row the active model accepts is scored, stored and
answered there; everything the route refuses is handed to it (api/predictions/controllers.py) before anything
is stored."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import Scope

from api.predictions import schemas as s
from api.predictions.single import SinglePredictionService
from api.resources import Resources
from api.users.services import Principal

PATH = "/api/predict/eclo"
# What the route accepts (api/predictions/single_http.py): any JSON object.
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


async def predict_on_lane(resources: Resources, user: Principal, body: bytes, _: Scope) -> s.Prediction | None:
    service = SinglePredictionService(resources)
    try:
        scored = service.score(_decode_object(body))
    except Exception:  # a refusal (or a fault the route answers as a 500): nothing is stored yet
        return None
    return await service.store(user, scored)
