"""A stand-in for Krita 6's ``krita`` module, built on the real PyQt6.

A mock, for what cannot run here: Debian 13 packages Krita 5.2 (Qt5) only, and Krita 6 is the
Qt6 build.  It has just the API the DeepDream plug-in calls, with Krita's names, types
(QRect bounds, QPoint positions, QByteArray pixel data, QImage thumbnails) and RGBA U8 pixel
layout (B, G, R, A; transparent outside the layer), so the plug-in's own Qt code (the docker,
the runner's socket notifier and threads, the Qt5/Qt6 shim) runs on PyQt6 as in Krita 6.
"""

from __future__ import annotations

from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

BPP = 4  # RGBA U8


class Node:
    """A paint layer (or another kind, by ``kind``) over the whole canvas."""

    def __init__(self, document: Document, name: str, kind: str = "paintlayer",
                 data: bytes | None = None) -> None:
        self.document, self._name, self.kind = document, name, kind
        size = document.width() * document.height() * BPP
        self.data = bytearray(data if data is not None else bytes(size))
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.visible = self.locked = False

    def type(self) -> str:
        return self.kind

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:  # noqa: N802 - Krita's names, here and below
        self._name = name

    def setVisible(self, visible: bool) -> None:  # noqa: N802
        self.visible = visible

    def setLocked(self, locked: bool) -> None:  # noqa: N802
        self.locked = locked

    def animated(self) -> bool:
        return False

    def colorModel(self) -> str:  # noqa: N802
        return "RGBA"

    def colorDepth(self) -> str:  # noqa: N802
        return "U8"

    def colorProfile(self) -> str:  # noqa: N802
        return "sRGB-elle-V2-srgbtrc.icc"

    def position(self) -> QtCore.QPoint:
        return QtCore.QPoint(0, 0)

    def bounds(self) -> QtCore.QRect:
        return QtCore.QRect(0, 0, self.document.width(), self.document.height())

    def parentNode(self) -> Node | None:  # noqa: N802
        return self.parent

    def childNodes(self) -> list[Node]:  # noqa: N802
        return list(self.children)

    def duplicate(self) -> Node:
        copy = Node(self.document, self._name, self.kind, bytes(self.data))
        copy.visible, copy.locked = self.visible, self.locked
        return copy

    def addChildNode(self, child: Node, above: Node | None) -> bool:  # noqa: N802
        at = self.children.index(above) + 1 if above in self.children else 0
        self.children.insert(at, child)
        child.parent = self
        return True

    def _rows(self, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int]]:
        """(offset in data, offset in a w x h buffer, bytes) of each row's part on the canvas."""
        width, height = self.document.width(), self.document.height()
        x0, x1 = max(x, 0), min(x + w, width)
        rows = []
        for row in range(max(y, 0), min(y + h, height)):
            if x1 > x0:
                rows.append(((row * width + x0) * BPP, ((row - y) * w + x0 - x) * BPP,
                             (x1 - x0) * BPP))
        return rows

    def pixelData(self, x: int, y: int, w: int, h: int) -> QtCore.QByteArray:  # noqa: N802
        out = bytearray(w * h * BPP)
        for here, there, n in self._rows(x, y, w, h):
            out[there:there + n] = self.data[here:here + n]
        return QtCore.QByteArray(bytes(out))

    def setPixelData(self, data: Any, x: int, y: int, w: int, h: int) -> bool:  # noqa: N802
        data = bytes(data)
        if len(data) != w * h * BPP:
            return False
        for here, there, n in self._rows(x, y, w, h):
            self.data[here:here + n] = data[there:there + n]
        return True

    def thumbnail(self, w: int, h: int) -> QtGui.QImage:
        width, height = self.document.width(), self.document.height()
        image = QtGui.QImage(bytes(self.data), width, height, width * BPP,
                             QtGui.QImage.Format.Format_ARGB32)  # B, G, R, A in memory
        return image.scaled(w, h, QtCore.Qt.AspectRatioMode.KeepAspectRatio)


class Document:
    def __init__(self, width: int, height: int) -> None:
        self._size = (width, height)
        self.root = Node(self, "root", "grouplayer")
        self.active: Node | None = None

    def width(self) -> int:
        return self._size[0]

    def height(self) -> int:
        return self._size[1]

    def rootNode(self) -> Node:  # noqa: N802
        return self.root

    def activeNode(self) -> Node | None:  # noqa: N802
        return self.active

    def createNode(self, name: str, kind: str) -> Node:  # noqa: N802
        return Node(self, name, kind)

    def selection(self) -> None:
        return None

    def currentTime(self) -> int:  # noqa: N802
        return 0

    def setCurrentTime(self, time: int) -> None:  # noqa: N802
        pass

    def waitForDone(self) -> None:  # noqa: N802
        pass

    def tryBarrierLock(self) -> bool:  # noqa: N802
        return True

    def unlock(self) -> None:
        pass


class Extension(QtCore.QObject):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)


class DockWidget(QtWidgets.QDockWidget):
    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802
        raise NotImplementedError


class DockWidgetFactoryBase:
    class DockPosition:
        DockRight = 1


class DockWidgetFactory:
    def __init__(self, ident: str, position: int, cls: type) -> None:
        self.ident, self.position, self.cls = ident, position, cls


class Window(QtCore.QObject):
    """Krita's main window: where extensions put their actions."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: dict[str, QtGui.QAction] = {}

    def createAction(self, ident: str, text: str, menu: str) -> QtGui.QAction:  # noqa: N802
        self.actions[ident] = QtGui.QAction(text, self)
        return self.actions[ident]

    def qwindow(self) -> None:
        return None

    def activeView(self) -> None:  # noqa: N802
        return None


class Krita(QtCore.QObject):
    _instance: Krita | None = None

    def __init__(self) -> None:
        super().__init__()
        self.settings: dict[tuple[str, str], str] = {}
        self.document: Document | None = None
        self.window = Window()
        self.docks: list[QtWidgets.QDockWidget] = []
        self.extensions: list[Extension] = []

    @classmethod
    def instance(cls) -> Krita:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def activeDocument(self) -> Document | None:  # noqa: N802
        return self.document

    def activeWindow(self) -> Window:  # noqa: N802
        return self.window

    def readSetting(self, group: str, name: str, default: str) -> str:  # noqa: N802
        return self.settings.get((group, name), default)

    def writeSetting(self, group: str, name: str, value: str) -> None:  # noqa: N802
        self.settings[(group, name)] = value

    def dockers(self) -> list[QtWidgets.QDockWidget]:
        return list(self.docks)

    def addExtension(self, extension: Extension) -> None:  # noqa: N802
        # Krita calls setup() at once and createActions() for each window it opens
        self.extensions.append(extension)
        extension.setup()
        extension.createActions(self.window)

    def addDockWidgetFactory(self, factory: DockWidgetFactory) -> None:  # noqa: N802
        self.docks.append(factory.cls())
