"""reseq studio: the interactive web page where animators pick key-frames on the manifold
(paper §4.2 and Figure 1) and watch the result.

A thin shell over the functional core, in three parts:

- :mod:`.session` -- :class:`Session`, the model: frames, distances and every answer the page
  asks for, computed by :mod:`reseq.graph`, :mod:`reseq.layouts`, :mod:`reseq.sequences` and
  written by :mod:`reseq.render`;
- :mod:`.app` -- :func:`create_app`, a Starlette app with its security guard (Host check, token
  exchanged for an HttpOnly SameSite=Strict cookie, frames by index only);
- :mod:`.server` -- :class:`StudioServer`, uvicorn in a thread on a socket bound to
  127.0.0.1 by default;

and the page itself under ``static/``: plain ES modules and Canvas 2D, no build step.
"""

from __future__ import annotations

from .app import create_app
from .server import StudioServer, allowed_hosts
from .session import Session, check_state, read_project

__all__ = ["Session", "StudioServer", "allowed_hosts", "check_state", "create_app",
           "read_project"]
