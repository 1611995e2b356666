"""Choosing the output class list: keep everything, filter to a list, or rename/merge through a mapping."""
from __future__ import annotations

import difflib
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DatasetError

__all__ = ["ClassSpec", "resolve_classes", "parse_classes_option"]

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
