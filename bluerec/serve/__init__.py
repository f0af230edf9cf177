"""Online serving: an HTTP API (FastAPI on uvicorn) that turns a live history into a profile and recommendations.

``bluerec serve --profiler <dir> -d <prepared dataset or item file>``; see :func:`create_app`,
:class:`ServingEngine`, :class:`MicroBatcher` and :class:`ServeSettings`.
"""

from bluerec.serve.app import create_app
from bluerec.serve.batcher import MicroBatcher
from bluerec.serve.catalogue import Catalogue, load_catalogue
from bluerec.serve.engine import ItemIndex, Query, ServingEngine, resolve_profiler
from bluerec.serve.settings import BatchingSettings, LimitSettings, ServeSettings

__all__ = ["BatchingSettings", "Catalogue", "ItemIndex", "LimitSettings", "MicroBatcher", "Query", "ServeSettings",
           "ServingEngine", "create_app", "load_catalogue", "resolve_profiler"]
