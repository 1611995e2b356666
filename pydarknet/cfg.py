"""Darknet network ``.cfg`` files: read, edit, write, generate from darknet's own templates, and validate.

The reader sees a file exactly the way darknet's parser does (``parser.c:read_cfg`` + ``option_list.c:read_option``)
and the writer gives back the original bytes for everything that was not edited, so comments, blank lines, odd
spacing and the order of sections survive a round trip.

How darknet reads a line (and so how this module reads it):

* every space, tab, CR and LF is removed from the line, *anywhere* in it (``utils.c:strip``), so
  ``anchors = 10,14,  23,27`` is ``anchors=10,14,23,27`` and ``batch normalize=1`` is the key ``batchnormalize``;
* an empty line, or one starting with ``#`` or ``;``, is skipped; a comment later in a line is *not* removed and
  becomes part of the value (``filters=255 #x`` has the value ``255#x``, which ``atoi`` still reads as 255;
  darknet's list parsers stop at ``#``);
* a line starting with ``[`` opens a section whose type is the whole stripped line (``[yolo]#x`` is an unknown
  type);
* anything else is ``key=value`` split at the first ``=``; a line ending in ``=`` is rejected with a message and
  ignored; a line without ``=`` is stored as a key with no value;
* when a key appears twice in a section, the *first* one is used (``option_list.c:option_find``) and the others
  are reported as unused; unknown keys are only reported as unused, never fatal.

>>> cfg = make_cfg("yolov4-tiny", classes=2, size=416, out="logos.cfg")
>>> [head.section.get_int("classes") for head in cfg.heads()]
[2, 2]
"""
from __future__ import annotations

import copy
import math
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union, overload

from . import resources
from ._typing import PathLike
from .errors import ConfigError

__all__ = ["TEMPLATES", "HEAD_KINDS", "Cfg", "Section", "Head", "CfgProblem", "read_cfg", "make_cfg", "validate_cfg",
           "find_cfg_problems", "template_path", "default_max_batches", "anchor_pairs", "format_value",
           "darknet_view", "check_network", "NetworkLayout", "LayerShape", "NetworkTooLarge", "SUPPORTED_KINDS"]


# the templates make_cfg is tested with and the wheel ships (pydarknet/cfg_templates.txt, which CMake reads too); any
# other cfg file darknet ships can be named in a checkout
TEMPLATES = resources.template_names()

# parser.c:string_to_layer_type: alternative spellings -> the name used here
_ALIASES = {
    "conv": "convolutional", "network": "net", "conn": "connected", "max": "maxpool",
    "local_avg": "local_avgpool", "avg": "avgpool", "lrn": "normalization", "soft": "softmax", "silence": "empty",
}
_KNOWN_KINDS = frozenset(_ALIASES.values()) | {
    "shortcut", "scale_channels", "sam", "crop", "cost", "detection", "region", "yolo", "Gaussian_yolo", "local",
    "activation", "crnn", "gru", "lstm", "conv_lstm", "history", "rnn", "reorg3d", "reorg", "dropout",
    "batchnorm", "contrastive", "route", "upsample", "implicit",
}

# values each output cell of a head predicts besides the class scores (yolo_layer.c, gaussian_yolo_layer.c:
# l.outputs = h*w*n*(classes + 4 + 1) and (classes + 8 + 1); region_layer.c: classes + coords + 1)
_HEAD_EXTRA_OUTPUTS = {"yolo": 5, "Gaussian_yolo": 9}
HEAD_KINDS = ("yolo", "Gaussian_yolo", "region")

_DARKNET_WHITESPACE = str.maketrans("", "", " \t\r\n")
_INT_PREFIX = re.compile(r"[+-]?\d+")
_FLOAT_PREFIX = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|nan)", re.IGNORECASE)


def darknet_view(line: str) -> str:
    """A line as darknet's parser sees it: every space, tab, CR and LF removed (``utils.c:strip``)."""
    return line.translate(_DARKNET_WHITESPACE)


def _newline_of(raw: str) -> str:
    if raw.endswith("\r\n"):
        return "\r\n"
    return "\n" if raw.endswith("\n") else ""


class _Line:
    """One physical line of the file, kept verbatim (with its line ending) until it is edited."""

    __slots__ = ("raw", "_seen", "_content")

    def __init__(self, raw: str):
        self.raw = raw
        self._seen: Optional[str] = None

    @property
    def content(self) -> str:
        if self._seen is not self.raw:   # computed once per text: the checker looks keys up thousands of times
            self._seen, self._content = self.raw, darknet_view(self.raw)
        return self._content

    @property
    def is_option(self) -> bool:
        text = self.content
        return bool(text) and text[0] not in "#;["

    @property
    def name(self) -> Optional[str]:
        """The key written on an option line, even on one darknet rejects."""
        return self.content.split("=", 1)[0] if self.is_option else None

    @property
    def key(self) -> Optional[str]:
        """The key darknet stores, or None for comments, blanks and the lines it rejects (``key=``)."""
        return None if self.content.endswith("=") else self.name

    @property
    def value(self) -> Optional[str]:
        """The value as darknet stores it; None for a line without ``=`` (darknet keeps its key, no value)."""
        text = self.content
        return text.split("=", 1)[1] if "=" in text else None

    def with_value(self, value: str) -> "_Line":
        """The same line with a new value, keeping the key's spelling, the spacing after ``=`` and the line ending."""
        body = self.raw[: len(self.raw) - len(_newline_of(self.raw))]
        eq = body.find("=")
        if eq < 0:
            return _Line(f"{body}={value}{_newline_of(self.raw)}")
        after = body[eq + 1:]
        gap = after[: len(after) - len(after.lstrip(" \t"))]
        return _Line(f"{body[:eq + 1]}{gap}{value}{_newline_of(self.raw)}")


