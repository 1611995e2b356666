"""darknet's training output turned into typed events, and the training history they make.

The patterns below are the ``printf`` formats of the pinned darknet (src/detector.c ``train_detector`` and
``validate_detector_map``, src/parser.c, src/utils.c, src/data.c, src/dark_cuda.c); each quotes the format it
reads. :class:`TrainingLogParser` takes output in chunks of any size (a pipe read, a partial line, stdout and
stderr mixed), drops terminal control sequences (darknet clears the screen and rings the bell every iteration)
and yields events:

>>> parser = TrainingLogParser()
>>> for event in parser.feed(chunk_from_the_child):
...     history.add(event)
>>> events = parser.close()                      # whatever the last, unterminated line held

:class:`History` keeps one row per iteration (with the mAP where one was measured), survives a resumed run,
and writes CSV and a loss/mAP chart (PNG, matplotlib's Agg backend, no display needed).
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ._typing import PathLike
from .atomic import atomic_write_bytes

__all__ = [
    "IterationEvent", "MapEvent", "ClassAP", "BestMapEvent", "SavedWeightsEvent", "LoadingWeightsEvent",
    "WarningEvent", "ErrorEvent", "TrainingDoneEvent", "Event", "TrainingLogParser", "parse_log", "History",
    "HistoryRow",
]


# --- events ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IterationEvent:
    """One training iteration (``" %d: %f, %f avg loss, %f rate, %lf seconds, %d images, %f hours left"``)."""

    iteration: int
    max_batches: Optional[int]        # from the "%d/%d: loss=..." line before it; None if that was lost
    loss: float
    avg_loss: float
    rate: float                       # learning rate
    seconds: float                    # time of this iteration, data loading excluded
    images: int                       # images seen so far (iteration * batch)
    hours_left: float                 # darknet's estimate; -1 on the first iteration
    load_seconds: Optional[float] = None  # "Loaded: %lf seconds" before it: waiting for data


@dataclass(frozen=True)
class ClassAP:
    """``"class_id = %d, name = %s, ap = %2.2f%%   \\t (TP = %d, FP = %d)"``."""

    class_id: int
    name: str
    ap: float                         # fraction, 0..1
    tp: int
    fp: int


@dataclass(frozen=True)
class MapEvent:
    """An mAP measurement. Fractions (0..1); the details are None when their lines were not seen."""

    iteration: Optional[int]          # the training iteration it was measured after; None outside training
    map: float
    iou_thresh: float = 0.5
    conf_thresh: Optional[float] = None
    precision: Optional[float] = None
    recall: Optional[float] = None
    f1: Optional[float] = None
    tp: Optional[int] = None
    fp: Optional[int] = None
    fn: Optional[int] = None
    avg_iou: Optional[float] = None
    classes: Tuple[ClassAP, ...] = ()

    @property
    def map50(self) -> Optional[float]:
        """mAP@0.50, when that is the threshold it was measured at."""
        return self.map if abs(self.iou_thresh - 0.5) < 1e-6 else None


@dataclass(frozen=True)
class BestMapEvent:
    """``"New best mAP!"``: darknet saves ``<cfg>_best.weights`` next."""

    iteration: Optional[int]
    map: Optional[float]


@dataclass(frozen=True)
class SavedWeightsEvent:
    """``"Saving weights to %s"`` (parser.c:save_weights_upto)."""

    path: str
    iteration: Optional[int]

    @property
    def kind(self) -> str:
        """"best", "last", "final", "ema" or "iteration" (``<cfg>_<N>.weights``), from darknet's file names."""
        stem = Path(self.path).stem
        for kind in ("best", "last", "final", "ema"):
            if stem.endswith("_" + kind):
                return kind
        return "iteration" if re.search(r"_\d+$", stem) else "other"


@dataclass(frozen=True)
class LoadingWeightsEvent:
    """``"Loading weights from %s..."``."""

    path: str


@dataclass(frozen=True)
class WarningEvent:
    """Something wrong that darknet carries on with (a missing label file, a wrong annotation)."""

    message: str
    path: Optional[str] = None


@dataclass(frozen=True)
class ErrorEvent:
    """Something darknet stops on, or reports as an error: ``kind`` is "darknet" (its ``error()``: the
    location line then the message), "file" (``"Couldn't open file: %s"``), "cuda" or "other"."""

    message: str
    kind: str = "other"
    location: Optional[str] = None
    path: Optional[str] = None


