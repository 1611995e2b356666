"""Logos in the Wild: per-keyword folders with VOC XML and urls.txt, as in the spec (section 2 and 9.2)."""
from __future__ import annotations

import unicodedata
import warnings

import pytest
from fixtures_datasets import voc_xml, write_jpeg, write_text

from pydarknet.datasets import DatasetWarning, normalize_brand, read_litw, write_darknet_dataset
from pydarknet.datasets.litw import read_urls_file
from pydarknet.errors import DatasetError

KOELN_NFD = unicodedata.normalize("NFD", "1.FC Köln")


@pytest.fixture
def litw(tmp_path):
    data = tmp_path / "LogosInTheWild-v2" / "data"
    # 0samples ships images, no urls.txt
    write_jpeg(data / "0samples" / "img000001.jpg", 320, 240, seed=1)
    write_text(data / "0samples" / "img000001.xml",
               voc_xml([("Adidas-Schriftzug", (1, 20, 110, 220))], size=(320, 240), folder="0samples",
                       filename="img000001.jpg"))
    # abus: urls.txt with CRLF, an XML without <size>, a difficult object, a box past the image border
    (data / "abus").mkdir(parents=True)
    (data / "abus" / "urls.txt").write_bytes(b"000000\thttp://example.com/a.jpg\r\n000001\thttp://example.com/b.jpg\n")
    write_jpeg(data / "abus" / "img000000.jpg", 200, 100, seed=2)
    write_text(data / "abus" / "img000000.xml",
               voc_xml([("abus", (11, 21, 60, 70)), ("coke", (5, 5, 15, 15)), ("abus", (150, 50, 260, 140))],
                       difficult=[0, 1, 0]))
    write_text(data / "abus" / "img000001.xml", voc_xml([("abus", (1, 1, 10, 10))]))  # image never downloaded
    # "red bull": a folder with a space, a Latin-1 byte in a URL, the same id as in abus
    (data / "red bull").mkdir()
    (data / "red bull" / "urls.txt").write_bytes(b"000000\thttp://example.com/caf\xe9.jpg\n")
    write_jpeg(data / "red bull" / "img000000.jpg", 100, 100, seed=3)
    write_text(data / "red bull" / "img000000.xml",
               voc_xml([("starbucks-symbol+teilsichtbar", (1, 1, 50, 50)), ("gucci logo", (2, 2, 20, 20)),
                        ("kellogg`s-k", (3, 3, 30, 30)), (KOELN_NFD, (4, 4, 40, 40)), ("1.FC Köln", (5, 5, 45, 45)),
                        ("copy of amcrest-logo", (6, 6, 60, 60)), ("Coca-Cola", (7, 7, 70, 70)),
                        ("coke", (8, 8, 80, 80))], size=(100, 100)))
    # H&M
    write_jpeg(data / "H&M" / "img000000.jpg", 64, 64, seed=4)
    write_text(data / "H&M" / "img000000.xml", voc_xml([("H&amp;M", (1, 1, 64, 64))], size=(64, 64)))
    return data


