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
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import ConfigError

__all__ = ["TEMPLATES", "HEAD_KINDS", "Cfg", "Section", "Head", "CfgProblem", "read_cfg", "make_cfg", "validate_cfg",
           "find_cfg_problems", "template_path", "default_max_batches", "anchor_pairs", "format_value",
           "darknet_view"]

PathLike = Union[str, "os.PathLike[str]"]

# the templates make_cfg is tested with; any other cfg file darknet ships can be named too
TEMPLATES = (
    "yolov3-tiny", "yolov4-tiny", "yolov4-tiny-3l", "yolov3", "yolov4", "yolov4-csp", "yolov7-tiny", "yolov3_5l",
)

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

    __slots__ = ("raw",)

    def __init__(self, raw: str):
        self.raw = raw

    @property
    def content(self) -> str:
        return darknet_view(self.raw)

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
        return ",".join(format_value(v) for v in value)  # type: ignore[union-attr]
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item())  # type: ignore[union-attr]
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

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value darknet would use for ``key`` (its first occurrence), or ``default``."""
        line = self._find(key)
        if line is None or line.value is None:
            return default
        return line.value

    def get_int(self, key: str, default: Optional[int] = None) -> Optional[int]:
        text = self.get(key)
        return default if text is None else _parse_number(text, int, f"{self.header} {key}", self._path)

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
        return self.section.get_int("num", default)  # type: ignore[return-value]

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
            extra = self.section.get_int("coords", 4) + 1  # type: ignore[operator]
        else:
            extra = _HEAD_EXTRA_OUTPUTS[kind]
        return (classes + extra) * self.predictions_per_cell()  # type: ignore[operator]


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
    ``darknet/cfg``."""
    package = Path(__file__).resolve().parent
    for folder in (package / "templates", package.parent / "darknet" / "cfg"):
        candidate = folder / f"{name}.cfg"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"unknown cfg template {name!r}; known templates: {', '.join(TEMPLATES)} "
                      f"(or pass the path of a .cfg file)")


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
    template; without ``burn_in``, a template's warm-up as long as the whole run becomes a tenth of it. ``width_multiplier`` scales the filters of every convolution except those feeding a detection
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

@dataclass(frozen=True)
class CfgProblem:
    """Something darknet would die on or silently get wrong (``severity="error"``), or a doubtful setting."""

    message: str
    layer: Optional[int] = None      # darknet's layer index; -1 for [net]; None for the file as a whole
    header: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = "" if self.layer is None else ("[net]: " if self.layer < 0 else f"layer {self.layer} {self.header}: ")
        return f"{where}{self.message}"


def find_cfg_problems(cfg: Union[Cfg, PathLike], classes: Optional[int] = None,
                      training: bool = False) -> List[CfgProblem]:
    """Everything :func:`validate_cfg` checks, as a list instead of an exception."""
    if not isinstance(cfg, Cfg):
        cfg = read_cfg(cfg)
    return list(_Checker(cfg, classes, training).run())


def validate_cfg(cfg: Union[Cfg, PathLike], classes: Optional[int] = None, training: bool = False
                 ) -> List[CfgProblem]:
    """Check a cfg for what darknet would die on, before darknet sees it.

    Raises :class:`~pydarknet.errors.ConfigError` naming the file and each bad layer by darknet's index;
    returns the warnings. ``classes`` (from the .data/.names) must then match every head. ``training=True``
    adds what only training needs (a batch above 1, max_batches).
    """
    if not isinstance(cfg, Cfg):
        cfg = read_cfg(cfg)
    problems = find_cfg_problems(cfg, classes, training)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listing = "\n  ".join(str(p) for p in errors)
        raise ConfigError(f"{len(errors)} problem{'s' if len(errors) > 1 else ''} darknet cannot work with:\n  "
                          f"{listing}", path=cfg.path)
    return [p for p in problems if p.severity != "error"]


