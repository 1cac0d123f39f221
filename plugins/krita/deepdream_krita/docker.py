"""The "DeepDream" docker: settings generated from the shared table, Dream/Cancel, progress,
a message line and a small preview of the last result."""

from __future__ import annotations

from typing import Any

from deepdream_protocol.presets import PRESETS, find_preset, preset_fill
from deepdream_protocol.settings import Setting, layer_names
from krita import DockWidget, Krita

from . import controller, preferences
from .qt import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPixmap,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    Qt,
    QVBoxLayout,
    QWidget,
)

DOCKER_ID = "deepdream_krita_docker"
PREVIEW_SIZE = 160
# Text fields offered as editable drop-downs; the catalog fills them once a daemon answered.
_CHOICES = {"preset": ["", *PRESETS], "model": ["googlenet"], "layer": [""]}  # "": none
#: what the guide image's file dialog offers (the daemon reads what Pillow reads)
IMAGE_FILES = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif);;All files (*)"


def _widget_for(setting: Setting) -> QWidget:
    if setting.kind is bool:
        return QCheckBox()
    if setting.kind is int:
        box = QSpinBox()
        box.setRange(int(setting.minimum or 0), int(setting.maximum or 2**31 - 1))
        return box
    if setting.kind is float:
        box = QDoubleSpinBox()
        box.setDecimals(2)
        box.setSingleStep(0.1)
        box.setRange(float(setting.minimum or 0.0), float(setting.maximum or 1e9))
        return box
    combo = QComboBox()
    combo.setEditable(True)
    combo.addItems(_CHOICES.get(setting.name, []))
    if setting.name == "preset":
        for i, name in enumerate(PRESETS, start=1):
            combo.setItemData(i, PRESETS[name].description, Qt.ItemDataRole.ToolTipRole)
    return combo


def _get(widget: QWidget) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    return widget.currentText()