def read_all(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = {s.key: s for s in read_litw(root, **kwargs)}
    return samples, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


@pytest.mark.parametrize("raw, expected", [
    ("Adidas-Schriftzug", "adidas-text"),
    ("adidas-schrift", "adidas-text"),
    ("gucci logo", "gucci-symbol"),
    ("hungry jacks logo", "hungryjacks-symbol"),
    ("starbucks-symbol+teilsichtbar", "starbucks-symbol"),
    ("heineken-partial", "heineken"),
    ("kellogg`s-k", "kelloggs-k"),
    ("1.FC Köln", "1fcköln"),
    (KOELN_NFD, "1fcköln"),
    ("red bull", "redbull"),
    ("copy of amcrest-logo", None),
    ("   ", None),
    ("coca-cola1", "coca-cola1"),  # enumerated variants stay distinct; alias them explicitly
])
def test_normalize_brand(raw, expected):
    assert normalize_brand(raw) == expected


def test_merge_variants():
    assert normalize_brand("Adidas-Schriftzug", merge_variants=True) == "adidas"
    assert normalize_brand("adidas-symbol", merge_variants=True) == "adidas"


def test_reads_annotations_with_images(litw):
    samples, messages = read_all(litw)
    assert sorted(samples) == ["0samples/img000001", "H&M/img000000", "abus/img000000", "red bull/img000000"]
    assert len(messages) == 1 and "1 Logos in the Wild annotations have no image" in messages[0]
    first = samples["0samples/img000001"]
    assert first.labels == ["adidas-text"]
    assert first.boxes.tolist() == [[0, 19, 110, 220]]  # VOC 1-based inclusive -> continuous xyxy
    abus = samples["abus/img000000"]
    assert (abus.width, abus.height) == (200, 100)  # no <size>: taken from the image
    assert abus.labels == ["abus", "abus"]  # the difficult 'coke' is left out
    assert abus.boxes.tolist()[1] == [149, 49, 260, 140]  # kept as annotated; the writer clips
    red = samples["red bull/img000000"]
    assert red.labels == ["starbucks-symbol", "gucci-symbol", "kelloggs-k", "1fcköln", "1fcköln", "coca-cola",
                          "coke"]
    assert samples["H&M/img000000"].labels == ["h&m"]


def test_include_difficult(litw):
    samples, _ = read_all(litw, include_difficult=True)
    assert samples["abus/img000000"].labels == ["abus", "coke", "abus"]


def test_alias_map_merges_brands(litw):
    samples, _ = read_all(litw, aliases={"Coca-Cola": "cocacola", "coke": "cocacola"})
    assert samples["red bull/img000000"].labels[-2:] == ["cocacola", "cocacola"]


def test_repeated_ids_become_distinct_dataset_images(litw, tmp_path):
    samples, _ = read_all(litw)
    ds = write_darknet_dataset(samples.values(), tmp_path / "ds", split=(1, 0), progress=False)
    names = sorted(p.name for p in (tmp_path / "ds" / "images").glob("*.jpg"))
    assert names == ["litw_0samples_img000001.jpg", "litw_H_M_img000000.jpg", "litw_abus_img000000.jpg",
                     "litw_red_bull_img000000.jpg"]
    assert ds.stats.boxes_clipped == 1


def test_missing_images_can_be_an_error(litw):
    with pytest.raises(FileNotFoundError, match="img000001"):
        list(read_litw(litw, skip_missing_images=False))


def test_malformed_xml_names_the_file(litw):
    write_text(litw / "abus" / "img000000.xml", "<annotation><object><name>abus</name>")
    with pytest.raises(DatasetError, match=r"abus/img000000.xml.*malformed XML"):
        list(read_litw(litw))
    samples, messages = read_all(litw, skip_bad=True)
    assert "abus/img000000" not in samples and any("malformed XML" in m for m in messages)


def test_bndbox_without_names_is_read_positionally(litw):
    write_text(litw / "abus" / "img000000.xml",
               "<annotation><object><name>abus</name><bndbox><a>11</a><b>21</b><c>60</c><d>70</d></bndbox>"
               "</object></annotation>")
    samples, _ = read_all(litw)
    assert samples["abus/img000000"].boxes.tolist() == [[10, 20, 60, 70]]


def test_object_without_bndbox(litw):
    write_text(litw / "abus" / "img000000.xml", "<annotation><object><name>abus</name></object></annotation>")
    with pytest.raises(DatasetError, match=r"object 1 \('abus'\) has no <bndbox>"):
        list(read_litw(litw))


def test_root_may_be_the_parent_of_data(litw):
    samples, _ = read_all(litw.parent)
    assert len(samples) == 4


def test_urls_file_is_decoded_leniently(litw):
    entries = read_urls_file(litw / "abus" / "urls.txt")
    assert [(e.folder, e.image_id, e.url) for e in entries] == [
        ("abus", "000000", "http://example.com/a.jpg"), ("abus", "000001", "http://example.com/b.jpg")]
    (entry,) = read_urls_file(litw / "red bull" / "urls.txt")
    assert entry.url == "http://example.com/caf%E9.jpg" and entry.folder == "red bull"


def test_malformed_urls_line(litw):
    (litw / "abus" / "urls.txt").write_bytes(b"000000\thttp://example.com/a.jpg\njunk\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_urls_file(litw / "abus" / "urls.txt")


def test_scaled_rehosted_image_gets_scaled_boxes(litw):
    # the annotation was made on a 320x240 image, the server now returns it at 160x120
    write_jpeg(litw / "0samples" / "img000001.jpg", 160, 120, seed=1)
    samples, messages = read_all(litw)
    assert samples["0samples/img000001"].boxes.tolist() == [[0, 9.5, 55, 110]]
    assert any("boxes scaled" in m for m in messages)


def test_image_of_another_shape_is_rejected(litw):
    write_jpeg(litw / "0samples" / "img000001.jpg", 100, 300, seed=1)
    with pytest.raises(DatasetError, match="do not belong to this image"):
        list(read_litw(litw))