@dataclass(frozen=True)
class TrainingDoneEvent:
    """The line darknet prints after saving ``<cfg>_final.weights``."""


Event = Union[IterationEvent, MapEvent, BestMapEvent, SavedWeightsEvent, LoadingWeightsEvent, WarningEvent,
              ErrorEvent, TrainingDoneEvent]


# --- patterns ------------------------------------------------------------------------------------------------

# printf's %f of a float: glibc writes NaN as "nan"/"-nan" and infinity as "inf"/"-inf"
_F = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?nan|-?inf)"
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# detector.c train_detector
_ITERATION = re.compile(
    rf"(?:^|\s)(\d+): {_F}, {_F} avg loss, {_F} rate, {_F} seconds, (-?\d+) images, {_F} hours left")
_PROGRESS = re.compile(rf"(\d+)/(\d+): loss={_F} (?:map={_F} best={_F} )?hours left={_F}")
_LOADED = re.compile(rf"Loaded: {_F} seconds")
_TRAIN_MAP = re.compile(rf"mean_average_precision \(mAP@{_F}\) = {_F}")
_NEW_BEST = re.compile(r"New best mAP!")
_DONE = re.compile(r"If you want to train from the beginning, then use flag in the end of training command: -clear")
# detector.c validate_detector_map
_CLASS_AP = re.compile(rf"class_id = (\d+), name = (.*), ap = {_F}%\s+\(TP = (\d+), FP = (\d+)\)")
_PRECISION = re.compile(rf"for conf_thresh = {_F}, precision = {_F}, recall = {_F}, F1-score = {_F}")
_COUNTS = re.compile(rf"for conf_thresh = {_F}, TP = (\d+), FP = (\d+), FN = (\d+), average IoU = {_F} %")
_MAP = re.compile(rf"mean average precision \(mAP@{_F}\) = {_F}, or")
# parser.c, utils.c, data.c, dark_cuda.c
_SAVING = re.compile(r"Saving weights to (.+?)\s*$")
_LOADING = re.compile(r"Loading weights from (.+?)\.\.\.")
_ERROR_LOCATION = re.compile(r"Darknet error location: (.+?)\s*$")
_FILE_ERROR = re.compile(r"Couldn't open file: (.+?)\s*$")
_CUDA_ERROR = re.compile(r"\b(?:CUDA|cuDNN|cuBLAS|cudaError_t)\b.*\bError\b.*")
_NO_LABEL = re.compile(r"Can't open label file\. \(This can be normal only if you use MSCOCO\): (.+?)\s*$")
_WRONG_ANNOTATION = re.compile(r"Wrong annotation: (.*?), file: (.+?)\s*$")
_CANNOT_LOAD = re.compile(r'Cannot load image "(.+?)"')   # image.c load_image_stb: it goes on with a blank image
_OTHER_ERROR = re.compile(r"(?<!\S)Error[:!].*")


def _number(text: str) -> float:
    return float(text)  # float() reads "nan", "-nan", "inf" like printf writes them


