"""Detections <-> supervision.Detections, with real detections of darknet's sample photos and supervision itself."""
from __future__ import annotations

import numpy as np
import pytest
import supervision as sv  # part of the test extra

from pydarknet import Detections


def test_round_trip_keeps_every_field(detector, sample_image):
    dets = detector.detect(sample_image("dog.jpg"))
    assert len(dets) >= 3
    converted = dets.to_supervision()
    assert isinstance(converted, sv.Detections)
    np.testing.assert_array_equal(converted.xyxy, dets.xyxy)
    np.testing.assert_array_equal(converted.confidence, dets.confidence)
    np.testing.assert_array_equal(converted.class_id, dets.class_id)
    assert list(converted.data["class_name"]) == list(dets.class_name)
    back = Detections.from_supervision(converted, class_names=detector.class_names)
    assert back == dets and back.class_names == dets.class_names and back.image_size == dets.image_size


def test_supervision_tools_work_on_converted_detections(detector, sample_image):
    import cv2

    image = cv2.imread(str(sample_image("person.jpg")))
    converted = detector.detect(image).to_supervision()
    annotated = sv.BoxAnnotator().annotate(image.copy(), converted)
    assert annotated.shape == image.shape and not np.array_equal(annotated, image)
    people = converted[converted.data["class_name"] == "person"]
    assert len(people) == 1


def test_from_supervision_sorts_takes_names_from_data_and_refuses_guesses():
    foreign = sv.Detections(xyxy=np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float32),
                            confidence=np.array([0.3, 0.9], np.float32), class_id=np.array([2, 0]),
                            data={"class_name": np.array(["logo_b", "logo_a"])})
    dets = Detections.from_supervision(foreign)
    assert dets.confidence.tolist() == pytest.approx([0.9, 0.3])
    assert list(dets.class_name) == ["logo_a", "logo_b"] and dets.class_names == ("logo_a", "1", "logo_b")
    with pytest.raises(ValueError, match="confidence or class_id"):
        Detections.from_supervision(sv.Detections(xyxy=np.array([[0, 0, 1, 1]], np.float32)))
    clash = sv.Detections(xyxy=np.zeros((2, 4), np.float32), confidence=np.ones(2, np.float32),
                          class_id=np.array([1, 1]), data={"class_name": np.array(["a", "b"])})
    with pytest.raises(ValueError, match="two names"):
        Detections.from_supervision(clash)
