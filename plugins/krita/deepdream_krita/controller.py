"""Runs one dream at a time without blocking Krita's UI.

Finding (or starting) the daemon can take seconds, so it happens on a helper thread; the
job itself is serviced from Qt's event loop: a QSocketNotifier on the client's fd plus a
QTimer as a safety net, because ZeroMQ's fd is edge-triggered and may stay quiet about
messages already queued.  The docker and the action share one runner.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from deepdream_protocol.client import Client, DaemonError, pixel_limit
from deepdream_protocol.messages import first_line
from deepdream_protocol.settings import wire_settings

from . import connection, job, preferences
from .pixels import DreamError
from .qt import READ, QApplication, QObject, QSocketNotifier, QTimer, pyqtSignal

POLL_MS = 100
CANCELLED = "cancelled; the document is unchanged"


class DreamRunner(QObject):
    progressed = pyqtSignal(int, str)  # percent 0..100, a short status text
    succeeded = pyqtSignal(object, str)  # the new layer (a krita.Node), the status line
    failed = pyqtSignal(str)  # one line; the document is unchanged
    refused = pyqtSignal(str)  # a second dream asked for while one runs; that one goes on
    busy_changed = pyqtSignal(bool)
    # from the helper thread: (attempt, problem, the daemon's pixel limit or None); problem
    # is "" when a daemon answers
    _daemon_checked = pyqtSignal(int, str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._prepared: job.PreparedDream | None = None
        self._settings: dict[str, Any] = {}
        self._client: Client | None = None
        self._job: Any = None
        self._outcome: tuple[str, Any] | None = None
        self._connecting = False  # the helper thread is looking for the daemon
        self._waiting = False  # the dream is back; Krita is still busy with the image
        self._pumping = False  # _pump is running (a progress slot may re-enter it)
        self._attempt = 0  # numbers each start, so a stale helper thread's answer is ignored
        self._notifier: QSocketNotifier | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._pump)
        self._daemon_checked.connect(self._submit)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def busy(self) -> bool:
        return self._prepared is not None

    def start(self, document: Any, node: Any, values: Mapping[str, Any]) -> bool:
        """Read the node and send it; the outcome arrives through the signals."""
        if self.busy:  # (not ``failed``: that would end the running dream's progress)
            self.refused.emit("a dream is already running; cancel it first")
            return False
        try:
            checked = preferences.complete(values)
            self._prepared = job.prepare(document, node, checked["use_selection"],
                                         checked["from_noise"])
        except DreamError as exc:
            self.failed.emit(str(exc))
            return False
        self._settings = wire_settings(checked)
        self._connecting = True
        self._attempt += 1
        self.busy_changed.emit(True)
        self.progressed.emit(0, "connecting to the DeepDream daemon…")
        threading.Thread(target=self._check_daemon, args=(self._attempt,),
                         name="deepdream-connect", daemon=True).start()
        return True

    def cancel(self) -> None:
        """Stop the dream; the document stays as it was."""
        if self._client is not None and self._job is not None:
            try:
                self._client.cancel(self._job)
                return  # the daemon confirms with "cancelled"
            except DaemonError:
                pass
        if self.busy and (self._connecting or self._waiting):
            self._end(CANCELLED)  # the helper thread's answer will find nothing to do

    def shutdown(self) -> None:
        """Krita is quitting: tell the daemon to stop, wait for nothing."""
        if self._client is not None and self._job is not None:
            try:
                self._client.cancel(self._job)
            except DaemonError:
                pass
        self._close()

    def _check_daemon(self, attempt: int) -> None:  # helper thread: no Qt or Krita objects
        try:
            hello = connection.start_daemon_if_needed()
        except DreamError as exc:
            self._daemon_checked.emit(attempt, str(exc) or "no DeepDream daemon", None)
            return
        except Exception as exc:  # unanswered, the docker would say "connecting…" for ever
            self._daemon_checked.emit(attempt, connection.daemon_message(exc), None)
            return
        self._daemon_checked.emit(attempt, "", pixel_limit(hello))

    def _submit(self, attempt: int, problem: str, max_pixels: int | None) -> None:
        prepared = self._prepared
        if attempt != self._attempt or not self._connecting or prepared is None:
            return  # cancelled while connecting
        self._connecting = False
        if problem:
            self._end(problem)
            return
        rect = prepared.rect
        try:
            client = Client()  # the config may have changed since the helper thread read it
        except (DaemonError, ValueError) as exc:
            self._end(connection.daemon_message(exc))
            return
        client.max_pixels = max_pixels  # a too-large layer is refused before it is sent
        try:
            self._job = client.submit(
                self._settings, prepared.pixels, rect.width, rect.height, prepared.fmt,
                mask=prepared.mask, on_progress=self._on_progress, on_result=self._on_result,
                on_error=self._on_error, on_cancelled=self._on_cancelled)
            fd = client.fileno()
        except DaemonError as exc:
            client.close()
            self._end(connection.daemon_message(exc))
            return
        except Exception as exc:  # a fault of the plug-in's own: said, and Dream usable again
            client.close()
            self._end(f"could not send the dream: {first_line(exc)}")
            return
        self._client = client
        self._notifier = QSocketNotifier(fd, READ, self)
        self._notifier.activated.connect(self._pump)
        self._timer.start()
        self.progressed.emit(0, "dreaming…")

    def _pump(self, *_: object) -> None:
        # One pump at a time: a slot on ``progressed`` may run an event loop (Image › Crop
        # does), where the timer fires again; the outer pump reads on once it returns.
        if self._client is None or self._pumping:
            return
        self._pumping = True
        try:
            self._pump_once()
        finally:
            self._pumping = False

    def _pump_once(self) -> None:
        assert self._client is not None
        try:
            # what arrived is handled (the callbacks record the outcome), and a daemon that
            # died or restarted is not waited on for ever
            self._client.watch(self._job)
        except DaemonError as exc:
            if self._outcome is None:
                self._end(connection.daemon_message(exc))
                return
        except Exception as exc:  # (as in _submit: never a docker stuck "dreaming")
            if self._outcome is None:
                self._end(f"the dream failed: {first_line(exc)}")
                return
        # Callbacks only record the outcome: the client is closed here, after it returned.
        outcome, self._outcome = self._outcome, None
        if outcome is None:
            return
        kind, payload = outcome
        prepared = self._prepared
        self._drop_client()
        if kind != "result" or prepared is None:
            self._end(payload)
            return
        self._add_when_idle(self._attempt, payload)

    def _add_when_idle(self, attempt: int, dreamed: bytes) -> None:
        """Add the dream once Krita has done what the user set going meanwhile (a stroke
        still being painted, a flip of the image): the layer is compared with what was read,
        and the dream placed, as it is then."""
        prepared = self._prepared
        if attempt != self._attempt or prepared is None:
            return  # cancelled while waiting
        if not job.idle(prepared.document):
            if not self._waiting:
                self._waiting = True
                self.progressed.emit(100, "dreamed; waiting for Krita to finish…")
            QTimer.singleShot(POLL_MS, lambda: self._add_when_idle(attempt, dreamed))
            return
        self._waiting = False
        # Still busy while the layer is added: Krita may run the event loop meanwhile.
        try:
            node = prepared.finish(dreamed)
        except DreamError as exc:
            self._end(str(exc))
            return
        except Exception as exc:  # e.g. the document was closed while dreaming
            self._end(f"could not add the result layer: {first_line(exc)}")
            return
        self._close()
        self.progressed.emit(100, "done")
        self.succeeded.emit(node, prepared.report(node))

    def _on_progress(self, _job: Any, info: Mapping[str, Any]) -> None:
        fraction = min(max(float(info.get("fraction", 0.0)), 0.0), 1.0)
        octave, octaves = info.get("octave"), info.get("octaves")
        text = f"dreaming: octave {octave} of {octaves}" if octaves else "dreaming…"  # 1-based
        self.progressed.emit(round(100 * fraction), text)

    def _on_result(self, _job: Any, data: bytes) -> None:
        self._outcome = ("result", data)

    def _on_error(self, _job: Any, exc: Exception) -> None:
        self._outcome = ("error", connection.daemon_message(exc))

    def _on_cancelled(self, _job: Any = None) -> None:
        self._outcome = ("cancelled", CANCELLED)

    def _end(self, message: str) -> None:
        self._close()
        self.failed.emit(message)

    def _drop_client(self) -> None:
        self._timer.stop()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._client is not None:
            self._client.close()
        self._client = self._job = self._outcome = None

    def _close(self) -> None:
        self._drop_client()
        was_busy = self.busy
        self._prepared = None
        self._connecting = self._waiting = False
        if was_busy:
            self.busy_changed.emit(False)


_RUNNER: DreamRunner | None = None


def runner() -> DreamRunner:
    """The one runner shared by the docker(s) and the action."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = DreamRunner()
    return _RUNNER


class CatalogFetcher(QObject):
    """Asks the daemon for its models, layers and presets on a helper thread."""

    fetched = pyqtSignal(object)  # the catalog dict; never emitted when no daemon answers
    TIMEOUT_S = 2.0

    def fetch(self) -> None:
        threading.Thread(target=self._run, name="deepdream-catalog", daemon=True).start()

    def _run(self) -> None:  # helper thread: touches no Qt widget or Krita object
        try:
            with Client(timeout=self.TIMEOUT_S) as client:
                catalog = client.catalog()
        except (DaemonError, OSError, ValueError):
            return  # no daemon yet: the docker keeps its defaults until the first dream
        self.fetched.emit(catalog)