class TrainingLogParser:
    """Incremental parser: :meth:`feed` text as it arrives, :meth:`close` at the end."""

    def __init__(self) -> None:
        self._pending = ""                       # the unterminated end of the text so far
        self.iteration: Optional[int] = None     # the last iteration seen
        self.max_batches: Optional[int] = None
        self._load_seconds: Optional[float] = None
        self._map_details: dict = {}
        self._classes: List[ClassAP] = []
        self._last_map: Optional[MapEvent] = None
        self._error_location: Optional[str] = None

    def feed(self, text: Union[str, bytes]) -> List[Event]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        lines = re.split(r"[\r\n]", self._pending + text)
        self._pending = lines.pop()
        events: List[Event] = []
        for line in lines:
            events.extend(self._line(line))
        return events

    def close(self) -> List[Event]:
        """Parse what is left (a last line without a newline) and report an error whose message never came."""
        events = self._line(self._pending) if self._pending else []
        self._pending = ""
        if self._error_location is not None:
            events.append(ErrorEvent("darknet stopped with an error", "darknet", self._error_location))
            self._error_location = None
        return events

    def _line(self, raw: str) -> List[Event]:
        line = _CONTROL.sub("", raw)
        if not line.strip():
            return []
        if self._error_location is not None:  # error() prints the location, then perror(msg)
            location, self._error_location = self._error_location, None
            return [ErrorEvent(line.strip(), "darknet", location)]
        events: List[Event] = []
        match = _PROGRESS.search(line)
        if match:
            self.max_batches = int(match.group(2))
        match = _ITERATION.search(line)
        if match:
            events.append(self._iteration(match))
            return events
        match = _LOADED.search(line)
        if match:
            self._load_seconds = _number(match.group(1))
            return events
        for handler in (self._map_lines, self._weights_lines, self._problem_lines):
            found = handler(line)
            if found is not None:
                events.extend(found)
                break
        return events

    def _iteration(self, match: "re.Match[str]") -> IterationEvent:
        iteration = int(match.group(1))
        if self.iteration is not None and iteration < self.iteration:
            self._last_map = None  # a resumed run: its iterations start again from the saved weights
        self.iteration = iteration
        event = IterationEvent(iteration, self.max_batches, _number(match.group(2)), _number(match.group(3)),
                               _number(match.group(4)), _number(match.group(5)), int(match.group(6)),
                               _number(match.group(7)), self._load_seconds)
        self._load_seconds = None
        return event

    def _map_lines(self, line: str) -> Optional[List[Event]]:
        match = _CLASS_AP.search(line)
        if match:
            self._classes.append(ClassAP(int(match.group(1)), match.group(2), _number(match.group(3)) / 100,
                                         int(match.group(4)), int(match.group(5))))
            return []
        match = _PRECISION.search(line)
        if match:
            self._map_details.update(conf_thresh=_number(match.group(1)), precision=_number(match.group(2)),
                                     recall=_number(match.group(3)), f1=_number(match.group(4)))
            return []
        match = _COUNTS.search(line)
        if match:
            self._map_details.update(conf_thresh=_number(match.group(1)), tp=int(match.group(2)),
                                     fp=int(match.group(3)), fn=int(match.group(4)),
                                     avg_iou=_number(match.group(5)) / 100)
            return []
        match = _MAP.search(line)
        if match:
            event = MapEvent(self.iteration, _number(match.group(2)), _number(match.group(1)),
                             classes=tuple(self._classes), **self._map_details)
            self._classes, self._map_details = [], {}
            self._last_map = event
            return [event]
        match = _TRAIN_MAP.search(line)
        if match:  # training repeats the value validate_detector_map just printed; report it once
            if self._last_map is not None and self._last_map.iteration == self.iteration:
                return []
            event = MapEvent(self.iteration, _number(match.group(2)), _number(match.group(1)))
            self._last_map = event
            return [event]
        if _NEW_BEST.search(line):
            return [BestMapEvent(self.iteration, self._last_map.map if self._last_map else None)]
        if _DONE.search(line):
            return [TrainingDoneEvent()]
        return None

    def _weights_lines(self, line: str) -> Optional[List[Event]]:
        match = _SAVING.search(line)
        if match:
            return [SavedWeightsEvent(match.group(1), self.iteration)]
        match = _LOADING.search(line)
        if match:
            return [LoadingWeightsEvent(match.group(1))]
        return None

    def _problem_lines(self, line: str) -> Optional[List[Event]]:
        match = _ERROR_LOCATION.search(line)
        if match:
            self._error_location = match.group(1)
            return []
        match = _FILE_ERROR.search(line)
        if match:
            return [ErrorEvent(match.group(0).strip(), "file", path=match.group(1))]
        match = _CUDA_ERROR.search(line)
        if match:
            return [ErrorEvent(match.group(0).strip(), "cuda")]
        match = _NO_LABEL.search(line)
        if match:
            return [WarningEvent("label file missing (the image counts as having no objects)", match.group(1))]
        match = _WRONG_ANNOTATION.search(line)
        if match:
            return [WarningEvent(f"wrong annotation: {match.group(1)}", match.group(2))]
        match = _CANNOT_LOAD.search(line)
        if match:
            return [WarningEvent("darknet cannot load this image and trains on a blank 10x10 one instead",
                                 match.group(1))]
        match = _OTHER_ERROR.search(line)
        if match:
            return [ErrorEvent(match.group(0).strip())]
        return None


def parse_log(text_or_chunks: Union[str, Iterable[str]]) -> List[Event]:
    """All events of a complete log (a string, or chunks such as a file's lines)."""
    parser = TrainingLogParser()
    events: List[Event] = []
    for chunk in [text_or_chunks] if isinstance(text_or_chunks, str) else text_or_chunks:
        events.extend(parser.feed(chunk))
    return events + parser.close()


# --- history ------------------------------------------------------------------------------------------------