def _set(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        widget.setValue(value)
    else:
        widget.setCurrentText(str(value))


def _changed_signal(widget: QWidget) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.valueChanged
    return widget.currentTextChanged


def _refill(combo: QComboBox, items: list[str], keep: str, tips: dict[str, str]) -> None:
    """Replace a combo's choices, keeping ``keep`` as its text (typed values stay valid)."""
    combo.blockSignals(True)
    combo.clear()
    for item in items:
        combo.addItem(item)
        if tips.get(item):
            combo.setItemData(combo.count() - 1, tips[item], Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentText(keep)
    combo.blockSignals(False)
    combo.currentTextChanged.emit(keep)


class DeepDreamDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("DeepDream")
        self.fields: dict[str, QWidget] = {}
        form = QFormLayout()
        for setting in preferences.PLUGIN_SETTINGS:
            widget = _widget_for(setting)
            widget.setToolTip(setting.help)
            self.fields[setting.name] = widget
            form.addRow(setting.label, self._with_browse(widget) if setting.name == "guide"
                        else widget)
        self.dream_button = QPushButton("Dream")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.dream_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(PREVIEW_SIZE // 2)

        # The settings scroll; Dream, progress, message and preview always stay in view.
        settings = QWidget()
        settings.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        column = QVBoxLayout()
        column.addWidget(scroll, 1)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.message)
        column.addWidget(self.preview)
        body = QWidget()
        body.setLayout(column)
        self.setWidget(body)

        self.set_values(preferences.load_saved())
        # Choosing a preset shows its look in the fields; what they show is what runs.
        preset = self.fields["preset"]
        self.filled_from = preset.currentText().strip().lower()  # the look already shown
        preset.currentTextChanged.connect(self.fill_from_preset)
        preset.activated.connect(lambda *_: self.fill_from_preset(preset.currentText(), True))
        # Each change saves that one setting: another window's docker, showing what it
        # showed when made, must not write its other values over this one's.
        self._refreshing = False  # (a catalog refresh changes no setting of the artist's)
        for name, widget in self.fields.items():
            _changed_signal(widget).connect(lambda *_, name=name: self._save(name))
        self.runner = controller.runner()
        self.runner.progressed.connect(self._on_progress)
        self.runner.succeeded.connect(self._on_success)
        self.runner.failed.connect(self._on_failure)
        self.runner.refused.connect(self.message.setText)  # the running dream's bar stays
        self.runner.busy_changed.connect(self._on_busy)
        self._on_busy(self.runner.busy)  # (a docker of a window opened while one runs)
        self.dream_button.clicked.connect(self.dream)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.catalog: dict[str, Any] = {}
        self.fetcher = controller.CatalogFetcher(self)
        self.fetcher.fetched.connect(self._on_catalog)
        self.fields["model"].currentTextChanged.connect(self._offer_layers)
        self.fetcher.fetch()

    def _with_browse(self, field: QComboBox) -> QWidget:
        """``field`` with a button that picks its file (the guide image) in a dialog."""
        self.browse_button = QPushButton("…")
        self.browse_button.setToolTip("choose the guide image file")
        self.browse_button.clicked.connect(lambda *_: self._choose_file(field))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field, 1)
        row.addWidget(self.browse_button)
        box = QWidget()
        box.setLayout(row)
        return box

    def _choose_file(self, field: QComboBox) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Guide image", field.currentText().strip(),
                                              IMAGE_FILES)
        if path:  # (cancelled: the field keeps what it had)
            field.setCurrentText(path)

    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 - Krita's virtual
        pass  # the dream always targets the active document when Dream is pressed

    def values(self) -> dict[str, Any]:
        return {name: _get(widget) for name, widget in self.fields.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in self.fields:
                _set(self.fields[name], value)

    def fill_from_preset(self, name: str, again: bool = False) -> None:
        """Set every field but the seed to preset ``name``'s look (``preset_fill``).  Typing
        or a catalog refresh fills only for another preset than the one shown, so changes
        made after choosing it stay; picking it from the list (``again``) fills anew."""
        preset = find_preset(name)
        if preset is None or (preset.name == self.filled_from and not again):
            return
        self.filled_from = preset.name
        self.set_values(preset_fill(preset.name))

    def dream(self) -> None:
        document = Krita.instance().activeDocument()
        node = document.activeNode() if document is not None else None
        self.message.setText("")
        self.runner.start(document, node, self.values())

    def _save(self, name: str) -> None:
        if self._refreshing:
            return
        try:
            preferences.save_to_krita({**preferences.load_saved(),
                                       name: _get(self.fields[name])})
        except Exception as exc:  # a half-typed value: say so, keep the last saved one
            self.message.setText(str(exc))

    def _on_progress(self, percent: int, text: str) -> None:
        self.progress.setValue(percent)
        if text:
            self.message.setText(text)

    def _on_success(self, node: Any, message: str) -> None:
        self.message.setText(message)
        image = node.thumbnail(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setPixmap(QPixmap.fromImage(image))
        if not self.catalog:
            self.fetcher.fetch()  # the daemon may have been started by this dream

    def _on_catalog(self, catalog: dict[str, Any]) -> None:
        """Offer the daemon's presets and models; the typed values stay as they are."""
        self.catalog = catalog
        current = self.values()
        presets = catalog.get("presets") or {}
        models = catalog.get("models") or {}
        self._refreshing = True
        try:
            _refill(self.fields["preset"], ["", *sorted(presets)], current["preset"],
                    {name: p.get("description", "") for name, p in presets.items()})
            _refill(self.fields["model"], sorted(models), current["model"],
                    {name: m.get("description", "") for name, m in models.items()})
        finally:
            self._refreshing = False

    def _offer_layers(self, model: str) -> None:
        spec = (self.catalog.get("models") or {}).get(model)
        if not spec:
            return
        layer = self.fields["layer"].currentText()
        known = spec.get("layers") or {}
        names = layer_names(layer)  # (a list of this model's layers stays as typed)
        if not names or any(name not in known for name in names):
            layer = spec.get("default_layer") or layer  # another model's: this one's default
        _refill(self.fields["layer"], list(known), layer, {})

    def _on_failure(self, message: str) -> None:
        self.progress.setValue(0)
        self.message.setText(message)

    def _on_busy(self, busy: bool) -> None:
        self.dream_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