def format_value(value: object) -> str:
    """A Python value as darknet cfg text: ``True`` -> ``1``, ``0.001`` -> ``0.001``, ``[1, 2]`` -> ``1,2``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} into a cfg file")
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ValueError(f"a cfg value cannot contain a line break: {value!r}")
        return value
    if hasattr(value, "__iter__"):
        return ",".join(format_value(v) for v in value)
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item())
    raise TypeError(f"cannot write a {type(value).__name__} into a cfg file")


def _parse_number(text: str, kind: type, what: str, path: Optional[str]):
    """``atoi``/``atof`` semantics (the longest numeric prefix counts) but refusing a value with no number at all,
    which darknet would silently read as 0."""
    match = (_INT_PREFIX if kind is int else _FLOAT_PREFIX).match(text)
    if not match:
        raise ConfigError(f"{what} = {text!r} is not {'an integer' if kind is int else 'a number'}", path=path)
    return kind(match.group(0))


class Section:
    """One ``[section]`` of a cfg file: its header line and the lines up to the next header."""

    def __init__(self, header: str, lines: Optional[List[_Line]] = None, path: Optional[str] = None):
        self._header = _Line(header)
        self._lines: List[_Line] = list(lines or [])
        self._path = path

    # --- identity ---------------------------------------------------------------------------------------
    @property
    def header(self) -> str:
        """The header as darknet compares it, e.g. ``[convolutional]``."""
        return self._header.content

    @property
    def kind(self) -> str:
        """The layer type with darknet's aliases folded: ``[conv]`` and ``[convolutional]`` are both
        ``convolutional``, ``[network]`` is ``net``; an unknown header gives its text inside the brackets."""
        name = self.header
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        return _ALIASES.get(name, name)

    @property
    def is_known(self) -> bool:
        h = self.header
        return h.startswith("[") and h.endswith("]") and self.kind in _KNOWN_KINDS

    def __repr__(self) -> str:
        return f"<Section {self.header} {dict(self.items())}>"

    # --- reading ----------------------------------------------------------------------------------------
    def _find(self, key: str) -> Optional[_Line]:
        for line in self._lines:
            if line.key == key:
                return line
        return None

    def __contains__(self, key: str) -> bool:
        line = self._find(key)
        return line is not None and line.value is not None

    def keys(self) -> List[str]:
        """Keys in file order, each once."""
        seen: List[str] = []
        for line in self._lines:
            if line.key is not None and line.key not in seen:
                seen.append(line.key)
        return seen

    def items(self) -> Iterator[Tuple[str, Optional[str]]]:
        """(key, value) as darknet uses them: the first occurrence of each key."""
        for key in self.keys():
            yield key, self.get(key)

    # a non-None default means a non-None result: the overloads let the callers use it without a check
    @overload
    def get(self, key: str, default: str) -> str: ...
    @overload
    def get(self, key: str, default: Optional[str] = None) -> Optional[str]: ...

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value darknet would use for ``key`` (its first occurrence), or ``default``."""
        line = self._find(key)
        if line is None or line.value is None:
            return default
        return line.value

    @overload
    def get_int(self, key: str, default: int) -> int: ...
    @overload
    def get_int(self, key: str, default: Optional[int] = None) -> Optional[int]: ...

    def get_int(self, key: str, default: Optional[int] = None) -> Optional[int]:
        text = self.get(key)
        return default if text is None else _parse_number(text, int, f"{self.header} {key}", self._path)

    @overload
    def get_float(self, key: str, default: float) -> float: ...
    @overload
    def get_float(self, key: str, default: Optional[float] = None) -> Optional[float]: ...

    def get_float(self, key: str, default: Optional[float] = None) -> Optional[float]:
        text = self.get(key)
        return default if text is None else _parse_number(text, float, f"{self.header} {key}", self._path)

    def get_list(self, key: str, kind: type = float, default: Optional[list] = None) -> Optional[list]:
        """A comma-separated value as numbers, read the way darknet reads ``mask``, ``anchors`` and ``steps``:
        it stops at ``#``; an empty item (``1,,2`` or a trailing comma), which darknet reads as 0, is an error."""
        text = self.get(key)
        if text is None:
            return default
        items = text.split("#", 1)[0].split(",")
        what = f"{self.header} {key}"
        for item in items:
            if not item:
                raise ConfigError(f"{what} = {text!r} has an empty item (darknet would read it as 0)",
                                  path=self._path)
        return [_parse_number(item, kind, what, self._path) for item in items]

    # --- editing ----------------------------------------------------------------------------------------
    def set(self, key: str, value: object) -> "Section":
        """Set ``key`` (its first occurrence, the one darknet uses), or append it after the last option."""
        text = format_value(value)
        if not key or darknet_view(key) != key or "=" in key or key[0] in "#;[":
            raise ValueError(f"not a usable cfg key: {key!r}")
        for i, line in enumerate(self._lines):
            if line.key == key:
                self._lines[i] = line.with_value(text)
                return self
        self._insert_option(f"{key}={text}")
        return self

    def remove(self, key: str) -> bool:
        """Remove every occurrence of ``key``; tell whether there was one."""
        before = len(self._lines)
        self._lines = [line for line in self._lines if line.name != key]
        return len(self._lines) != before

    def _insert_option(self, text: str) -> None:
        anchor_index = max((i for i, line in enumerate(self._lines) if line.is_option), default=-1)
        previous = self._header if anchor_index < 0 else self._lines[anchor_index]
        newline = _newline_of(previous.raw) or self._newline_hint()
        if not _newline_of(previous.raw):  # the last line of a file without a final newline
            previous.raw += newline
        self._lines.insert(anchor_index + 1, _Line(text + newline))

    def _newline_hint(self) -> str:
        for line in [self._header, *self._lines]:
            if _newline_of(line.raw):
                return _newline_of(line.raw)
        return "\n"

    def raw_lines(self) -> List[str]:
        return [self._header.raw] + [line.raw for line in self._lines]


@dataclass(frozen=True)
class Head:
    """A detection head: the ``[yolo]``/``[Gaussian_yolo]``/``[region]`` section and the layer feeding it."""

    index: int                       # darknet's layer index of the head (0 = first section after [net])
    section: Section
    previous: Optional[Section]      # the layer right before it, whose output size darknet checks

    def anchor_count(self) -> int:
        """How many anchors the head owns (``num``; darknet's default is 1 for yolo, 5 for region)."""
        default = 5 if self.section.kind == "region" else 1
        return self.section.get_int("num", default)

    def predictions_per_cell(self) -> int:
        """Boxes predicted per grid cell: ``len(mask)`` when there is a mask, else ``num`` (parser.c:parse_yolo)."""
        if self.section.kind != "region":
            mask = self.section.get_list("mask", int)
            if mask is not None:
                return len(mask)
        return self.anchor_count()

    def expected_filters(self, classes: Optional[int] = None) -> int:
        """``filters=`` the layer before this head must have for ``classes`` (default: the head's own)."""
        if classes is None:
            classes = self.section.get_int("classes", 20)
        kind = self.section.kind
        if kind == "region":
            extra = self.section.get_int("coords", 4) + 1
        else:
            extra = _HEAD_EXTRA_OUTPUTS[kind]
        return (classes + extra) * self.predictions_per_cell()