class _Checker:
    """The checks behind :func:`validate_cfg`; each ``_check_*`` yields :class:`CfgProblem`."""

    def __init__(self, cfg: Cfg, classes: Optional[int], training: bool):
        self.cfg, self.classes, self.training = cfg, classes, training

    def run(self) -> Iterator[CfgProblem]:
        cfg = self.cfg
        if any(_Line(raw).is_option for raw in cfg.preamble):
            yield CfgProblem("options before the first [section] (darknet crashes on them)")
        if not cfg.sections:
            yield CfgProblem("no sections: the file has no [net] and no layers")
            return
        has_net = cfg.sections[0].kind == "net"
        if has_net:
            yield from self._guarded(-1, cfg.sections[0], self._check_net)
        else:
            yield CfgProblem(f"the first section must be [net] or [network], not {cfg.sections[0].header}")
        if not cfg.layers:
            yield CfgProblem("no layers after [net]")
        numbered = ([(-1, cfg.sections[0])] if has_net else []) + list(enumerate(cfg.layers))
        for index, section in numbered:
            yield from self._check_lines(index, section)
            if index >= 0:
                yield from self._guarded(index, section, self._check_layer)
        yield from self._check_heads()

    @staticmethod
    def _problem(index: int, section: Section, message: str, severity: str = "error") -> CfgProblem:
        return CfgProblem(message, index, section.header, severity)

    def _guarded(self, index: int, section: Section, check) -> Iterator[CfgProblem]:
        """Run one check; a value that is not a number where one is needed becomes a problem too."""
        try:
            yield from check(index, section)
        except ConfigError as e:
            yield self._problem(index, section, str(e).replace(f"{self.cfg.path}: ", ""))

    def _check_lines(self, index: int, section: Section) -> Iterator[CfgProblem]:
        if not section.is_known:
            yield self._problem(index, section, f"unknown section type {section.header} "
                                                "(darknet: 'Type not recognized')")
        for line in section._lines:
            if line.is_option and line.key is None:
                yield self._problem(index, section, f"{line.content!r} has no value (darknet ignores the line)",
                                    "warning")
            elif line.is_option and line.value is None:
                yield self._problem(index, section, f"{line.content!r} is not key=value", "warning")

    def _check_net(self, index: int, net: Section) -> Iterator[CfgProblem]:
        batch, subdivisions = net.get_int("batch", 1), net.get_int("subdivisions", 1)
        if subdivisions < 1:
            yield self._problem(index, net, f"subdivisions={subdivisions} must be at least 1")
        elif batch % subdivisions:
            yield self._problem(index, net, f"subdivisions={subdivisions} does not divide batch={batch}")
        elif self.training and batch <= 1:
            yield self._problem(index, net, "batch=1 cannot train (darknet: 'You set incorrect value batch=1 "
                                            "for Training')")
        if self.training and net.get_int("max_batches", 0) < 1:
            yield self._problem(index, net, "max_batches must be set to a positive number of iterations")
        width, height, channels = (net.get_int(k, 0) for k in ("width", "height", "channels"))
        if not (width > 0 and height > 0 and channels > 0) and net.get_int("inputs", 0) <= 0:
            yield self._problem(index, net, "width, height and channels must be positive (darknet: 'No input "
                                            "parameters supplied')")
        elif self.cfg.heads() and (width % 32 or height % 32):
            yield self._problem(index, net, f"width={width} and height={height} must be multiples of 32 for "
                                            "YOLO networks")
        if net.get("policy", "constant") == "steps":
            steps, scales = net.get_list("steps", int), net.get_list("scales", float)
            if steps is None or scales is None:
                yield self._problem(index, net, "policy=steps needs both steps= and scales=")
            elif len(scales) < len(steps):
                yield self._problem(index, net, f"{len(steps)} steps but only {len(scales)} scales (darknet "
                                                "reads one scale per step and crashes)")

    def _check_layer(self, index: int, section: Section) -> Iterator[CfgProblem]:
        kind = section.kind
        if kind == "convolutional" and section.get_int("filters", 1) < 1:
            yield self._problem(index, section, "filters must be at least 1")
        key = _REFERENCE_KEYS.get(kind)
        if key is not None and key in section:
            for ref in section.get_list(key, int):
                target = index + ref if ref < 0 else ref
                if not 0 <= target < index:
                    yield self._problem(index, section, f"{key}={ref} points to layer {target}, which is not an "
                                                        "earlier layer")

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
                                                f"filters={expected}")


# layers that name earlier layers, and the key they do it with
_REFERENCE_KEYS = {"route": "layers", "shortcut": "from", "sam": "from", "scale_channels": "from"}
