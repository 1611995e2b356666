from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet.datasets.classes import parse_classes_option, resolve_classes
from pydarknet.datasets.split import parse_split, stratified_group_split
from pydarknet.errors import DatasetError

items = st.lists(st.tuples(st.integers(0, 30), st.frozensets(st.integers(0, 5), max_size=3)), min_size=1,
                 max_size=120)


@settings(max_examples=60, deadline=None)
@given(items, st.floats(0, 1), st.integers(0, 2 ** 32 - 1), st.randoms(use_true_random=False))
def test_split_properties(data, valid_fraction, seed, random):
    groups = [g for g, _ in data]
    classes = [c for _, c in data]
    keys = [f"{i:04d}" for i in range(len(data))]
    is_valid = stratified_group_split(groups, classes, keys, valid_fraction, seed)
    # a group never straddles the split
    for group in set(groups):
        assert len({bool(is_valid[i]) for i, g in enumerate(groups) if g == group}) == 1
    # the overall valid count is within one group of the target
    largest = max(groups.count(g) for g in set(groups))
    assert abs(is_valid.sum() - valid_fraction * len(data)) <= largest / 2 + 1e-9
    # same seed, items shuffled: every item gets the same side
    order = list(range(len(data)))
    random.shuffle(order)
    shuffled = stratified_group_split([groups[i] for i in order], [classes[i] for i in order],
                                      [keys[i] for i in order], valid_fraction, seed)
    assert np.array_equal(shuffled, is_valid[order])


def test_each_class_gets_its_share():
    classes = [{0}] * 100 + [{1}] * 20 + [{2}] * 5 + [set()] * 10
    is_valid = stratified_group_split(list(range(len(classes))), classes, [str(i) for i in range(len(classes))],
                                      0.2, seed=3)
    for cls, n in ((0, 100), (1, 20), (2, 5)):
        chosen = sum(1 for c, v in zip(classes, is_valid) if cls in c and v)
        assert abs(chosen - 0.2 * n) <= 1
    assert sum(1 for c, v in zip(classes, is_valid) if not c and v) == 2


def test_extremes():
    assert not stratified_group_split([0, 1, 2], [{0}] * 3, ["a", "b", "c"], 0.0).any()
    assert stratified_group_split([0, 1, 2], [{0}] * 3, ["a", "b", "c"], 1.0).all()


@pytest.mark.parametrize("split, expected", [((0.8, 0.2), (0.8, 0.2)), ("8,2", (0.8, 0.2)), ([1, 0], (1.0, 0.0))])
def test_parse_split(split, expected):
    assert parse_split(split) == pytest.approx(expected)


@pytest.mark.parametrize("split", ["a,b", (0.5,), (1, -1), (0, 0), "1,2,3"])
def test_parse_split_rejects(split):
    with pytest.raises(ValueError, match="split must be"):
        parse_split(split)


def test_parse_classes_option():
    assert parse_classes_option(None) is None and parse_classes_option(" ") is None
    assert parse_classes_option("cocacola, pepsi") == ["cocacola", "pepsi"]
    assert parse_classes_option("coca-cola=cocacola,coke=cocacola,pepsi") == {
        "coca-cola": "cocacola", "coke": "cocacola", "pepsi": "pepsi"}
    with pytest.raises(ValueError, match="SOURCE=NAME"):
        parse_classes_option("a=,b")
    with pytest.raises(ValueError, match="maps 'alpha' twice, to 'x' and to 'y'"):
        parse_classes_option("alpha=x,alpha=y")
    assert parse_classes_option("a=x,a=x") == {"a": "x"}     # said twice, the same way: harmless


def test_resolve_classes():
    assert resolve_classes(None, {"b", "a"}) == (["a", "b"], {"a": 0, "b": 1})
    assert resolve_classes(["b"], {"a", "b"}) == (["b"], {"b": 0})
    assert resolve_classes({"x": "k", "y": "k", "a": "a"}, {"x", "a"}) == (["k", "a"], {"x": 0, "y": 0, "a": 1})
    with pytest.raises(DatasetError, match="duplicated|more than once"):
        resolve_classes(["a", "a"], {"a"})
    with pytest.raises(DatasetError, match="unknown classes 'q', 'r'"):
        resolve_classes(["a", "q", "r"], {"a"})
    with pytest.raises(DatasetError, match=r"'HP' \(did you mean hp\?\)"):    # FlickrLogos-32's folder vs label
        resolve_classes(["HP", "adidas"], {"hp", "adidas", "guiness"})
    with pytest.raises(TypeError):
        resolve_classes("a,b", {"a"})