class Cfg:
    """A parsed cfg file. ``str(cfg)`` is the file's text; unchanged files come back byte for byte."""

    def __init__(self, preamble: Sequence[str], sections: Sequence[Section], path: Optional[PathLike] = None):
        self.preamble: List[str] = list(preamble)    # raw lines before the first section
        self.sections: List[Section] = list(sections)
        self.path: Optional[str] = os.fspath(path) if path is not None else None

    # --- reading and writing ----------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, path: Optional[PathLike] = None) -> "Cfg":
        spath = os.fspath(path) if path is not None else None
        preamble: List[str] = []
        sections: List[Section] = []
        # split on LF only, as fgets does (str.splitlines would also split on \v, \f, \x1c, U+2028 ...)
        for raw in re.findall(r"[^\n]*\n|[^\n]+$", text):
            if darknet_view(raw).startswith("["):
                sections.append(Section(raw, path=spath))
            elif sections:
                sections[-1]._lines.append(_Line(raw))
            else:
                preamble.append(raw)
        return cls(preamble, sections, spath)

    def __str__(self) -> str:
        return "".join(self.preamble) + "".join("".join(s.raw_lines()) for s in self.sections)

    def to_bytes(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    def save(self, path: Optional[PathLike] = None) -> Path:
        """Write the file atomically (a temporary file in the same folder, then a rename)."""
        if path is None and self.path is None:
            raise ConfigError("Cfg.save() needs a path: this cfg has none yet")
        from .atomic import atomic_write_bytes

        target = Path(path if path is not None else self.path)  # type: ignore[arg-type]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, self.to_bytes(), error=ConfigError)
        self.set_path(target)
        return target

    def set_path(self, path: Optional[PathLike]) -> None:
        """The file this cfg stands for (named in error messages, used by :meth:`save`)."""
        self.path = os.fspath(path) if path is not None else None
        for section in self.sections:
            section._path = self.path

    def copy(self) -> "Cfg":
        return copy.deepcopy(self)

    # --- navigation -------------------------------------------------------------------------------------
    @property
    def net(self) -> Section:
        """The leading ``[net]``/``[network]`` section."""
        if not self.sections or self.sections[0].kind != "net":
            raise ConfigError("the first section must be [net] or [network]", path=self.path)
        return self.sections[0]

    @property
    def layers(self) -> List[Section]:
        """The sections after ``[net]``; ``layers[i]`` is darknet's layer ``i``."""
        return self.sections[1:] if self.sections and self.sections[0].kind == "net" else list(self.sections)

    def find(self, kind: str) -> List[Section]:
        """Sections of one type, aliases folded: ``find("convolutional")`` also returns ``[conv]`` sections."""
        name = kind[1:-1] if kind.startswith("[") and kind.endswith("]") else kind
        name = _ALIASES.get(name, name)
        return [s for s in self.sections if s.kind == name]

    def heads(self) -> List[Head]:
        """The detection heads in file order, each with the layer before it."""
        layers = self.layers
        return [Head(i, s, layers[i - 1] if i > 0 else None) for i, s in enumerate(layers) if s.kind in HEAD_KINDS]

    def layer_index(self, section: Section) -> int:
        """Darknet's index of a layer (-1 for [net])."""
        for i, s in enumerate(self.layers):
            if s is section:
                return i
        if self.sections and section is self.sections[0]:
            return -1
        raise ValueError("section is not part of this cfg")

    # --- network-wide edits -----------------------------------------------------------------------------
    def set_classes(self, classes: int) -> "Cfg":
        """``classes=`` in every head and the matching ``filters=`` in the layer before each."""
        _check_int(classes, "classes", 1, self.path)
        heads = self.heads()
        if not heads:
            raise ConfigError("no [yolo], [Gaussian_yolo] or [region] layer to set classes in", path=self.path)
        for head in heads:
            head.section.set("classes", classes)
            self._set_head_filters(head)
        return self

    def set_anchors(self, anchors, redistribute: bool = False) -> "Cfg":
        """Write ``anchors`` ((w, h) pairs or a flat list, network pixels) into every yolo head.

        With as many anchors as the heads' ``num``, the masks stay as they are. Otherwise, with
        ``redistribute=True``, ``num`` becomes the new count and the anchors, sorted by area, are split into
        contiguous masks: the smallest go to the head whose old mask held the smallest anchors; the ``filters``
        before each head follow the new mask sizes.
        """
        pairs = anchor_pairs(anchors, self.path)
        heads = [h for h in self.heads() if h.section.kind != "region"]
        if not heads:
            raise ConfigError("no [yolo] layer to write anchors into", path=self.path)
        counts = {h.anchor_count() for h in heads}
        if counts != {len(pairs)}:
            if not redistribute:
                raise ConfigError(f"{len(pairs)} anchors given but the [yolo] layers have num="
                                  f"{','.join(map(str, sorted(counts)))}", path=self.path)
            if len(pairs) < len(heads):
                raise ConfigError(f"{len(pairs)} anchors cannot be shared by {len(heads)} [yolo] layers",
                                  path=self.path)
            pairs = sorted(pairs, key=lambda wh: wh[0] * wh[1])
            self._redistribute_masks(heads, len(pairs))
        text = ",  ".join(f"{format_value(float(w))},{format_value(float(h))}" for w, h in pairs)
        for head in heads:
            head.section.set("anchors", text)
        return self

    def _redistribute_masks(self, heads: List[Head], count: int) -> None:
        def old_position(head: Head) -> float:
            mask = head.section.get_list("mask", int) or list(range(head.anchor_count()))
            return sum(mask) / len(mask)

        order = sorted(range(len(heads)), key=lambda i: old_position(heads[i]))
        start = 0
        for rank, i in enumerate(order):
            size = count // len(heads) + (1 if rank >= len(heads) - count % len(heads) else 0)
            heads[i].section.set("num", count)
            heads[i].section.set("mask", ",".join(str(m) for m in range(start, start + size)))
            start += size
        for head in self.heads():
            self._set_head_filters(head)

    def _set_head_filters(self, head: Head) -> None:
        conv = self._feeding_convolution(head)
        conv.set("filters", head.expected_filters())

    def _feeding_convolution(self, head: Head) -> Section:
        layers = self.layers
        for i in range(head.index - 1, -1, -1):
            if layers[i].kind == "convolutional":
                return layers[i]
            if layers[i].kind in HEAD_KINDS:
                break
        raise ConfigError(f"layer {head.index} {head.section.header}: no [convolutional] layer before it whose "
                          f"filters= could be set", path=self.path)


def read_cfg(path: PathLike) -> Cfg:
    """Read a cfg file (any bytes survive: undecodable ones are carried through unchanged)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("cfg file not found", path=path) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a cfg file", path=path) from None
    return Cfg.parse(data.decode("utf-8", "surrogateescape"), path)


def anchor_pairs(anchors, path: Optional[str] = None) -> List[Tuple[float, float]]:
    """Anchors as a list of (w, h) from pairs, a flat ``[w, h, w, h, ...]`` list or an (N, 2) array."""
    flat: List[float] = []
    for item in anchors:
        if hasattr(item, "__len__"):
            if len(item) != 2:
                raise ConfigError(f"an anchor is a (width, height) pair, got {item!r}", path=path)
            flat.extend(float(v) for v in item)
        else:
            flat.append(float(item))
    if not flat or len(flat) % 2:
        raise ConfigError(f"anchors need an even, non-zero count of numbers (w,h pairs), got {len(flat)}",
                          path=path)
    if not all(math.isfinite(v) and v > 0 for v in flat):
        raise ConfigError("anchor sizes must be positive numbers", path=path)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _check_int(value, name: str, minimum: int, path: Optional[str]) -> int:
    """``value`` as an int (whole floats accepted, bools not) that is at least ``minimum``."""
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = int(value) if isinstance(value, float) and value.is_integer() else None
    if number is None:
        raise ConfigError(f"{name} must be an integer, got {value!r}", path=path)
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value!r}", path=path)
    return number


# --- templates and make_cfg -------------------------------------------------------------------------------

def template_path(name: str) -> Path:
    """Where darknet's ``<name>.cfg`` is: the copy installed with the package, else the source checkout's
    ``darknet/cfg`` (:func:`pydarknet.resources.template_path`)."""
    return resources.template_path(name)


def _resolve_template(template: Union[str, PathLike, Cfg]) -> Cfg:
    if isinstance(template, Cfg):
        return template.copy()
    text = os.fspath(template)
    if os.path.isfile(text):
        return read_cfg(text)
    if os.sep in text or text.endswith(".cfg"):
        raise ConfigError("cfg file not found", path=text)
    return read_cfg(template_path(text))


def _network_size(size) -> Tuple[int, int]:
    width, height = (size, size) if not hasattr(size, "__len__") else tuple(size)
    for name, value in (("width", width), ("height", height)):
        _check_int(value, name, 32, None)
        if int(value) % 32:
            raise ConfigError(f"network {name} must be a multiple of 32 (darknet's YOLO layers need it), "
                              f"got {value}; nearest: {max(32, round(int(value) / 32) * 32)}")
    return int(width), int(height)


def default_max_batches(classes: int, images: Optional[int] = None) -> int:
    """Darknet's rule of thumb: 2000 iterations per class, at least the number of images, at least 6000."""
    return max(2000 * classes, images or 0, 6000)


def make_cfg(template: Union[str, PathLike, Cfg], classes: int, size=416, batch: int = 64,
             subdivisions: Optional[int] = None, max_batches: Optional[int] = None,
             steps: Optional[Sequence[int]] = None, anchors=None, out: Optional[PathLike] = None,
             images: Optional[int] = None, learning_rate: Optional[float] = None, burn_in: Optional[int] = None,
             net_options: Optional[Mapping[str, object]] = None, width_multiplier: float = 1.0) -> Cfg:
    """A training cfg for ``classes`` classes from one of darknet's cfg files.

    ``template`` is a name from :data:`TEMPLATES` (or any cfg darknet ships), a path, or a :class:`Cfg`.
    ``size`` is an int or (width, height), multiples of 32. ``subdivisions=None`` keeps the template's when it
    divides ``batch``, else 1. ``max_batches`` defaults to :func:`default_max_batches` (``images`` = training
    image count), ``steps`` to 80% and 90% of it. ``anchors`` (as many as each head's ``num``) go into every
    yolo layer. ``learning_rate``, ``burn_in`` and ``net_options`` (any other ``[net]`` keys) override the
    template; without ``burn_in``, a template's warm-up as long as the whole run becomes a tenth of it.
    ``width_multiplier`` scales the filters of every convolution except those feeding a detection
    layer (rounded to multiples of 8, at least 8): 0.25 gives a network of about 1/16 the weights and FLOPs, for
    small, fast models. The result is validated; with ``out`` it is also written there.
    """
    cfg = _resolve_template(template)
    path = os.fspath(out) if out is not None else None
    classes = _check_int(classes, "classes", 1, path)
    width, height = _network_size(size)
    batch = _check_int(batch, "batch", 1, path)
    net = cfg.net
    if subdivisions is None:
        subdivisions = net.get_int("subdivisions", 1) or 1
        if subdivisions < 1 or batch % subdivisions:
            subdivisions = 1
    subdivisions = _check_int(subdivisions, "subdivisions", 1, path)
    if batch % subdivisions:
        raise ConfigError(f"subdivisions={subdivisions} must divide batch={batch} (each of the {subdivisions} "
                          f"mini-batches gets batch/subdivisions images)", path=path)
    if images is not None:
        _check_int(images, "images", 0, path)
    max_batches = _check_int(max_batches if max_batches is not None else default_max_batches(classes, images),
                             "max_batches", 1, path)
    if steps is None:
        # 80% and 90%; a tiny max_batches (a smoke test) can round them together, or to 0
        steps = sorted({max(1, int(max_batches * 0.8)), max(1, int(max_batches * 0.9))})
    steps = [_check_int(s, "steps", 1, path) for s in steps]
    if not steps or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"steps must be increasing positive iterations, got {steps}", path=path)

    net.set("batch", batch).set("subdivisions", subdivisions).set("width", width).set("height", height)
    net.set("max_batches", max_batches).set("policy", "steps").set("steps", steps)
    scales = net.get_list("scales", float) or []
    if len(scales) != len(steps):  # darknet reads one scale per step and crashes when they run out
        net.set("scales", [0.1] * len(steps))
    if learning_rate is not None:
        if not learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {learning_rate}", path=path)
        net.set("learning_rate", float(learning_rate))
    if burn_in is not None:
        net.set("burn_in", _check_int(burn_in, "burn_in", 0, path))
    elif (net.get_int("burn_in", 0) or 0) >= max_batches:
        # the template's warm-up (1000 iterations) would keep the learning rate near 0 for the whole of a short run
        net.set("burn_in", max(1, max_batches // 10))
    for key, value in (net_options or {}).items():
        net.set(key, value)

    for head in cfg.heads():  # these lists are per class and would no longer match
        head.section.remove("counters_per_class")
    if width_multiplier != 1.0:
        _scale_widths(cfg, width_multiplier, path)
    cfg.set_classes(classes)
    if anchors is not None:
        cfg.set_anchors(anchors)
    validate_cfg(cfg, classes=classes)
    if out is not None:
        cfg.save(out)
    else:
        cfg.set_path(None)  # so that a later cfg.save() cannot overwrite the template
    return cfg


def _scale_widths(cfg: Cfg, multiplier: float, path: Optional[str]) -> None:
    """Scale conv filters (not the ones feeding detection layers, which set_classes owns) by `multiplier`."""
    if not 0 < multiplier <= 4:
        raise ConfigError(f"width_multiplier must be in (0, 4], got {multiplier}", path=path)
    heads_inputs = {id(head.previous) for head in cfg.heads() if head.previous is not None}
    for section in cfg.find("convolutional"):
        if id(section) in heads_inputs:
            continue
        filters = section.get_int("filters", 1) or 1
        section.set("filters", max(8, int(round(filters * multiplier / 8)) * 8))


# --- validation ---------------------------------------------------------------------------------------------
# --- validation ---------------------------------------------------------------------------------------------
#
# The checker walks the layers the way parser.c:parse_network_cfg_custom does, computing each layer's input and
# output shape with the formulas of darknet's make_*_layer functions, so that everything darknet divides by,
# indexes with or allocates from is known to be sane before darknet parses the file: darknet itself checks little
# (a zero stride is a SIGFPE, a route to layer 1000 a SIGSEGV, a shortcut of another size a silent misread).

INT_MAX = 2 ** 31 - 1   # darknet counts buffer sizes in C ints

# the layer types whose parsing, shapes and weights the checker models completely; others are refused
SUPPORTED_KINDS = frozenset({
    "convolutional", "maxpool", "local_avgpool", "avgpool", "route", "shortcut", "upsample", "yolo",
    "Gaussian_yolo", "region", "reorg", "reorg3d", "sam", "scale_channels", "dropout", "contrastive", "crnn",
    "connected", "detection",
})

# options that change allocations or indexing in ways the checker does not model: refused when set
_UNSUPPORTED_OPTIONS = {
    "convolutional": ("antialiasing", "sway", "rotate", "stretch", "stretch_sway", "assisted_excitation",
                      "binary", "coordconv", "deform"),
    "maxpool": ("antialiasing", "maxpool_depth"),
}


@dataclass(frozen=True)
class CfgProblem:
    """Something darknet would die on or silently get wrong (``severity="error"``), or a doubtful setting."""

    message: str
    layer: Optional[int] = None      # darknet's layer index; -1 for [net]; None for the file as a whole
    header: str = ""
    severity: str = "error"
    too_large: bool = False          # a size past darknet's 32-bit ints (NetworkTooLarge)

    def __str__(self) -> str:
        where = "" if self.layer is None else ("[net]: " if self.layer < 0 else f"layer {self.layer} {self.header}: ")
        return f"{where}{self.message}"


class NetworkTooLarge(ConfigError, MemoryError):
    """A cfg whose buffers would not fit darknet's 32-bit int sizes (a ConfigError and a MemoryError)."""


@dataclass(frozen=True)
class LayerShape:
    """One layer as darknet builds it: ``l.w/h/c`` (its input, as darknet records it), its output, and the
    blocks of floats ``load_weights`` reads for it, in file order."""

    index: int
    header: str
    kind: str
    w: int
    h: int
    c: int
    out_w: int
    out_h: int
    out_c: int
    inputs: int
    outputs: int
    n: int = 0                                        # darknet's l.n (filters, anchors per cell, inputs of a route)
    weights: Tuple[Tuple[str, int], ...] = ()

    @property
    def is_image(self) -> bool:
        return self.out_w > 0 and self.out_h > 0 and self.out_c > 0


@dataclass(frozen=True)
class NetworkLayout:
    """What :func:`check_network` learnt: the input, the batch checked for, and every layer's shape."""

    path: Optional[str]
    width: int
    height: int
    channels: int
    batch: int
    layers: Tuple[LayerShape, ...]
    warnings: Tuple[CfgProblem, ...] = ()

    def weight_floats(self) -> int:
        return sum(count for layer in self.layers for _name, count in layer.weights)


def find_cfg_problems(cfg: Union[Cfg, PathLike], classes: Optional[int] = None,
                      training: bool = False, batch: Optional[int] = None) -> List[CfgProblem]:
    """Everything :func:`validate_cfg` checks, as a list instead of an exception."""
    if not isinstance(cfg, Cfg):
        cfg = read_cfg(cfg)
    return list(_Checker(cfg, classes, training, batch).run())


def _raise_errors(cfg: Cfg, problems: Sequence[CfgProblem]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listing = "\n  ".join(str(p) for p in errors)
        kind = NetworkTooLarge if any(p.too_large for p in errors) else ConfigError
        raise kind(f"{len(errors)} problem{'s' if len(errors) > 1 else ''} darknet cannot work with:\n  "
                   f"{listing}", path=cfg.path)


def validate_cfg(cfg: Union[Cfg, PathLike], classes: Optional[int] = None, training: bool = False,
                 batch: Optional[int] = None) -> List[CfgProblem]:
    """Check a cfg for what darknet would die on, before darknet sees it.

    Raises :class:`~pydarknet.errors.ConfigError` naming the file and each bad layer by darknet's index;
    returns the warnings. ``classes`` (from the .data/.names) must then match every head. ``training=True``
    adds what only training needs (a batch above 1, max_batches). ``batch``: the batch darknet will allocate for
    (default: 1 for inference, the cfg's mini-batch for training).
    """
    if not isinstance(cfg, Cfg):
        cfg = read_cfg(cfg)
    problems = find_cfg_problems(cfg, classes, training, batch)
    _raise_errors(cfg, problems)
    return [p for p in problems if p.severity != "error"]


def check_network(cfg: Union[Cfg, PathLike], batch: int = 1, classes: Optional[int] = None) -> NetworkLayout:
    """:func:`validate_cfg` for inference at ``batch``, returning every layer's shape and weights layout."""
    if not isinstance(cfg, Cfg):
        cfg = read_cfg(cfg)
    checker = _Checker(cfg, classes, False, batch)
    problems = list(checker.run())
    _raise_errors(cfg, problems)
    return NetworkLayout(cfg.path, checker.net_w, checker.net_h, checker.net_c, checker.batch,
                         tuple(checker.shapes), tuple(problems))  # type: ignore[arg-type]


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero; Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _atoi_items(text: str, what: str, path: Optional[str]) -> List[int]:
    """A list the way parse_route/parse_shortcut read it: split at every comma of the whole value (a '#' does
    not end it) and atoi each item; an item without a number, which atoi reads as 0, is an error."""
    return [_parse_number(item, int, what, path) for item in text.split(",")]


class _Bad(Exception):
    """One layer's fatal problem: the checker records it and stops inferring that layer's shape."""

    def __init__(self, message: str = "", too_large: bool = False):
        super().__init__(message)   # "" when another check already reports it
        self.too_large = too_large


class _Checker:
    """The checks behind :func:`validate_cfg`; each ``_check_*`` yields :class:`CfgProblem`."""

    def __init__(self, cfg: Cfg, classes: Optional[int], training: bool, batch: Optional[int] = None):
        self.cfg, self.classes, self.training = cfg, classes, training
        self.requested_batch = batch
        self.batch = 1
        self.net_w = self.net_h = self.net_c = 0
        self.shapes: List[Optional[LayerShape]] = []
        self.embedding: dict = {}     # yolo layer index -> its embedding size (for [contrastive])

    def run(self) -> Iterator[CfgProblem]:
        cfg = self.cfg
        if any(_Line(raw).is_option for raw in cfg.preamble):
            yield CfgProblem("options before the first [section] (darknet crashes on them)")
        if not cfg.sections:
            yield CfgProblem("no sections: the file has no [net] and no layers")
            return
        has_net = cfg.sections[0].kind == "net"
        net_ok = False
        if has_net:
            net_problems = list(self._guarded(-1, cfg.sections[0], self._check_net))
            yield from net_problems
            net_ok = not any(p.severity == "error" for p in net_problems)
        else:
            yield CfgProblem(f"the first section must be [net] or [network], not {cfg.sections[0].header}")
        if not cfg.layers:
            yield CfgProblem("no layers after [net]")
        numbered = ([(-1, cfg.sections[0])] if has_net else []) + list(enumerate(cfg.layers))
        for index, section in numbered:
            yield from self._check_lines(index, section)
            if index >= 0:
                yield from self._check_layer(index, section, net_ok)
        yield from self._check_heads()
        if net_ok and cfg.layers and all(s is not None for s in self.shapes):
            yield from self._check_network_sizes()

    @staticmethod
    def _problem(index: int, section: Section, message: str, severity: str = "error",
                 too_large: bool = False) -> CfgProblem:
        return CfgProblem(message, index, section.header, severity, too_large)

    def _guarded(self, index: int, section: Section, check) -> Iterator[CfgProblem]:
        """Run one check; a value that is not a number where one is needed becomes a problem too."""
        try:
            yield from check(index, section)
        except ConfigError as e:
            yield self._problem(index, section, str(e).replace(f"{self.cfg.path}: ", ""))

    def _check_lines(self, index: int, section: Section) -> Iterator[CfgProblem]:
        if not section.is_known:
            yield self._problem(index, section, f"unknown section type {section.header} "
                                                f"(darknet: 'Type not recognized: {section.header}')")
        for line in section._lines:
            if line.is_option and line.key is None:
                yield self._problem(index, section, f"{line.content!r} has no value (darknet ignores the line)",
                                    "warning")
            elif line.is_option and line.value is None:
                yield self._problem(index, section, f"{line.content!r} is not key=value", "warning")

    # --- numbers as darknet reads them ------------------------------------------------------------------------
    @staticmethod
    def _int(section: Section, key: str, default: int) -> int:
        """``option_find_int``: the first ``key=``, or ``default``; refused past a C int (atoi would wrap)."""
        value = section.get_int(key, default)
        if not -INT_MAX - 1 <= value <= INT_MAX:
            raise _Bad(f"{key}={value} does not fit darknet's 32-bit int")
        return value

    def _at_least(self, section: Section, key: str, default: int, minimum: int = 1) -> int:
        value = self._int(section, key, default)
        if value < minimum:
            raise _Bad(f"{key}={value} must be at least {minimum}")
        return value

    def _size(self, value: int, what: str) -> int:
        """A count darknet keeps in an int; one that fits only without the batch is reported once, for the
        whole network, by _check_network_sizes."""
        if value > INT_MAX:
            raise _Bad(f"{what} is {value} values: too large for darknet, which counts buffer sizes in 32-bit ints "
                       f"(at most {INT_MAX}): the size overflowed, and darknet would write past its buffers or "
                       f"run out of memory", too_large=True)
        return value

    # --- [net] --------------------------------------------------------------------------------------------------
    def _check_net(self, index: int, net: Section) -> Iterator[CfgProblem]:
        try:
            batch = self._int(net, "batch", 1)
            subdivisions = self._int(net, "subdivisions", 1)
            time_steps = self._int(net, "time_steps", 1)
            width, height, channels = (self._int(net, k, 0) for k in ("width", "height", "channels"))
            inputs = self._int(net, "inputs", width * height * channels if width * height * channels <= INT_MAX
                               else 0)
        except _Bad as e:
            yield self._problem(index, net, str(e))
            return
        if subdivisions < 1:
            yield self._problem(index, net, f"subdivisions={subdivisions} must be at least 1")
        elif batch % subdivisions:
            yield self._problem(index, net, f"subdivisions={subdivisions} does not divide batch={batch}")
        elif self.training and batch <= 1:
            yield self._problem(index, net, "batch=1 cannot train (darknet: 'You set incorrect value batch=1 "
                                            "for Training')")
        if self.training and net.get_int("max_batches", 0) < 1:
            yield self._problem(index, net, "max_batches must be set to a positive number of iterations")
        if not (width > 0 and height > 0 and channels > 0):
            yield self._problem(index, net, "width, height and channels must be positive (darknet: 'No input "
                                            "parameters supplied')")
        elif self.cfg.heads() and (width % 32 or height % 32):
            yield self._problem(index, net, f"width={width} and height={height} must be multiples of 32 for "
                                            "YOLO networks")
        elif width * height * channels > INT_MAX:
            yield self._problem(index, net, f"the input, {width} x {height} x {channels} = "
                                            f"{width * height * channels} values, is too large for darknet, which "
                                            f"counts buffer sizes in 32-bit ints: the size overflowed, and darknet "
                                            f"would write past its buffers or run out of memory", too_large=True)
        elif inputs != width * height * channels:
            yield self._problem(index, net, f"inputs={inputs} differs from width x height x channels = "
                                            f"{width * height * channels}")
        if self.training and net.get_int("contrastive", 0) and subdivisions >= 1 and batch // subdivisions < 2:
            yield self._problem(index, net, "contrastive=1 needs a mini-batch (batch/subdivisions) of at least 2")
        policy = net.get("policy", "constant")
        if policy in ("steps", "sgdr"):
            steps = net.get_list("steps", int)
            if policy == "steps" and (steps is None or net.get("scales") is None):
                yield self._problem(index, net, "policy=steps needs both steps= and scales=")
            elif steps is not None:
                # darknet reads one scale (and seq_scale) per step with strchr(p, ',') + 1: past the last
                # comma that is address 1
                for key in ("scales", "seq_scales"):
                    values = net.get_list(key, float)
                    if values is not None and len(values) < len(steps):
                        yield self._problem(index, net, f"{len(steps)} steps but only {len(values)} {key} (darknet "
                                                        "reads one per step and crashes)")
        if self.requested_batch is not None:
            self.batch = self.requested_batch
        elif self.training and subdivisions >= 1:
            self.batch = max(1, batch // subdivisions) * max(1, time_steps)
        if self.batch < 1:
            yield self._problem(index, net, f"batch {self.batch} must be at least 1")
            self.batch = 1
        self.net_w, self.net_h, self.net_c = width, height, channels

    # --- the layers ---------------------------------------------------------------------------------------------
    def _check_layer(self, index: int, section: Section, net_ok: bool) -> Iterator[CfgProblem]:
        kind = section.kind
        self.shapes.append(None)
        if section.is_known and kind not in SUPPORTED_KINDS and kind != "net":
            yield self._problem(index, section, f"{section.header} layers are not supported: pydarknet checks "
                                                f"networks of {', '.join(sorted(SUPPORTED_KINDS))} layers only")
            return
        if not section.is_known or kind == "net":
            if kind == "net":
                yield self._problem(index, section, f"a second {section.header} section in the middle of the "
                                                    "layers")
            return
        if index > 0:
            previous = self.shapes[index - 1]
        else:
            previous = None
        if index > 0 and previous is None:
            return   # the layer before is already reported; its output (this layer's input) is unknown
        if not net_ok:
            return
        if previous is None:
            w, h, c = self.net_w, self.net_h, self.net_c
            inputs = w * h * c
        else:
            if not previous.is_image:
                yield self._problem(index, section, f"follows layer {index - 1} {previous.header}, whose output "
                                                    "is not an image (darknet expects it to be the last layer)")
                return
            w, h, c, inputs = previous.out_w, previous.out_h, previous.out_c, previous.outputs
        try:
            for option in _UNSUPPORTED_OPTIONS.get(kind, ()):
                if section.get(option) is not None and section.get_float(option) != 0:
                    raise _Bad(f"{option}= is not supported by pydarknet's checker")
            shape = getattr(self, f"_shape_{kind}")(index, section, w, h, c, inputs)
            if shape.kind not in ("contrastive", "detection"):
                if not shape.is_image:
                    raise _Bad(f"its output would be {shape.out_w} x {shape.out_h} x {shape.out_c}: nothing left "
                               f"of the {w} x {h} x {c} input")
            self._size(shape.outputs, f"its output ({shape.out_w} x {shape.out_h} x {shape.out_c})"
                       if shape.is_image else "its output")
            self._size(shape.inputs, "its input")
            for name, count in shape.weights:
                if count > INT_MAX:
                    raise _Bad(f"its {name} ({count} floats) do not fit darknet's 32-bit int counts",
                               too_large=True)
        except _Bad as e:
            if str(e):
                yield self._problem(index, section, str(e), too_large=e.too_large)
            return
        except ConfigError as e:
            yield self._problem(index, section, str(e).replace(f"{self.cfg.path}: ", ""))
            return
        self.shapes[index] = shape

    def _loaded(self, section: Section, blocks: List[Tuple[str, int]]) -> Tuple[Tuple[str, int], ...]:
        """The blocks load_weights reads: none for a layer with dontload=1."""
        return () if self._int(section, "dontload", 0) else tuple(blocks)

    def _reference(self, index: int, key: str, ref: int) -> LayerShape:
        target = index + ref if ref < 0 else ref
        if not 0 <= target < index:
            raise _Bad(f"{key}={ref} points to layer {target}, which is not an earlier layer")
        shape = self.shapes[target]
        if shape is None:
            raise _Bad(f"{key}={ref} points to layer {target}, which has problems of its own")
        return shape

    @staticmethod
    def _conv_blocks(n: int, nweights: int, bn: bool, load_scales: bool = True) -> List[Tuple[str, int]]:
        """load_convolutional_weights: biases, [scales, rolling_mean, rolling_variance], weights."""
        blocks = [("biases", n)]
        if bn and load_scales:
            blocks += [("scales", n), ("rolling_mean", n), ("rolling_variance", n)]
        return blocks + [("weights", nweights)]

    def _conv_out(self, what: str, w: int, h: int, c: int, n: int, groups: int, size: int, stride_x: int,
                  stride_y: int, padding: int) -> Tuple[int, int, int]:
        """make_convolutional_layer's output size and weight count, with its preconditions."""
        if c % groups or n % groups:
            raise _Bad(f"groups={groups} must divide both the input channels ({c}) and {what} ({n})")
        if w + 2 * padding < size or h + 2 * padding < size:
            raise _Bad(f"size={size} is larger than the {w} x {h} input with padding {padding}")
        out_w = _cdiv(w + 2 * padding - size, stride_x) + 1
        out_h = _cdiv(h + 2 * padding - size, stride_y) + 1
        nweights = (c // groups) * n * size * size
        return out_w, out_h, nweights

    def _shape_convolutional(self, index, s, w, h, c, inputs) -> LayerShape:
        n = self._at_least(s, "filters", 1)
        groups = self._at_least(s, "groups", 1)
        size = self._at_least(s, "size", 1)
        stride_x, stride_y = self._int(s, "stride_x", -1), self._int(s, "stride_y", -1)
        if stride_x < 1 or stride_y < 1:
            stride = self._at_least(s, "stride", 1)
            stride_x = stride if stride_x < 1 else stride_x
            stride_y = stride if stride_y < 1 else stride_y
        dilation = self._at_least(s, "dilation", 1)
        padding = self._at_least(s, "padding", 0, 0)
        if self._int(s, "pad", 0):
            padding = size // 2
        xnor = self._int(s, "xnor", 0)
        if xnor:
            groups = 1  # make_convolutional_layer: no groups for XNOR nets
        bn = bool(self._int(s, "batch_normalize", 0) or self._int(s, "cbn", 0))
        out_w, out_h, nweights = self._conv_out("filters", w, h, c, n, groups, size, stride_x, stride_y, padding)
        del dilation  # darknet's output size ignores it; im2col bounds-checks the dilated taps
        share = self._int(s, "share_index", -1000000000)
        blocks = self._conv_blocks(n, nweights, bn, not self._int(s, "dontloadscales", 0))
        if share != -1000000000:
            other = self._reference(index, "share_index", share)
            if other.kind != "convolutional" or (other.c, other.n, other.weights and other.weights[-1][1]) != (
                    c, n, nweights):
                raise _Bad(f"share_index={share}: layer {index + share if share < 0 else share} is not a "
                           f"[convolutional] layer of the same size, channels and filters")
            blocks = []   # a shared layer's weights are its owner's (load_weights skips it)
        if xnor:
            self._size(c * w * h, "its packed input")
        return LayerShape(index, s.header, "convolutional", w, h, c, out_w, out_h, n, w * h * c,
                          out_w * out_h * n, n, self._loaded(s, blocks))

    def _pool(self, index, s, w, h, c, kind) -> LayerShape:
        stride = self._at_least(s, "stride", 1)
        stride_x = self._at_least(s, "stride_x", stride)
        stride_y = self._at_least(s, "stride_y", stride)
        size = self._at_least(s, "size", stride)
        padding = self._at_least(s, "padding", size - 1, 0)
        if w + padding < size or h + padding < size:
            raise _Bad(f"size={size} is larger than the {w} x {h} input with padding {padding}")
        if size > 2 * max(w, h):   # darknet still visits every position of the window: a hang, not a pool
            raise _Bad(f"size={size} is more than twice the {w} x {h} input")
        out_w = _cdiv(w + padding - size, stride_x) + 1
        out_h = _cdiv(h + padding - size, stride_y) + 1
        return LayerShape(index, s.header, kind, w, h, c, out_w, out_h, c, w * h * c, out_w * out_h * c)

    def _shape_maxpool(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._pool(index, s, w, h, c, "maxpool")

    def _shape_local_avgpool(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._pool(index, s, w, h, c, "local_avgpool")

    def _shape_avgpool(self, index, s, w, h, c, inputs) -> LayerShape:
        return LayerShape(index, s.header, "avgpool", w, h, c, 1, 1, c, w * h * c, c)

    def _shape_dropout(self, index, s, w, h, c, inputs) -> LayerShape:
        if index == 0:   # darknet shares the previous layer's output: layers[-1]
            raise _Bad("a [dropout] layer cannot be the first layer")
        return LayerShape(index, s.header, "dropout", w, h, c, w, h, c, inputs, inputs)

    def _shape_upsample(self, index, s, w, h, c, inputs) -> LayerShape:
        stride = self._int(s, "stride", 2)
        if stride == 0:
            raise _Bad("stride=0: an upsample needs a non-zero stride (negative to downsample)")
        out_w, out_h = (w * stride, h * stride) if stride > 0 else (w // -stride, h // -stride)
        return LayerShape(index, s.header, "upsample", w, h, c, out_w, out_h, c, w * h * c, out_w * out_h * c)

    def _shape_route(self, index, s, w, h, c, inputs) -> LayerShape:
        text = s.get("layers")
        if text is None:
            raise _Bad("layers= is missing (darknet: 'Route Layer must specify input layers')")
        sources = [self._reference(index, "layers", ref) for ref in _atoi_items(text, f"{s.header} layers",
                                                                                  self.cfg.path)]
        groups = self._at_least(s, "groups", 1)
        group_id = self._int(s, "group_id", 0)
        if not 0 <= group_id < groups:
            raise _Bad(f"group_id={group_id} must be in 0..{groups - 1} (groups={groups})")
        first = sources[0]
        for other in sources:
            if not other.is_image:
                raise _Bad(f"layer {other.index} {other.header} outputs no image to route")
            if (other.out_w, other.out_h) != (first.out_w, first.out_h):
                raise _Bad(f"the layers it joins differ in size: layer {first.index} is {first.out_w} x "
                           f"{first.out_h}, layer {other.index} is {other.out_w} x {other.out_h}")
            if other.out_c % groups:
                raise _Bad(f"groups={groups} does not divide the {other.out_c} channels of layer {other.index}")
        total = sum(self._size(other.outputs, f"layer {other.index}'s output") for other in sources)
        self._size(total, "the joined output")
        out_c = sum(other.out_c for other in sources) // groups
        return LayerShape(index, s.header, "route", first.w, first.h, out_c, first.out_w, first.out_h, out_c,
                          total // groups, total // groups, len(sources))

    def _from(self, index: int, s: Section) -> List[LayerShape]:
        text = s.get("from")
        if text is None:   # parse_shortcut/sam/scale_channels: strlen(NULL)
            raise _Bad("from= is missing: it names the layer(s) to add")
        return [self._reference(index, "from", ref) for ref in _atoi_items(text, f"{s.header} from",
                                                                             self.cfg.path)]

    def _shape_shortcut(self, index, s, w, h, c, inputs) -> LayerShape:
        weights_type = s.get("weights_type", "none")
        if weights_type not in ("none", "per_feature", "per_layer", "per_channel"):
            raise _Bad(f"weights_type={weights_type} is not one of none, per_feature, per_channel")
        normalization = s.get("weights_normalization", "none")
        if weights_type != "none" and normalization not in ("none", "relu", "avg_relu", "softmax"):
            raise _Bad(f"weights_normalization={normalization} is not one of none, relu, softmax")
        sources = self._from(index, s)
        n = len(sources)
        nweights = {"none": 0, "per_channel": (n + 1) * c}.get(weights_type, n + 1)
        for other in sources:
            # darknet asserts the sizes agree (a no-op in release builds); channels may differ: the sum then
            # covers the channels both have
            if (other.out_w, other.out_h) != (w, h) or not other.is_image:
                raise _Bad(f"adds layer {other.index} {other.header} of {other.out_w} x {other.out_h} x "
                           f"{other.out_c} to an input of {w} x {h} x {c}: their width and height must agree")
            # forward_shortcut_layer's fast path compares the *input* of the other layer with this one's and
            # then reads a whole w x h x c from its output
            if nweights == 0 and n == 1 and (other.w, other.h, other.c) == (w, h, c) and other.outputs < w * h * c:
                raise _Bad(f"adds layer {other.index} {other.header} of {other.out_w} x {other.out_h} x "
                           f"{other.out_c} to an input of {w} x {h} x {c}: darknet would read past its output")
        blocks = [("weights", nweights)] if nweights else []
        return LayerShape(index, s.header, "shortcut", w, h, c, w, h, c, w * h * c, w * h * c, n,
                          self._loaded(s, blocks))

    def _single_from(self, index: int, s: Section) -> LayerShape:
        text = s.get("from")
        if text is None:
            raise _Bad("from= is missing: it names the layer to take")
        return self._reference(index, "from", _parse_number(text, int, f"{s.header} from", self.cfg.path))

    def _shape_sam(self, index, s, w, h, c, inputs) -> LayerShape:
        other = self._single_from(index, s)
        if (other.out_w, other.out_h, other.out_c) != (w, h, c):
            raise _Bad(f"multiplies by layer {other.index} of {other.out_w} x {other.out_h} x {other.out_c}, but "
                       f"its input is {w} x {h} x {c}: they must be the same size")
        return LayerShape(index, s.header, "sam", w, h, c, w, h, c, inputs, inputs)

    def _shape_scale_channels(self, index, s, w, h, c, inputs) -> LayerShape:
        if self._int(s, "scale_wh", 0):
            raise _Bad("scale_wh= is not supported by pydarknet's checker")
        other = self._single_from(index, s)
        if (w, h) != (1, 1) or c != other.out_c:
            raise _Bad(f"scales the {other.out_c} channels of layer {other.index} by an input of {w} x {h} x {c}: "
                       f"the input must be 1 x 1 x {other.out_c}")
        return LayerShape(index, s.header, "scale_channels", w, h, c, other.out_w, other.out_h, other.out_c,
                          other.outputs, other.outputs)

    def _reorg(self, index, s, w, h, c, kind) -> LayerShape:
        stride = self._at_least(s, "stride", 1)
        if self._int(s, "reverse", 0):
            if c % (stride * stride):
                raise _Bad(f"reverse with stride={stride} needs channels divisible by {stride * stride}, not {c}")
            out = (w * stride, h * stride, c // (stride * stride))
        else:
            if w % stride or h % stride:
                raise _Bad(f"stride={stride} must divide the {w} x {h} input")
            out = (w // stride, h // stride, c * stride * stride)
        return LayerShape(index, s.header, kind, w, h, c, *out, w * h * c, out[0] * out[1] * out[2])

    def _shape_reorg(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._reorg(index, s, w, h, c, "reorg")

    def _shape_reorg3d(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._reorg(index, s, w, h, c, "reorg3d")

    def _head(self, index, s, w, h, c, inputs, kind: str, extra: int) -> LayerShape:
        classes = self._int(s, "classes", 20)
        total = self._int(s, "num", 5 if kind == "region" else 1)
        if classes < 1 or total < 1:
            raise _Bad()    # _check_head reports it
        mask = s.get_list("mask", int) if kind != "region" else None
        if mask is not None and not all(0 <= m < total for m in mask):
            raise _Bad()    # likewise
        self._at_least(s, "max", 200)
        if kind == "region":
            coords = self._int(s, "coords", 4)
            if coords != 4:
                raise _Bad(f"coords={coords}: only coords=4 is supported")
            per_cell = total
            tree = s.get("tree")
            if tree is not None:
                self._check_tree(tree, classes)
        else:
            per_cell = len(mask) if mask is not None else total
            if kind == "Gaussian_yolo" and s.get("anchors") is not None:
                # parse_gaussian_yolo counts every comma (a '#' does not stop it) and writes that many biases
                count = s.get("anchors", "").count(",") + 1
                if count > 2 * total:
                    raise _Bad(f"anchors has {count} values but num={total} has room for {2 * total} (darknet "
                               "writes past its anchors)")
        outputs = w * h * per_cell * (classes + extra)
        self._size(w * h * per_cell, "its anchor grid")
        if outputs != inputs and index > 0 and self.cfg.layers[index - 1].kind == "convolutional":
            raise _Bad()    # _check_head names the filters= to change
        if outputs != inputs:
            raise _Bad(f"its input is {w} x {h} x {c} = {inputs} values, but classes={classes} with {per_cell} "
                       f"anchors per cell needs {w} x {h} x {per_cell * (classes + extra)} (darknet: 'filters= in "
                       f"the [convolutional]-layer doesn't correspond to classes= or mask= in {s.header}-layer')")
        if kind == "yolo":
            embedding = self._int(s, "embedding_layer", 999999)
            if embedding != 999999:
                source = self._reference(index, "embedding_layer", embedding)
                if source.kind != "convolutional":
                    raise _Bad(f"embedding_layer={embedding} must point to a [convolutional] layer")
                self.embedding[index] = source.n // per_cell
        return LayerShape(index, s.header, kind, w, h, per_cell * (classes + extra), w, h,
                          per_cell * (classes + extra), outputs, outputs, per_cell)

    def _check_tree(self, tree: str, classes: int) -> None:
        """read_tree (fopen relative to the working folder, never checked) and the region's use of it."""
        path = Path(tree)
        if not path.is_file():
            raise _Bad(f"tree={tree}: no such file (darknet opens it relative to the current folder, "
                       f"{os.getcwd()}, and crashes without it)")
        lines = path.read_bytes().decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines):
            parts = line.split()
            if not parts or len(parts[0]) > 255 or len(parts) < 2 or not re.fullmatch(r"-?\d+", parts[1]) or \
                    not -1 <= int(parts[1]) < number:
                raise _Bad(f"tree={tree} line {number + 1} is not 'name parent' with an earlier parent")
        if len(lines) != classes:
            raise _Bad(f"tree={tree} has {len(lines)} classes, the layer classes={classes}")

    def _shape_yolo(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._head(index, s, w, h, c, inputs, "yolo", 5)

    def _shape_Gaussian_yolo(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._head(index, s, w, h, c, inputs, "Gaussian_yolo", 9)

    def _shape_region(self, index, s, w, h, c, inputs) -> LayerShape:
        return self._head(index, s, w, h, c, inputs, "region", 5)

    def _shape_detection(self, index, s, w, h, c, inputs) -> LayerShape:
        coords = self._int(s, "coords", 1)
        if coords != 4:
            raise _Bad(f"coords={coords}: only coords=4 is supported (darknet reads 4 box values)")
        classes = self._at_least(s, "classes", 1)
        num = self._at_least(s, "num", 1)
        side = self._at_least(s, "side", 7)
        self._int(s, "rescore", 0)
        needed = side * side * ((1 + coords) * num + classes)
        if needed != inputs:
            raise _Bad(f"side={side}, num={num}, classes={classes} need {needed} input values, the layer before "
                       f"gives {inputs}")
        return LayerShape(index, s.header, "detection", side, side, 0, 0, 0, 0, inputs, inputs, num)

    def _shape_contrastive(self, index, s, w, h, c, inputs) -> LayerShape:
        self._at_least(s, "classes", 1000)
        ref = self._int(s, "yolo_layer", 0)
        target = index + ref if ref < 0 else ref
        if target == 0:   # darknet: a NULL [yolo] layer, dereferenced
            raise _Bad(f"yolo_layer={ref} must point to an earlier [yolo] layer")
        yolo = self._reference(index, "yolo_layer", ref)
        if yolo.kind != "yolo" or target not in self.embedding:
            raise _Bad(f"yolo_layer={ref} must point to an earlier [yolo] layer with embedding_layer=")
        if inputs // (yolo.n * h * w) != self.embedding[target]:
            raise _Bad(f"its input gives embeddings of {inputs // (yolo.n * h * w)} values, the [yolo] layer "
                       f"{target} of {self.embedding[target]} (they should use the same [convolutional] layer)")
        return LayerShape(index, s.header, "contrastive", w, h, c, 0, 0, 0, inputs, inputs)

    def _shape_connected(self, index, s, w, h, c, inputs) -> LayerShape:
        outputs = self._at_least(s, "output", 1)
        bn = bool(self._int(s, "batch_normalize", 0))
        blocks = [("biases", outputs), ("weights", self._size(outputs * inputs, "its weights"))]
        if bn and not self._int(s, "dontloadscales", 0):
            blocks += [("scales", outputs), ("rolling_mean", outputs), ("rolling_variance", outputs)]
        return LayerShape(index, s.header, "connected", 1, 1, inputs, 1, 1, outputs, inputs, outputs, outputs,
                          self._loaded(s, blocks))

    def _shape_crnn(self, index, s, w, h, c, inputs) -> LayerShape:
        size = self._at_least(s, "size", 3)
        stride = self._at_least(s, "stride", 1)
        self._at_least(s, "dilation", 1)
        padding = self._at_least(s, "padding", 0, 0)
        if self._int(s, "pad", 0):
            padding = size // 2
        output = self._at_least(s, "output", 1)
        hidden = self._at_least(s, "hidden", 1)
        groups = 1 if self._int(s, "xnor", 0) else self._at_least(s, "groups", 1)
        bn = bool(self._int(s, "batch_normalize", 0))
        blocks: List[Tuple[str, int]] = []
        for part, (cin, cout) in (("input", (c, hidden)), ("self", (hidden, hidden)), ("output", (hidden, output))):
            out_w, out_h, nweights = self._conv_out(f"{part} filters", w, h, cin, cout, groups, size, stride, stride,
                                                    padding)
            if (out_w, out_h) != (w, h):
                raise _Bad(f"its convolutions must keep the {w} x {h} size (stride 1, pad=1), they give "
                           f"{out_w} x {out_h}")
            blocks += [(f"{part} {name}", count) for name, count in self._conv_blocks(cout, nweights, bn)]
        self._size(w * h * hidden * 2, "its state")
        return LayerShape(index, s.header, "crnn", w, h, c, w, h, output, w * h * c, w * h * output, output,
                          self._loaded(s, blocks))

    def _check_network_sizes(self) -> Iterator[CfgProblem]:
        shapes = [s for s in self.shapes if s is not None]
        # parse_network_cfg_custom averages the outputs of the layers wider and taller than 1: with none,
        # it divides by zero
        if not any(s.w > 1 and s.h > 1 for s in shapes):
            yield CfgProblem("no layer has an input wider and taller than 1 pixel (darknet divides by their count)")
        # darknet allocates batch x (each layer's input and output) in ints (the C shim's largest_layer_floats)
        largest = max([(self.net_w * self.net_h * self.net_c, None)] +
                      [(max(s.inputs, s.outputs), s) for s in shapes], key=lambda item: item[0])
        if largest[0] * self.batch > INT_MAX:
            where = "the input" if largest[1] is None else f"layer {largest[1].index} {largest[1].header}"
            yield CfgProblem(f"batch {self.batch} is too large for this network: {where} holds {largest[0]} values "
                             f"per image, so batch <= {INT_MAX // largest[0]} (darknet counts buffer sizes in 32-bit "
                             f"ints)", too_large=True)

    # --- detection heads ----------------------------------------------------------------------------------------
    def _check_heads(self) -> Iterator[CfgProblem]:
        seen_classes = set()
        for head in self.cfg.heads():
            problems = list(self._guarded(head.index, head.section, self._check_head))
            yield from problems
            if not any(p.severity == "error" for p in problems):
                seen_classes.add(head.section.get_int("classes", 20))
        if len(seen_classes) > 1:
            yield CfgProblem(f"the detection layers disagree on classes: {sorted(seen_classes)}")

    def _check_head(self, index: int, section: Section) -> Iterator[CfgProblem]:
        head = next(h for h in self.cfg.heads() if h.section is section)
        classes = section.get_int("classes", 20)
        if classes < 1:
            yield self._problem(index, section, f"classes={classes} must be at least 1")
            return
        if self.classes is not None and classes != self.classes:
            yield self._problem(index, section, f"classes={classes} but the dataset has {self.classes} classes")
        num = head.anchor_count()
        if num < 1:
            yield self._problem(index, section, f"num={num} must be at least 1")
            return
        if section.kind != "region":
            outside = [m for m in section.get_list("mask", int) or [] if not 0 <= m < num]
            if outside:
                yield self._problem(index, section, f"mask {','.join(map(str, outside))}: anchor indexes must be "
                                                    f"below num={num} (darknet reads past its anchors)")
            anchors = section.get_list("anchors", float)
            if anchors is not None and len(anchors) < 2 * num:
                yield self._problem(index, section, f"num={num} needs {2 * num} anchor numbers, found "
                                                    f"{len(anchors)} (darknet silently uses 0.5 px for the "
                                                    "missing ones; a missing comma glues two numbers)")
            counters = section.get_list("counters_per_class", int)
            if counters is not None and len(counters) != classes:
                yield self._problem(index, section, f"counters_per_class has {len(counters)} values for "
                                                    f"{classes} classes")
        expected, previous = head.expected_filters(), head.previous
        if previous is None:
            yield self._problem(index, section, "a detection layer cannot be the first layer")
        elif previous.kind != "convolutional":
            yield self._problem(index, section, f"the layer before is {previous.header}, not [convolutional]: "
                                                f"its output must have {expected} channels", "warning")
        elif previous.get_int("filters", 1) != expected:
            yield self._problem(index, section, f"the [convolutional] layer {index - 1} before it has filters="
                                                f"{previous.get_int('filters', 1)}, but classes={classes} with "
                                                f"{head.predictions_per_cell()} anchors per cell needs "
                                                f"filters={expected} (darknet: 'filters= in the "
                                                f"[convolutional]-layer doesn't correspond to classes=')")
