"""Training from Python: darknet's own ``train_detector`` in a child process, watched from here.

>>> run = train("ds/obj.data", "logos.cfg", gpus=[0], map_every=1000)     # progress bar with loss, mAP, ETA
>>> run.best_weights, run.history.tail()

The child (``python -m pydarknet._child``) runs darknet's training loop unchanged; this process reads what it
prints, turns it into events (iteration, loss, learning rate, mAP, saved weights), keeps a history (CSV and a
loss/mAP chart in the backup folder), and survives whatever happens to the child.  Everything darknet would die
on is checked here first and reported in Python terms.  Ctrl-C (or closing the event iterator) asks the child to
save ``<backup>/<cfg>_interrupted.weights`` after the current iteration and stop; ``resume=True`` continues from
the newest weights in the backup folder.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

from ._child import TrainingJob, child_command
from ._typing import PathLike
from .atomic import atomic_write_bytes
from .darknet_files import format_data_file, list_images, read_data_file, read_image_list, resolve_data_path
from .errors import ConfigError, CudaError, DatasetError, TrainingError, WeightsError
from .training_log import (
    ErrorEvent,
    Event,
    History,
    IterationEvent,
    MapEvent,
    SavedWeightsEvent,
    TrainingDoneEvent,
    TrainingLogParser,
    WarningEvent,
)

if TYPE_CHECKING:
    from .cfg import Cfg

log = logging.getLogger(__name__)

# printed by src/pdn_train.c when a stop request made darknet save its weights mid-run
SHOWN_WARNINGS = 5   # darknet's warnings (an image it cannot load, a missing label) shown above the progress bar
_STOPPED = re.compile(r"pydarknet: stopped after iteration (\d+), weights saved to (.+?)\s*$", re.M)


@dataclass
class TrainingRun:
    """What a training run left behind."""

    data_file: Path
    cfg_file: Path
    backup_dir: Path
    history: History = field(default_factory=History)
    weights: Dict[str, Path] = field(default_factory=dict)   # kind (last, final, best, interrupted, N) -> file
    returncode: Optional[int] = None
    interrupted: bool = False
    finished: bool = False
    log_file: Optional[Path] = None
    history_file: Optional[Path] = None
    chart_file: Optional[Path] = None
    elapsed_seconds: float = 0.0
    stopped_at: Optional[int] = None      # iteration the interrupted weights hold, when stopped early

    @property
    def iterations(self) -> int:
        """Iterations the newest weights have been trained for."""
        last = self.history.rows[-1].iteration if self.history.rows else 0
        return max(last, self.stopped_at or 0)

    @property
    def best_weights(self) -> Optional[Path]:
        """The weights with the best mAP if mAP was measured, else the final (or latest) ones."""
        for kind in ("best", "final", "interrupted", "last"):
            if kind in self.weights:
                return self.weights[kind]
        return self.last_weights

    @property
    def final_weights(self) -> Optional[Path]:
        return self.weights.get("final")

    @property
    def last_weights(self) -> Optional[Path]:
        """The most recently written weights file."""
        existing = [p for p in self.weights.values() if p.exists()]
        return max(existing, key=lambda p: p.stat().st_mtime) if existing else None

    def __repr__(self) -> str:
        state = "finished" if self.finished else "interrupted" if self.interrupted else f"exit {self.returncode}"
        best = self.history.best_map
        return (f"TrainingRun({self.cfg_file.name}, {self.iterations} iterations, {state}"
                + (f", best mAP {best:.1%}" if best is not None else "") + f", best weights {self.best_weights})")


# --- checks before darknet sees anything ------------------------------------------------------------------
def _cfg_base(cfg: Path) -> str:
    """darknet's basecfg(): the cfg's file name up to its first dot (``model_v1.5.cfg`` -> ``model_v1``);
    darknet names the weights it saves after it."""
    return cfg.name.split(".", 1)[0]


def _check_gpus(gpus: Optional[Sequence[int]]) -> List[int]:
    from . import _native

    cuda_build = _native.build_info()["cuda"]
    if gpus is None:
        gpus = [0] if cuda_build and _native.cuda_devices() else []
    gpus = [int(g) for g in gpus]
    if not gpus:
        if cuda_build:
            raise CudaError(_native.cpu_unsupported_in_cuda_build("training"))
        return []
    if not cuda_build:
        raise CudaError(f"GPUs {gpus} were requested, but this pydarknet was built without CUDA "
                        f"({_native.build_info()['notes']}); train on the CPU with gpus=[] (--gpus cpu)")
    visible = len(_native.cuda_devices())
    bad = [g for g in gpus if g < 0 or g >= visible]
    if bad:
        raise CudaError(f"GPU {bad} requested, but {visible} GPU(s) are visible")
    return gpus


def cfg_file(cfg) -> Path:
    """The file of a cfg given as a path or as a saved pydarknet.cfg.Cfg (what make_cfg(..., out=) returns)."""
    from .cfg import Cfg

    if isinstance(cfg, Cfg):
        if cfg.path is None:
            raise ConfigError("this cfg has not been saved: pass out= to make_cfg, or call cfg.save(path)")
        return Path(cfg.path)
    return Path(cfg)


@dataclass(frozen=True)
class PreparedRun:
    """What :func:`prepare_training` / :func:`prepare_evaluation` checked and wrote."""

    data_file: Path        # the data file the child reads: every path in it resolved and absolute
    cfg: Path
    backup_dir: Path       # training: where weights go; evaluation: a scratch folder the caller removes
    classes: int
    network: "Cfg"         # the parsed cfg (pydarknet.cfg.Cfg)


def prepare_training(data: PathLike, cfg, pretrained: Optional[PathLike] = None,
                     backup: Optional[PathLike] = None, need_valid: bool = False) -> PreparedRun:
    """Check everything darknet would die on (or silently get wrong) before training, and write the data file the
    child reads (all paths resolved) into the backup folder."""
    data, cfg_path, options, classes = _read_inputs(data, cfg, ("classes", "train", "names"))
    report = _check_dataset(data, ("train", "valid"))
    if need_valid and "valid" not in options:
        raise DatasetError("has no valid= list, needed to measure mAP during training (map_every)", path=data)
    if report.images.get("train", 0) == 0 and not report.errors:
        raise DatasetError("the train list is empty: nothing to train on",
                           path=resolve_data_path(options["train"], data))
    _refuse_problems(report, data, "training")
    network = _check_network(cfg_path, classes, training=True)
    if pretrained is not None:
        from .netfiles import check_weights_header

        check_weights_header(pretrained)
    backup_dir = Path(backup) if backup is not None else resolve_data_path(options.get("backup", "backup"), data)
    backup_dir = _usable_backup_dir(backup_dir, "")
    child_data = _write_child_data(data, options, classes, cfg_path, backup_dir, ("train", "valid"))
    return PreparedRun(child_data, cfg_path, backup_dir, classes, network)


def prepare_evaluation(data: PathLike, cfg) -> PreparedRun:
    """The checks of :func:`prepare_training` for darknet's mAP on the valid list: an inference cfg (batch=1) and a
    data file without a train list will do.  The resolved data file goes to a new temporary folder (returned as
    ``backup_dir``: the caller removes it), not beside a training run's weights, which reads its own data file
    again at every mAP pass."""
    data, cfg_path, options, classes = _read_inputs(data, cfg, ("classes", "names"))
    report = _check_dataset(data, ("valid",))
    if "valid" not in options:
        raise DatasetError("has no valid= list, needed to measure mAP", path=data)
    _refuse_problems(report, data, "evaluation")
    network = _check_network(cfg_path, classes, training=False)
    scratch = Path(tempfile.mkdtemp(prefix="pydarknet-eval-"))
    try:   # nobody else would remove the scratch folder
        scratch = _usable_backup_dir(scratch, " (this is the temporary folder: set TMPDIR to one without)")
        child_data = _write_child_data(data, options, classes, cfg_path, scratch, ("valid",))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return PreparedRun(child_data, cfg_path, scratch, classes, network)


def _read_inputs(data: PathLike, cfg, needed: Sequence[str]) -> Tuple[Path, Path, Dict[str, str], int]:
    """(data file, cfg file, the data file's options, classes), both files present and the needed keys there."""
    data = Path(data)
    cfg_path = cfg_file(cfg)
    if not data.is_file():
        raise DatasetError("data file not found", path=data)
    if not cfg_path.is_file():
        raise ConfigError("network cfg not found", path=cfg_path)
    options = read_data_file(data)
    for key in needed:
        if key not in options:
            raise DatasetError(f"has no {key}= line (darknet needs {', '.join(needed)})", path=data)
    try:
        classes = int(options["classes"])
    except ValueError:
        raise DatasetError(f"classes={options['classes']!r} is not a number", path=data) from None
    return data, cfg_path, options, classes


def _check_dataset(data: Path, splits: Sequence[str]):
    """The dataset as darknet will read it (image headers, labels): ``datasets.check``'s report."""
    from .datasets.check import check_dataset

    return check_dataset(data, plot_file=False, verify_images=False, progress=False, splits=tuple(splits))


def _refuse_problems(report, data: Path, purpose: str) -> None:
    if report.errors:
        shown = "\n  ".join(str(p) for p in report.errors[:10])
        more = f"\n  ... and {len(report.errors) - 10} more" if len(report.errors) > 10 else ""
        raise DatasetError(f"is not ready for {purpose} ({len(report.errors)} problem(s)):\n  {shown}{more}",
                           path=data)


def _check_network(cfg_path: Path, classes: int, training: bool):
    from .cfg import read_cfg, validate_cfg

    network = read_cfg(cfg_path)
    validate_cfg(network, classes=classes, training=training)
    return network


def _usable_backup_dir(folder: Path, hint: str) -> Path:
    """``folder`` made, absolute (the child runs in it: every path it gets must be absolute), writable, and
    without whitespace (darknet deletes it from obj.data lines)."""
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise DatasetError("backup folder is not writable", path=folder)
    if any(c.isspace() for c in str(folder)):
        raise DatasetError("darknet removes whitespace from obj.data lines: use a backup folder without spaces"
                           + hint, path=folder)
    return folder


def _write_child_data(data: Path, options: Dict[str, str], classes: int, cfg_path: Path, folder: Path,
                      splits: Sequence[str]) -> Path:
    """``<folder>/<cfg>.data``: the data file with every path resolved as pydarknet's readers resolve it."""
    resolved = {"classes": str(classes), "names": str(resolve_data_path(options["names"], data)),
                "backup": str(folder)}
    for key in splits:
        if key in options:
            resolved[key] = str(_list_for_darknet(resolve_data_path(options[key], data), folder,
                                                  f"{_cfg_base(cfg_path)}_{key}.txt"))
    for key, value in resolved.items():
        if any(c.isspace() for c in value):
            raise DatasetError(f"{key} path {value!r} contains whitespace, which darknet deletes when it reads "
                               f"the data file: move the dataset to a path without spaces", path=data)
    child_data = folder / f"{_cfg_base(cfg_path)}.data"
    atomic_write_bytes(child_data, format_data_file(resolved, "=").encode(), DatasetError)
    return child_data


def _list_for_darknet(list_file: Path, folder: Path, name: str) -> Path:
    """``list_file`` itself where every entry is absolute, else a copy in ``folder`` with each entry resolved as
    every pydarknet reader resolves it (``list_images``): darknet opens entries from its working directory, and the
    child runs in the backup folder."""
    if all(Path(line).is_absolute() for line in read_image_list(list_file)):
        return list_file
    resolved = folder / name
    text = "".join(f"{p}\n" for p in list_images(list_file))
    atomic_write_bytes(resolved, text.encode("utf-8", "surrogateescape"), DatasetError)
    return resolved


def _check_iterations_left(weights: Path, network, cfg_path: Path) -> None:
    """darknet continues the iteration count stored in starting weights: weights trained past this cfg's
    max_batches (COCO weights, say) would train 0 iterations and overwrite <cfg>_final.weights."""
    from .netfiles import weights_images_seen

    batch = network.net.get_int("batch", 1) or 1
    max_batches = network.net.get_int("max_batches", 0) or 0
    done = weights_images_seen(weights) // batch
    if max_batches and done >= max_batches:
        raise WeightsError(f"these weights have already been trained for {done} iterations (images seen / batch "
                           f"{batch}), not fewer than max_batches={max_batches} of {cfg_path.name}: darknet would "
                           f"train 0 iterations. To start from them, count from 0: clear=True (--clear)",
                           path=weights)


def _map_epochs(map_every: int, network, n_train: int) -> int:
    """darknet measures mAP every ``mAP_epochs * n_train / batch`` iterations (at least every 100): the whole
    number of epochs closest to map_every iterations.  An epoch can be under one iteration (fewer images than a
    batch), so this is not map_every / max(1, iterations per epoch)."""
    batch = network.net.get_int("batch", 64) or 64
    return max(1, round(map_every * batch / max(1, n_train)))


# --- the child process and its events ----------------------------------------------------------------------
class TrainingProcess:
    """An iterator over the events of a training run in a child process; ``.run`` holds the result.

    Closing it early (``close()``, leaving a ``with`` block, or Ctrl-C while iterating) asks the child to save
    its weights and stop, and waits for it."""

    def __init__(self, job: TrainingJob, run: TrainingRun, log_file: Path):
        self.run = run
        self._parser = TrainingLogParser()
        self._tail: Deque[str] = deque(maxlen=60)
        self._partial = ""
        self._errors: List[ErrorEvent] = []
        self._log = open(log_file, "a", encoding="utf-8", errors="replace")
        self._started = time.monotonic()
        self._closed = False
        self._killed = False   # by a second Ctrl-C: an interrupted run, not a crash
        popen_kwargs: Dict[str, Any] = {}
        if sys.platform == "win32":
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            popen_kwargs["start_new_session"] = True   # Ctrl-C reaches us; we forward it once, cleanly
        command = child_command(job, run.backup_dir)
        log.debug("starting darknet's training: %s", " ".join(command["args"]))
        self._process = subprocess.Popen(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **command, **popen_kwargs)
        log.info("training child process %d started, log in %s", self._process.pid, log_file)

    @property
    def pid(self) -> int:
        """The child process's id."""
        return self._process.pid

    def __enter__(self) -> "TrainingProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        try:
            stream = self._process.stdout
            assert stream is not None   # started with stdout=PIPE
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.readline()
                if not chunk:
                    break
                text = self._take(chunk)
                for event in self._parser.feed(text):
                    self._record(event)
                    yield event
            for event in self._parser.close():
                self._record(event)
                yield event
        except KeyboardInterrupt:
            self.run.interrupted = True
            self.close()
            raise
        except GeneratorExit:   # the consumer stopped iterating: do not leave darknet training unwatched
            try:
                self.close()
            except TrainingError as error:   # nobody is there to catch it (the generator is being collected)
                warnings.warn(f"training stopped after its event loop was left, with an error: {error}",
                              RuntimeWarning, stacklevel=2)
            raise
        self._finish()

    def _take(self, chunk: bytes) -> str:
        """Log a chunk of the child's output, keep its last lines, notice a stop report."""
        text = chunk.decode("utf-8", "replace")
        self._log.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()          # an unfinished line waits for the next chunk
        for line in lines:
            if line.strip():
                self._tail.append(line)
            match = _STOPPED.search(line)
            if match:
                self.run.stopped_at = int(match.group(1))
                self.run.weights["interrupted"] = Path(match.group(2))
        return text

    def _record(self, event: Event) -> None:
        run = self.run
        run.history.add(event)
        if isinstance(event, SavedWeightsEvent):
            path = Path(event.path)
            kind = path.stem.rsplit("_", 1)[-1] if "_" in path.stem else event.kind
            run.weights[kind] = path
        elif isinstance(event, TrainingDoneEvent):
            run.finished = True
        elif isinstance(event, ErrorEvent):
            self._errors.append(event)

    def stop(self, timeout: float = 600.0) -> None:
        """Ask the child to save its weights and stop after the current iteration; wait up to `timeout` s."""
        if self._process.poll() is not None:
            return
        self.run.interrupted = True
        if sys.platform == "win32":
            stop_signal = signal.CTRL_BREAK_EVENT   # what a process group made with CREATE_NEW_PROCESS_GROUP gets
        else:
            stop_signal = signal.SIGINT
        try:
            self._process.send_signal(stop_signal)
        except (ProcessLookupError, OSError):
            return
        # keep draining its output meanwhile, so it cannot block on a full pipe
        drain = threading.Thread(target=self._drain, daemon=True)
        drain.start()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        except KeyboardInterrupt:   # a second Ctrl-C while darknet saves: stop it now, never leave it running
            self._process.kill()
            self._process.wait()
            self._killed = True
            raise
        finally:
            drain.join(5)

    def _drain(self) -> None:
        stream = self._process.stdout
        assert stream is not None   # started with stdout=PIPE
        try:
            for chunk in iter(lambda: stream.read1(65536) if hasattr(stream, "read1") else stream.readline(), b""):
                for event in self._parser.feed(self._take(chunk)):
                    self._record(event)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self._closed:
            return
        self.stop()
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.run.returncode = self._process.wait()
        self.run.elapsed_seconds = time.monotonic() - self._started
        interrupted_file = self.run.backup_dir / f"{_cfg_base(self.run.cfg_file)}_interrupted.weights"
        if self.run.interrupted and interrupted_file.exists():
            self.run.weights["interrupted"] = interrupted_file
        self._log.close()
        self._save_history()
        code = self.run.returncode
        if self._killed:
            return
        if code != 0 or (not self.run.finished and not self.run.interrupted):
            raise TrainingError(self._failure_message(code), path=self.run.cfg_file)

    def _save_history(self) -> None:
        run = self.run
        base = _cfg_base(run.cfg_file)
        if len(run.history):
            run.history_file = run.history.to_csv(run.backup_dir / f"{base}_history.csv")
            try:
                run.chart_file = run.history.plot(run.backup_dir / f"{base}_chart.png", title=f"{base}")
            except Exception:  # a chart is a nicety; never lose a training result over it
                run.chart_file = None

    def _failure_message(self, code: int) -> str:
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        elif code:
            how = f"exited with status {code}"
        else:
            how = "stopped before finishing"
        reason = ""
        if self._errors:
            e = self._errors[-1]
            reason = f": {e.message}" + (f" ({e.path})" if e.path else "")
        saved = ", ".join(f"{k}: {v}" for k, v in self.run.weights.items()) or "none"
        tail = "\n".join(self._tail)
        return (f"darknet's training process {how}{reason}\nweights saved so far: {saved}\n"
                f"log: {self.run.log_file}\n--- last lines ---\n{tail}")


def iter_train(data: PathLike, cfg: PathLike, pretrained: Optional[PathLike] = None,
               gpus: Optional[Sequence[int]] = None, map_every: Optional[int] = None, *, clear: bool = False,
               resume: bool = False, backup: Optional[PathLike] = None, iou_thresh: float = 0.5) -> TrainingProcess:
    """Start training and return the event iterator (see :func:`train` for the arguments)."""
    prepared = prepare_training(data, cfg, pretrained, backup, need_valid=bool(map_every))
    cfg_path, backup_dir, network = prepared.cfg, prepared.backup_dir, prepared.network
    gpu_list = _check_gpus(gpus)
    base = _cfg_base(cfg_path)
    weights = Path(pretrained) if pretrained is not None else None
    if resume:
        candidates = [backup_dir / f"{base}_{kind}.weights" for kind in ("interrupted", "last")]
        existing = [p for p in candidates if p.exists()]
        if not existing:
            raise WeightsError(f"nothing to resume from: neither {candidates[0].name} nor {candidates[1].name} "
                               f"is in the backup folder", path=backup_dir)
        weights = max(existing, key=lambda p: p.stat().st_mtime)
        clear = False
    if weights is not None and not clear and not resume:
        _check_iterations_left(weights, network, cfg_path)
    n_train = len(read_image_list(read_data_file(prepared.data_file)["train"]))
    job = TrainingJob(data=str(prepared.data_file), cfg=str(cfg_path.absolute()),
                      weights=str(weights.absolute()) if weights else None, gpus=gpu_list, clear=bool(clear),
                      calc_map=bool(map_every), map_epochs=_map_epochs(map_every, network, n_train) if map_every else 4,
                      iou=iou_thresh, backup=str(backup_dir))
    log_file = backup_dir / f"{base}_train.log"
    run = TrainingRun(data_file=Path(data), cfg_file=cfg_path, backup_dir=backup_dir, log_file=log_file)
    if resume:
        history_csv = backup_dir / f"{base}_history.csv"
        if history_csv.exists():
            run.history = History.from_csv(history_csv)
    return TrainingProcess(job, run, log_file)


def train(data: PathLike, cfg: PathLike, pretrained: Optional[PathLike] = None,
          gpus: Optional[Sequence[int]] = None, map_every: Optional[int] = None, *, clear: bool = False,
          resume: bool = False, backup: Optional[PathLike] = None, progress: bool = True,
          callback: Optional[Callable[[Event], None]] = None, iou_thresh: float = 0.5) -> TrainingRun:
    """Train a detector with darknet, in a child process, and return what it produced.

    Args:
        data: the dataset's obj.data (classes, train, valid, names, backup).
        cfg: the network cfg file, or the saved Cfg that :func:`pydarknet.make_cfg` returns; its classes must
            match the data's.
        pretrained: starting weights (e.g. darknet's yolov4-tiny.conv.29), or None to start from scratch.
        gpus: CUDA devices, e.g. [0] or [0, 1] (darknet's own multi-GPU); [] trains on the CPU (CPU builds
            only: darknet's CUDA builds lack its CPU training code); None: GPU 0 when available.
        map_every: measure mAP@iou_thresh on the valid list about every this many iterations (darknet rounds
            to whole epochs, at least 100 iterations, not before burn_in) and keep the best weights.
        clear: restart the iteration count of `pretrained` weights from 0.
        resume: continue from the newest ``<cfg>_interrupted``/``_last`` weights in the backup folder.
        backup: where weights, the log, the history CSV and the chart go (default: the data file's backup=).
        progress: a progress bar with loss, mAP and ETA (stderr).
        callback: called with every event (IterationEvent, MapEvent, SavedWeightsEvent, ...).

    Ctrl-C stops training cleanly: darknet saves ``<cfg>_interrupted.weights`` and the returned run has
    ``interrupted=True``.  A crash of the child raises :class:`TrainingError` with darknet's last lines.
    """
    process = iter_train(data, cfg, pretrained, gpus, map_every, clear=clear, resume=resume, backup=backup,
                         iou_thresh=iou_thresh)
    from .cfg import read_cfg
    max_batches = read_cfg(cfg_file(cfg)).net.get_int("max_batches", 0) or None
    bar = None
    warned = 0
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=max_batches, initial=process.run.iterations, unit="it", desc="training", file=sys.stderr,
                   dynamic_ncols=True)
    try:
        for event in process:
            if callback is not None:
                callback(event)
            if bar is not None and isinstance(event, IterationEvent):
                bar.update(max(0, event.iteration - bar.n))
                postfix = {"loss": f"{event.loss:.3f}", "avg": f"{event.avg_loss:.3f}", "lr": f"{event.rate:.2g}"}
                best = process.run.history.best_map
                if best is not None:
                    postfix["best mAP"] = f"{best:.1%}"
                bar.set_postfix(postfix, refresh=False)
            elif bar is not None and isinstance(event, MapEvent):
                bar.write(f"iteration {event.iteration}: mAP@{event.iou_thresh:.2f} = {event.map:.2%}")
            elif bar is not None and isinstance(event, WarningEvent):
                warned += 1
                if warned <= SHOWN_WARNINGS:
                    bar.write(f"darknet: {event.message}: {event.path}" + (
                        f" (further warnings only in {process.run.log_file})" if warned == SHOWN_WARNINGS else ""))
    except KeyboardInterrupt:
        process.close()       # the child saves <cfg>_interrupted.weights and stops
        if bar is not None:
            saved = process.run.weights.get("interrupted")
            bar.write(f"interrupted: darknet saved {saved}; resume with resume=True (--resume)" if saved
                      else "interrupted before darknet saved any weights")
    finally:
        try:
            process.close()   # a no-op after a finished run; a callback's exception must not leave darknet running
        finally:
            if bar is not None:
                bar.close()
    return process.run
