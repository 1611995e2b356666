"""200 mutants of yolov3-tiny.cfg / yolov4-tiny.cfg, each opened by Detector() in a process of its own: none may
kill the interpreter or hang (bench/fuzz_cfg.py runs the same fuzz at 2,000 mutants; docs/reliability.md)."""
from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "bench" / "fuzz_cfg.py"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_cfg", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mutants_are_seeded():
    fuzz = _fuzz_module()
    import random

    text = (Path(__file__).resolve().parents[1] / "darknet" / "cfg" / "yolov4-tiny.cfg").read_text()
    first = [fuzz.mutate(text, random.Random(4)) for _ in range(3)]
    assert first == [fuzz.mutate(text, random.Random(4)) for _ in range(3)]
    assert all(mutant != text for mutant, _kinds in first)


@pytest.mark.slow
def test_no_mutant_kills_the_interpreter(models_dir):
    fuzz = _fuzz_module()
    results, _seconds = fuzz.fuzz(200, seed=11, jobs=2, timeout=90, progress=False)
    outcomes = Counter(result["outcome"] for _seed, _kinds, result in results)
    bad = [(seed, kinds, result) for seed, kinds, result in results
           if result["outcome"] in ("death", "hang", "bug")]
    assert not bad, fuzz.table(results)
    # the checker is exercised, not bypassed: most mutants pass it and reach darknet's parser
    assert outcomes["loaded"] + outcomes["darknet"] > 0.4 * len(results), fuzz.table(results)
    assert outcomes["checker"] > 0.2 * len(results), fuzz.table(results)
