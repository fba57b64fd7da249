"""The collector's routes, one module per resource.

To add a route module:

1. Create ``qosmon/collector/routes/<resource>.py`` with
   ``routes = web.RouteTableDef()`` and handlers decorated
   ``@routes.get("/api/v1/...")`` (``post``, ``put``...).
2. In each handler use the plumbing of ``qosmon.collector.request`` in the
   order of work: ``auth_probe``/``auth_feed``/``auth_read``, ``read_body``,
   ``parse``, the shared checks (``path_show_id``, ``existing_show``,
   ``not_future``...), then the store through ``state.store_call``, the
   pipeline through ``state.feed_pipeline``, and answer with
   ``json_response``. Refuse with ``ApiError``; never build an error
   response by hand (the middleware shapes and counts them).
3. Name the module in ``ROUTE_MODULES`` below, and document the endpoint in
   ``qosmon/collector/openapi.py`` and ``docs/collector.md``.

A store feature only some backends have is a ``Protocol`` in
``qosmon.store.base``, tested with ``isinstance``.
"""

from __future__ import annotations

from types import ModuleType

from qosmon.collector.routes import (
    assignments,
    business,
    history,
    inventory,
    live,
    ops,
    probes,
    series,
    shows,
    viewers,
)

ROUTE_MODULES: tuple[ModuleType, ...] = (
    probes, shows, business, viewers, inventory, series, history, ops, assignments, live,
)