@dataclass
class HistoryRow:
    iteration: int
    loss: float
    avg_loss: float
    rate: float
    seconds: float
    images: int
    hours_left: float
    map: Optional[float] = None       # mAP (fraction) measured after this iteration, if any

    def as_dict(self) -> dict:
        return asdict(self)


_INT_COLUMNS = frozenset({"iteration", "images"})


@dataclass
class History:
    """One row per iteration, in iteration order; a resumed run replaces the rows from its first iteration on."""

    rows: List[HistoryRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[HistoryRow]:
        return iter(self.rows)

    def add(self, event: Event) -> None:
        """Take an :class:`IterationEvent` or :class:`MapEvent`; other events are ignored."""
        if isinstance(event, IterationEvent):
            while self.rows and self.rows[-1].iteration >= event.iteration:
                self.rows.pop()
            self.rows.append(HistoryRow(event.iteration, event.loss, event.avg_loss, event.rate, event.seconds,
                                        event.images, event.hours_left))
        elif isinstance(event, MapEvent) and self.rows:
            target = next((r for r in reversed(self.rows) if r.iteration == event.iteration), self.rows[-1])
            target.map = event.map

    def extend(self, events: Iterable[Event]) -> "History":
        for event in events:
            self.add(event)
        return self

    def tail(self, n: int = 5) -> List[HistoryRow]:
        return self.rows[-n:] if n > 0 else []

    @property
    def maps(self) -> List[Tuple[int, float]]:
        """(iteration, mAP) of every measurement."""
        return [(r.iteration, r.map) for r in self.rows if r.map is not None]

    @property
    def best_map(self) -> Optional[float]:
        values = [m for _, m in self.maps]
        return max(values) if values else None

    def to_csv(self, path: PathLike) -> Path:
        """Write all rows (an empty ``map`` cell where none was measured), atomically: a resumed run reads the
        file back, so it is either the previous history or the whole new one."""
        path = Path(path)
        names = [f.name for f in fields(HistoryRow)]
        stream = io.StringIO(newline="")
        writer = csv.writer(stream)
        writer.writerow(names)
        for row in self.rows:
            writer.writerow(["" if getattr(row, n) is None else repr(getattr(row, n)) for n in names])
        atomic_write_bytes(path, stream.getvalue().encode("utf-8"))
        return path

    @classmethod
    def from_csv(cls, path: PathLike) -> "History":
        """Read :meth:`to_csv` 's file back (to continue a history when training resumes)."""
        rows = []
        with open(path, newline="", encoding="utf-8") as stream:
            for record in csv.DictReader(stream):
                # each column's type depends on its name: the dataclass's fields, by keyword
                values: Dict[str, Any] = {
                    name: None if not text else int(text) if name in _INT_COLUMNS else float(text)
                    for name, text in record.items()}
                rows.append(HistoryRow(**values))
        return cls(rows)

    def plot(self, path: PathLike, title: Optional[str] = None) -> Path:
        """Loss (each iteration, and darknet's running average) and mAP against iteration, as a PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(9, 5), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        iterations = [r.iteration for r in self.rows]
        axes.plot(iterations, [r.loss for r in self.rows], color="tab:blue", alpha=0.25, linewidth=0.8,
                  label="loss")
        axes.plot(iterations, [r.avg_loss for r in self.rows], color="tab:blue", linewidth=1.6, label="avg loss")
        finite = sorted(r.avg_loss for r in self.rows if math.isfinite(r.avg_loss))
        if finite:  # leave the first iterations' huge losses off the top so the curve stays readable
            axes.set_ylim(0, max(finite[int(0.95 * (len(finite) - 1))] * 1.3, 1e-3))
        axes.set_xlabel("iteration")
        axes.set_ylabel("loss", color="tab:blue")
        axes.grid(True, alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        if self.maps:
            right = axes.twinx()
            xs, ys = zip(*self.maps)
            right.plot(xs, [100 * y for y in ys], color="tab:red", marker="o", linewidth=1.4, label="mAP")
            right.set_ylim(0, 100)
            right.set_ylabel("mAP %", color="tab:red")
            more_handles, more_labels = right.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        axes.legend(handles, labels, loc="upper center", ncol=3, fontsize="small")
        best = self.best_map
        figure.suptitle(title or (f"best mAP {100 * best:.1f} %" if best is not None else "training loss"))
        path = Path(path)
        figure.savefig(path, format="png")
        return path
