"""Registration with Krita: the "DeepDream" action (Tools › Scripts) and the docker."""

from __future__ import annotations

from typing import Any

from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita

from . import controller, preferences
from .docker import DOCKER_ID, DeepDreamDocker
from .qt import QIcon, QMessageBox

ACTION_ID = "deepdream_krita_dream"
FLOATING_MESSAGE_MS = 8000


class DeepDreamExtension(Extension):
    def setup(self) -> None:
        runner = controller.runner()
        runner.failed.connect(self._report_failure)
        runner.refused.connect(self._report_failure)
        runner.succeeded.connect(self._report_success)

    def createActions(self, window: Any) -> None:  # noqa: N802 - Krita's virtual
        action = window.createAction(ACTION_ID, "DeepDream", "tools/scripts")
        action.setToolTip("Dream the active layer into a new layer (settings of the docker)")
        action.triggered.connect(dream_active_layer)

    def _report_failure(self, message: str) -> None:
        # The docker shows failures itself; without a visible docker, say it in a dialog.
        if _visible_docker() is None:
            window = Krita.instance().activeWindow()
            parent = window.qwindow() if window is not None else None
            QMessageBox.warning(parent, "DeepDream", message)

    def _report_success(self, _node: Any, message: str) -> None:
        # The docker's status line says what was added (and whether the layer changed while
        # it was dreamed); without a visible docker, say it over the canvas for a while.
        if _visible_docker() is None:
            window = Krita.instance().activeWindow()
            view = window.activeView() if window is not None else None
            show = getattr(view, "showFloatingMessage", None)
            if show is not None:
                show(message, QIcon(), FLOATING_MESSAGE_MS, 1)  # 1: medium priority


def _visible_docker() -> DeepDreamDocker | None:
    for dock in Krita.instance().dockers():
        if isinstance(dock, DeepDreamDocker) and dock.isVisible():
            return dock
    return None


def dream_active_layer() -> None:
    """The action: dream the active layer with the docker's (saved) settings."""
    document = Krita.instance().activeDocument()
    node = document.activeNode() if document is not None else None
    controller.runner().start(document, node, preferences.load_saved())


def register() -> None:
    app = Krita.instance()
    app.addExtension(DeepDreamExtension(app))
    app.addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockPosition.DockRight,
                          DeepDreamDocker))
