"""What a page drew, read from an AppTest run: the figures sent to our plotly element
(pages/plotly_chart), in page order."""
from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from pages.kit.plotly_chart import COMPONENT


def charts(at: AppTest) -> list:
    """The page's plotly chart elements (the temperature bars, another component, are left out)."""
    return [el for el in at.get("bidi_component") if el.proto.component_name == COMPONENT]


def chart_json(el) -> str:
    """One chart's figure as the JSON string the browser receives."""
    return json.loads(el.proto.json)["figure"]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart_json(el)) for el in charts(at)]


def values(array) -> np.ndarray:
    """A plotly array from a chart's JSON: a plain list, or plotly's typed {'dtype', 'bdata'} form."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)
