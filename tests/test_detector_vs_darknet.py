"""The binding detects what darknet's own executable detects.

Each test runs darknet's executable, built from the same submodule by the package build, exactly as a user would:

    darknet detector test coco.data yolov3-tiny.cfg yolov3-tiny.weights IMAGE -dont_show -ext_output -out result.json

and compares its JSON output (6-decimal confidences, relative boxes) with ``Detector.detect`` on the same image.
On the JPEGs the two decode the file with different libraries (darknet: stb_image; pydarknet: OpenCV's libjpeg),
so pixels differ slightly; on a lossless PNG of OpenCV's decoding both see identical pixels: darknet's own forward
pass must then agree to float precision (which shows the preprocessing, decoding and NMS are darknet's), and the
default CPU backend (OpenCV DNN's forward pass, Winograd arithmetic) within 2e-3.
"""
from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest

from pydarknet.metrics import pairwise_iou

IMAGES = ["dog.jpg", "person.jpg", "horses.jpg"]


def run_darknet(exe, cfg, weights, names, image, tmp_path, thresh=0.25):
    data = tmp_path / "coco.data"
    data.write_text(f"classes=80\nnames={names}\n")
    out = tmp_path / "result.json"
    proc = subprocess.run([str(exe), "detector", "test", str(data), str(cfg), str(weights), str(image),
                           "-dont_show", "-ext_output", "-thresh", str(thresh), "-out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frames = json.loads(out.read_text())
    assert len(frames) == 1
    h, w = cv2.imread(str(image)).shape[:2]
    rows = []
    for obj in frames[0]["objects"]:
        rc = obj["relative_coordinates"]
        cx, cy, bw, bh = rc["center_x"] * w, rc["center_y"] * h, rc["width"] * w, rc["height"] * h
        box = np.clip([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 0, [w, h, w, h])
        rows.append((obj["class_id"], obj["confidence"], box))
    return rows


def iou(a, b) -> float:
    return float(pairwise_iou(a, b)[0, 0])


def assert_same_detections(theirs, ours, conf_tol, iou_min):
    assert len(ours) == len(theirs), f"darknet found {len(theirs)} detections, pydarknet {len(ours)}: {ours}"
    unmatched = list(ours)
    for class_id, conf, box in theirs:
        candidates = [d for d in unmatched if d.class_id == class_id and abs(d.confidence - conf) <= conf_tol
                      and iou(d.xyxy, box) >= iou_min]
        assert candidates, f"no match for darknet's class {class_id} {conf:.4f} {box} among {unmatched}"
        best = max(candidates, key=lambda d: iou(d.xyxy, box))
        unmatched.remove(best)


@pytest.mark.parametrize("name", IMAGES)
def test_same_detections_as_darknet_on_its_sample_jpegs(name, detector, darknet_executable, yolo_cfg, yolo_weights,
                                                        coco_names, sample_image, tmp_path):
    image = sample_image(name)
    theirs = run_darknet(darknet_executable, yolo_cfg, yolo_weights, coco_names, image, tmp_path)
    assert theirs, "darknet found nothing: the comparison would be empty"
    ours = detector.detect(image)
    assert_same_detections(theirs, ours, conf_tol=0.01, iou_min=0.98)


@pytest.mark.parametrize("name", IMAGES)
def test_identical_pixels_give_identical_detections(name, detector, darknet_backend_detector, darknet_executable,
                                                    yolo_cfg, yolo_weights, coco_names, sample_image, tmp_path):
    pixels = cv2.imread(str(sample_image(name)))
    png = tmp_path / (name + ".png")
    cv2.imwrite(str(png), pixels)
    theirs = run_darknet(darknet_executable, yolo_cfg, yolo_weights, coco_names, png, tmp_path)
    assert_same_detections(theirs, darknet_backend_detector.detect(pixels), conf_tol=1e-4, iou_min=0.999)
    assert_same_detections(theirs, detector.detect(pixels), conf_tol=2e-3, iou_min=0.995)


def test_letterbox_matches_darknet(darknet_backend_detector, darknet_executable, yolo_cfg, yolo_weights, coco_names,
                                   sample_image, tmp_path):
    """-letter_box in darknet's executable and letterbox=True in detect() resize and map boxes back alike."""
    pixels = cv2.imread(str(sample_image("dog.jpg")))
    png = tmp_path / "dog.png"
    cv2.imwrite(str(png), pixels)
    data = tmp_path / "coco.data"
    data.write_text(f"classes=80\nnames={coco_names}\n")
    out = tmp_path / "lb.json"
    proc = subprocess.run([str(darknet_executable), "detector", "test", str(data), str(yolo_cfg), str(yolo_weights),
                           str(png), "-dont_show", "-letter_box", "-out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    objects = json.loads(out.read_text())[0]["objects"]
    h, w = pixels.shape[:2]
    theirs = []
    for obj in objects:
        rc = obj["relative_coordinates"]
        cx, cy, bw, bh = rc["center_x"] * w, rc["center_y"] * h, rc["width"] * w, rc["height"] * h
        theirs.append((obj["class_id"], obj["confidence"],
                       np.clip([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 0, [w, h, w, h])))
    detector = darknet_backend_detector
    detector.letterbox = True
    try:
        ours = detector.detect(pixels)
    finally:
        detector.letterbox = None
    assert theirs
    assert_same_detections(theirs, ours, conf_tol=1e-4, iou_min=0.999)
