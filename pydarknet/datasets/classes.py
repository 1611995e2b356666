"""Class names: one normal form for every reader, and choosing the output class list (keep everything, filter to
a list, or rename/merge through a mapping).

Normal form (``clean_class_name``, applied by every reader to every name it reads: VOC ``<name>``, Logos-32plus
``name``, FlickrLogos class folders, COCO category names, Logos in the Wild after its own normalisation, YOLO
names files): surrounding whitespace is stripped and every inner run of whitespace, newlines and tabs included,
becomes one space (``"coca\\ncola"`` -> ``"coca cola"``: what an annotation tool's line wrap or a pasted tab
meant).  Other control characters (NUL, escape, ...) are refused, as is a name left empty: nobody means them,
and they would corrupt ``obj.names``, which darknet reads one line per class.  ``names_line_problem`` is the
writer's last check of the same rule.
"""
from __future__ import annotations

import difflib
import os
import unicodedata
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DatasetError

__all__ = ["ClassSpec", "resolve_classes", "parse_classes_option", "clean_class_name", "names_line_problem"]

# every character Python's splitlines() or darknet's fgetl() takes for the end of a line
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _control_characters(text: str) -> List[str]:
    # Cc: C0/C1 controls (NUL, ESC, DEL ...); Cs: lone surrogates (undecodable bytes), which cannot be written
    return sorted({ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs")})


def clean_class_name(name: str, path: Optional[os.PathLike] = None, where: str = "") -> str:
    """``name`` in normal form (see the module docstring), or ``DatasetError`` naming ``path`` (the annotation
    file) and ``where`` (e.g. "object 3: ") when it is empty or holds a control character other than whitespace."""
    text = " ".join(str(name).split())
    if not text:
        raise DatasetError(f"{where}empty class name {name!r}", path=path)
    bad = _control_characters(text)
    if bad:
        raise DatasetError(f"{where}class name {name!r} contains the control character"
                           f"{'s' if len(bad) > 1 else ''} {', '.join(repr(ch) for ch in bad)}", path=path)
    return text


def names_line_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be one line of a ``.names`` file (empty, a line break, NUL, ...), or None if it can."""
    if not isinstance(name, str) or not name.strip():
        return "empty"
    if any(ch in _LINE_BREAKS for ch in name):
        return "contains a line break"
    if _control_characters(name):
        return "contains a control character"
    return None

# None: every label seen, sorted; a list: those labels in that order; a dict: source label -> class name
ClassSpec = Optional[Union[Sequence[str], Mapping[str, str]]]


def resolve_classes(classes: ClassSpec, labels_present: Collection[str], allow_empty_classes: bool = False
                    ) -> Tuple[List[str], Dict[str, int]]:
    """Turn a class specification into ``(class names, {source label: class id})``.

    Labels absent from the mapping are to be dropped by the caller.  Every requested class must receive at least
    one label that occurs in the data (``labels_present``); otherwise a ``DatasetError`` lists the missing ones
    with the closest labels that do occur, since a typo there would silently train a detector for a class with
    no examples.  ``allow_empty_classes`` lifts that check (e.g. a fixed class list of which a small generated
    dataset happens to miss some).
    """
    if isinstance(classes, str):
        raise TypeError("classes must be a list of names or a dict, not a string (use parse_classes_option)")
    present = set(labels_present)
    if classes is None:
        names = sorted(present)
        return names, {name: i for i, name in enumerate(names)}

    if isinstance(classes, Mapping):
        names = list(dict.fromkeys(classes.values()))  # first appearance order, duplicates merged
        index = {name: i for i, name in enumerate(names)}
        label_to_id = {label: index[target] for label, target in classes.items()}
    else:
        names = list(classes)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DatasetError(f"class list names {', '.join(duplicates)} more than once")
        label_to_id = {name: i for i, name in enumerate(names)}

    fed = {label_to_id[label] for label in present if label in label_to_id}
    missing = [name for i, name in enumerate(names) if i not in fed]
    if missing and not allow_empty_classes:
        details = []
        for name in missing:
            sources = [label for label, i in label_to_id.items() if names[i] == name]
            by_case = {p for s in sources for p in present if p.lower() == s.lower()}   # FlickrLogos' HP is "hp"
            close = sorted(by_case | {m for s in sources for m in difflib.get_close_matches(s, present, n=3,
                                                                                          cutoff=0.6)})
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            details.append(f"{name!r}{hint}")
        raise DatasetError(
            f"unknown class{'es' if len(missing) > 1 else ''} {', '.join(details)}: no box in the input carries "
            f"{'these labels' if len(missing) > 1 else 'this label'}; the input has {len(present)} labels"
            + (f": {', '.join(sorted(present)[:20])}{' ...' if len(present) > 20 else ''}" if present else ""))
    return names, label_to_id


def parse_classes_option(text: Optional[str]) -> ClassSpec:
    """Parse the command line's ``--classes``: ``"a,b"`` -> list; ``"coca-cola=cocacola,coke=cocacola,pepsi"`` -> dict.

    In the dict form a bare name maps to itself.  Empty text means "all classes" (None).
    """
    if text is None or not text.strip():
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not any("=" in item for item in items):
        return items
    mapping: Dict[str, str] = {}
    for item in items:
        source, _, target = item.partition("=")
        source, target = source.strip(), (target.strip() if "=" in item else source.strip())
        if not source or not target:
            raise ValueError(f"--classes item {item!r} must be NAME or SOURCE=NAME")
        if mapping.get(source, target) != target:
            raise ValueError(f"--classes maps {source!r} twice, to {mapping[source]!r} and to {target!r}")
        mapping[source] = target
    return mapping
