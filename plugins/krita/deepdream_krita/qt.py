"""The one place that picks PyQt5 (Krita 5.x) or PyQt6 (Krita 5.3+/6.x).

Krita's own ``krita`` module imports its PyQt first and refuses the other one, so whichever
binding is already loaded is the right one.  Everything else imports Qt names from here and
uses fully scoped enums (``Qt.AlignmentFlag.AlignLeft``), which both bindings accept.
"""

from __future__ import annotations

import sys

try:  # inside Krita: loads the binding Krita was built with
    import krita  # noqa: F401
except ImportError:  # outside Krita (unit tests): fall through to whatever is installed
    pass

# (QtCore, not the package: a probe elsewhere, ``from PyQt6 import QtCore`` failing in a
# Krita 5, may leave the package in sys.modules)
if "PyQt6.QtCore" in sys.modules:
    from PyQt6 import QtCore, QtGui, QtWidgets
    QT_API = "PyQt6"
elif "PyQt5.QtCore" in sys.modules:
    from PyQt5 import QtCore, QtGui, QtWidgets
    QT_API = "PyQt5"
else:
    try:
        from PyQt5 import QtCore, QtGui, QtWidgets
        QT_API = "PyQt5"
    except ImportError:
        from PyQt6 import QtCore, QtGui, QtWidgets
        QT_API = "PyQt6"

Qt = QtCore.Qt
QObject = QtCore.QObject
QTimer = QtCore.QTimer
QSocketNotifier = QtCore.QSocketNotifier
pyqtSignal = QtCore.pyqtSignal
QPixmap = QtGui.QPixmap
QIcon = QtGui.QIcon
QApplication = QtWidgets.QApplication
QWidget = QtWidgets.QWidget
QFormLayout = QtWidgets.QFormLayout
QVBoxLayout = QtWidgets.QVBoxLayout
QHBoxLayout = QtWidgets.QHBoxLayout
QComboBox = QtWidgets.QComboBox
QSpinBox = QtWidgets.QSpinBox
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QCheckBox = QtWidgets.QCheckBox
QPushButton = QtWidgets.QPushButton
QProgressBar = QtWidgets.QProgressBar
QLabel = QtWidgets.QLabel
QMessageBox = QtWidgets.QMessageBox
QFileDialog = QtWidgets.QFileDialog
QScrollArea = QtWidgets.QScrollArea

READ = QSocketNotifier.Type.Read

