"""Deterministic train/valid split, stratified by class, that never separates images with identical content."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Collection, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["parse_split", "stratified_group_split"]


def parse_split(split) -> Tuple[float, float]:
    """Normalise a split given as ``(train, valid)`` weights (or a string ``"0.8,0.2"``) to fractions."""
    if isinstance(split, str):
        try:
            split = tuple(float(part) for part in split.split(","))
        except ValueError:
            raise ValueError(f"split must be two numbers like '0.8,0.2', got {split!r}") from None
    parts = tuple(float(part) for part in split)
    if len(parts) != 2 or min(parts) < 0 or sum(parts) <= 0 or not all(np.isfinite(parts)):
        raise ValueError(f"split must be two non-negative weights (train, valid) with a positive sum, got {split!r}")
    total = sum(parts)
    return parts[0] / total, parts[1] / total


def stratified_group_split(
    groups: Sequence[int],
    classes_per_item: Sequence[Collection[int]],
    order_keys: Sequence[str],
    valid_fraction: float,
    seed: int = 0,
) -> np.ndarray:
    """Decide which items go to the validation set; returns a boolean array (True = valid).

    ``groups`` gives each item a group number: a group (identical images) always lands on one side.
    ``classes_per_item`` holds the class ids present in each item (empty for negatives).
    ``order_keys`` are stable names of the items (e.g. image paths): the result depends on them and the seed,
    not on the order the items arrive in.

    Each group is filed under its rarest class (negatives under their own stratum), groups are shuffled with
    ``seed`` within each stratum, and then walked stratum by stratum, sending a group to valid whenever that keeps
    the running count of valid items closest to ``valid_fraction`` of the items seen so far.  So the overall
    fraction is exact to within one group, and every class gets its share to within one image.
    """
    n_items = len(groups)
    if not (len(classes_per_item) == len(order_keys) == n_items):
        raise ValueError("groups, classes_per_item and order_keys must have the same length")
    members: Dict[int, List[int]] = defaultdict(list)
    for item, group in enumerate(groups):
        members[group].append(item)

    images_per_class = Counter(c for classes in classes_per_item for c in set(classes))

    def stratum(group_items: List[int]) -> Tuple[int, int]:
        classes = {c for i in group_items for c in classes_per_item[i]}
        if not classes:
            return (0, -1)  # negatives: a stratum of their own, walked first
        rarest = min(classes, key=lambda c: (images_per_class[c], c))
        return (images_per_class[rarest], rarest)

    strata: Dict[Tuple[int, int], List[Tuple[str, int]]] = defaultdict(list)
    for group, group_items in members.items():
        strata[stratum(group_items)].append((min(order_keys[i] for i in group_items), group))

    rng = np.random.default_rng(seed)
    is_valid = np.zeros(n_items, dtype=bool)
    seen = 0
    n_valid = 0
    for key in sorted(strata):
        ordered = sorted(strata[key])
        for position in rng.permutation(len(ordered)):
            group_items = members[ordered[position][1]]
            seen += len(group_items)
            # put the group in valid iff that leaves the valid count nearer its target
            if n_valid + len(group_items) / 2.0 < valid_fraction * seen:
                n_valid += len(group_items)
                is_valid[group_items] = True
    return is_valid
