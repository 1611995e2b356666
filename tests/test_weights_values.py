"""Weights holding NaN or infinite numbers load silently in darknet and detect nothing: they are refused, naming
the file and the first layer that holds one, before darknet reads them."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from pydarknet import Detector, WeightsError
from pydarknet.cfg import check_network
from pydarknet.netfiles import check_weights_values, weights_header_size


def _poisoned(tmp_path, yolo_cfg, yolo_weights, layer: int, block: str, value: float, at: int = 7):
    """A copy of the real weights with one float of one layer's block replaced."""
    layout = check_network(yolo_cfg)
    position = 0
    for shape in layout.layers:
        for name, count in shape.weights:
            if shape.index == layer and name == block:
                position += at
                break
            position += count
        else:
            continue
        break
    else:
        raise AssertionError(f"layer {layer} has no {block}")
    path = tmp_path / "poisoned.weights"
    shutil.copy(yolo_weights, path)
    values = np.memmap(path, dtype="<f4", mode="r+", offset=weights_header_size(path))
    values[position] = value
    values.flush()
    del values
    return path


@pytest.mark.parametrize("layer, block, value", [
    (0, "biases", np.nan), (10, "rolling_variance", np.inf), (15, "weights", -np.inf), (22, "weights", np.nan),
])
def test_nan_and_inf_weights_are_refused_naming_the_layer(tmp_path, yolo_cfg, yolo_weights, layer, block, value):
    path = _poisoned(tmp_path, yolo_cfg, yolo_weights, layer, block, value)
    header = check_network(yolo_cfg).layers[layer].header
    with pytest.raises(WeightsError) as e:
        Detector(yolo_cfg, path, device="cpu", backend="darknet")
    message = str(e.value)
    assert str(path) in message and f"layer {layer} {header}: its {block} hold {value}" in message
    assert "float 7 of" in message


def test_the_real_weights_pass(yolo_cfg, yolo_weights):
    check_weights_values(yolo_weights, check_network(yolo_cfg))   # no exception


def test_a_file_of_another_size_is_left_to_the_loader(tmp_path, yolo_cfg, yolo_weights):
    """The size check (and its message: truncated, or bytes more) is the loader's; this one only reads numbers."""
    path = tmp_path / "short.weights"
    data = bytearray(yolo_weights.read_bytes()[:4096])
    data[100:104] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(data))
    check_weights_values(path, check_network(yolo_cfg))
