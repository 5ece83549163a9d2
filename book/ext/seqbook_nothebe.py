"""Sphinx extension: take sphinx-thebe out of the build.

jupyter-book 1.x always loads ``sphinx_thebe``, which writes ``const THEBE_JS_URL = "https://unpkg..."``
into every page (twice under ``--all``: a console SyntaxError), a binder config and its own CSS/JS.
The book has no live-code buttons, so this extension disconnects sphinx-thebe's event handlers and
drops its stylesheet; jupyter-book loads local extensions after its own, so they are registered
by the time ``setup`` runs here.
"""

from __future__ import annotations


def setup(app):
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "") == "sphinx_thebe":
                app.disconnect(listener.id)
    app.registry.css_files = [(name, attrs) for name, attrs in app.registry.css_files if name != "sphinx-thebe.css"]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
