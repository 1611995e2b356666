"""pydarknet.cfg against darknet's own parser rules (parser.c:read_cfg, option_list.c) and its own cfg files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet import resources
from pydarknet.cfg import (
    TEMPLATES,
    Cfg,
    anchor_pairs,
    find_cfg_problems,
    make_cfg,
    read_cfg,
    template_path,
    validate_cfg,
)
from pydarknet.errors import ConfigError

DARKNET_CFG = Path(__file__).resolve().parents[1] / "darknet" / "cfg"
needs_darknet = pytest.mark.skipif(not DARKNET_CFG.is_dir(), reason="darknet submodule not checked out")


# --- an independent port of darknet's reader, line for line from the C source -----------------------------

def darknet_read_cfg(text: str):
    """parser.c:read_cfg + utils.c:strip + option_list.c:read_option, transcribed."""
    sections = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):        # fgetl: one fgets line at a time
        s = re.sub(r"[ \t\r\n]", "", line)                      # strip(): every space/tab/CR/LF
        if not s or s[0] in "#;":
            continue
        if s[0] == "[":
            sections.append((s, []))
            continue
        i = s.find("=")
        if i == -1:
            sections[-1][1].append((s, None))                 # i == len: inserted with a NULL value
        elif i == len(s) - 1:
            continue                                            # "could parse" error, line dropped
        else:
            sections[-1][1].append((s[:i], s[i + 1:]))
    return sections


def option_find(options, key):
    for k, v in options:                                        # the first match wins
        if k == key:
            return v
    return None


def darknet_cfg_files():
    return sorted(DARKNET_CFG.glob("*.cfg")) if DARKNET_CFG.is_dir() else []


# --- reading: byte-for-byte and darknet's view --------------------------------------------------------------

@needs_darknet
@pytest.mark.parametrize("path", darknet_cfg_files(), ids=lambda p: p.name)
def test_every_darknet_cfg_round_trips_and_reads_like_darknet(path):
    data = path.read_bytes()
    cfg = read_cfg(path)
    assert cfg.to_bytes() == data
    reference = darknet_read_cfg(data.decode("latin-1"))
    assert [s.header for s in cfg.sections] == [h for h, _ in reference]
    for section, (_, options) in zip(cfg.sections, reference):
        for key, _ in options:
            assert section.get(key) == option_find(options, key)


KEYS = ["batch", "filters", "mask", "anchors", "classes", "num", "activation"]
line_text = st.one_of(
    st.sampled_from(["[net]", " [yolo] ", "[convolutional]", "[conv]", "[yolo]#x", "[route]"]),
    st.builds(lambda k, sp1, sp2, v: f"{k}{sp1}={sp2}{v}", st.sampled_from(KEYS + ["batch normalize"]),
              st.sampled_from(["", " ", "\t", "  "]), st.sampled_from(["", " ", "\t"]),
              st.sampled_from(["1", "255 #comment", "10,14,  23,27", "leaky", "a=b", ".5", "3,4,5"])),
    st.sampled_from(["", "   ", "# comment", ";comment", "  #indented", "key=", "novalue", "=5", "\t"]),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(line_text, min_size=1, max_size=25), endings=st.lists(st.sampled_from(["\n", "\r\n"]),
       min_size=25, max_size=25), final_newline=st.booleans(), weird=st.binary(max_size=3))
def test_random_files_round_trip_and_agree_with_darknet(lines, endings, final_newline, weird):
    text = "[net]\n" + "".join(line + end for line, end in zip(lines, endings))
    text += "# " + weird.decode("latin-1")  # bytes that are not UTF-8 must survive too
    if final_newline:
        text += "\n"
    data = text.encode("latin-1")
    cfg = Cfg.parse(data.decode("utf-8", "surrogateescape"))
    assert cfg.to_bytes() == data
    reference = darknet_read_cfg(text)
    assert [s.header for s in cfg.sections] == [h for h, _ in reference]
    for section, (_, options) in zip(cfg.sections, reference):
        for key in KEYS + ["batchnormalize", "novalue", ""]:
            assert section.get(key) == option_find(options, key)


def test_darknet_quirks_by_hand():
    cfg = Cfg.parse(
        "# top\n[net]\nbatch normalize = 1\nfilters=255 # note\nfilters=18\nkey=\nnovalue\nnovalue=3\n"
        "[conv]\nsize = 3\n[network]\n[yolo]#x\n")
    net = cfg.sections[0]
    assert net.get("batchnormalize") == "1"           # whitespace inside the key is removed too
    assert net.get("filters") == "255#note"            # inline comments are part of the value
    assert net.get_int("filters") == 255               # ... which atoi still reads
    assert net.get("key") is None and "key" not in net  # "key=" is dropped
    assert net.get("novalue", "default") == "default"  # a bare key shadows the later novalue=3
    assert [s.kind for s in cfg.sections] == ["net", "convolutional", "net", "[yolo]#x"]
    assert len(cfg.find("[convolutional]")) == 1 and len(cfg.find("conv")) == 1
    assert not cfg.sections[3].is_known


def test_typed_getters():
    s = Cfg.parse("[yolo]\nanchors = 10,14,  23,27 # comment, 99\nmask=3,4,5\nx=1,,2\nn=abc\nf=1e-3\n"
                  "t=1,\n").sections[0]
    assert s.get_list("anchors") == [10.0, 14.0, 23.0, 27.0]  # darknet stops at '#'
    assert s.get_list("mask", int) == [3, 4, 5]
    assert s.get_float("f") == pytest.approx(0.001)
    assert s.get_int("missing", 7) == 7
    for key in ("x", "t"):  # darknet would read the empty item as 0
        with pytest.raises(ConfigError, match="empty item"):
            s.get_list(key)
    with pytest.raises(ConfigError, match="not an integer"):
        s.get_int("n")


# --- editing ------------------------------------------------------------------------------------------------

def test_set_keeps_everything_else_byte_for_byte():
    text = "[net]\r\n# lr\r\nlearning_rate = 0.001\r\nbatch=1\r\n\r\n# next\r\n[yolo]\r\nclasses=80"
    cfg = Cfg.parse(text)
    cfg.net.set("learning_rate", 0.0025).set("batch", 64).set("burn_in", 100)
    cfg.sections[1].set("classes", 2).set("num", 6)
    assert str(cfg) == ("[net]\r\n# lr\r\nlearning_rate = 0.0025\r\nbatch=64\r\nburn_in=100\r\n\r\n# next\r\n"
                        "[yolo]\r\nclasses=2\r\nnum=6\r\n")


def test_set_changes_the_first_of_duplicate_keys_and_remove_drops_all():
    cfg = Cfg.parse("[net]\nbatch=1\nbatch=2\nbatch=\n")
    cfg.net.set("batch", 8)
    assert str(cfg) == "[net]\nbatch=8\nbatch=2\nbatch=\n" and cfg.net.get_int("batch") == 8
    assert cfg.net.remove("batch") and str(cfg) == "[net]\n"
    assert not cfg.net.remove("batch")


def test_set_refuses_values_darknet_cannot_read():
    section = Cfg.parse("[net]\n").net
    with pytest.raises(ValueError):
        section.set("batch", "1\n2")
    with pytest.raises(ValueError):
        section.set("bad key", 1)
    assert section.set("steps", [80, 90]).set("flip", False).get("steps") == "80,90"
    assert section.get("flip") == "0"


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    cfg = Cfg.parse("[net]\nbatch=1\n")
    target = tmp_path / "sub" / "a.cfg"
    cfg.save(target)
    assert target.read_text() == "[net]\nbatch=1\n" and cfg.path == str(target)
    cfg.net.set("batch", 2)
    cfg.save()
    assert target.read_text() == "[net]\nbatch=2\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.cfg"]
    with pytest.raises(ConfigError):
        Cfg.parse("[net]\n").save()


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found") as e:
        read_cfg(tmp_path / "missing.cfg")
    assert e.value.path == str(tmp_path / "missing.cfg")


# --- make_cfg -----------------------------------------------------------------------------------------------

def _mask_sizes(path):
    """Masks per [yolo] layer read straight from the template text, without pydarknet.cfg."""
    sizes, in_yolo, num = [], False, None
    for raw in Path(path).read_text().splitlines():
        line = re.sub(r"\s", "", raw)
        if line.startswith("["):
            in_yolo = line == "[yolo]"
            if in_yolo:
                sizes.append(None)
        elif in_yolo and line.startswith("mask="):
            sizes[-1] = len(line[5:].split(","))
        elif in_yolo and line.startswith("num="):
            num = int(line[4:])
    return [s if s is not None else num for s in sizes]


@needs_darknet
@pytest.mark.parametrize("template", TEMPLATES)
def test_make_cfg_from_each_template(template, tmp_path):
    out = tmp_path / f"{template}-logos.cfg"
    cfg = make_cfg(template, classes=3, size=(320, 256), batch=32, subdivisions=4, out=out)
    assert read_cfg(out).to_bytes() == cfg.to_bytes()
    net = cfg.net
    assert (net.get_int("width"), net.get_int("height")) == (320, 256)
    assert (net.get_int("batch"), net.get_int("subdivisions")) == (32, 4)
    assert net.get_int("max_batches") == 6000              # max(2000*3, 0, 6000)
    assert net.get_list("steps", int) == [4800, 5400]      # 80% and 90%
    heads = cfg.heads()
    assert len(heads) == len(_mask_sizes(template_path(template)))
    for head, masks in zip(heads, _mask_sizes(template_path(template))):
        assert head.section.get_int("classes") == 3
        assert head.previous.kind == "convolutional"
        assert head.previous.get_int("filters") == (3 + 5) * masks
    # only the keys make_cfg sets differ from the template; every other line, comment and blank is kept
    before = template_path(template).read_text().splitlines()
    after = out.read_text().splitlines()
    changed = {"batch", "subdivisions", "width", "height", "max_batches", "steps", "policy", "classes", "filters"}
    assert len(before) == len(after)
    for old, new in zip(before, after):
        if old != new:
            assert re.sub(r"\s", "", new).split("=")[0] in changed, (old, new)


@needs_darknet
@pytest.mark.parametrize("classes, images, expected", [(1, None, 6000), (4, None, 8000), (2, 12345, 12345)])
def test_make_cfg_default_max_batches(classes, images, expected):
    net = make_cfg("yolov4-tiny", classes=classes, images=images).net
    assert net.get_int("max_batches") == expected
    assert net.get_list("steps", int) == [int(expected * 0.8), int(expected * 0.9)]


@needs_darknet
@pytest.mark.parametrize("max_batches, steps", [(1, [1]), (5, [4]), (10, [8, 9])])
def test_make_cfg_default_steps_for_a_tiny_max_batches(max_batches, steps):
    """A smoke-test run of a few iterations: 80%/90% round together (or to 0); the steps stay valid."""
    net = make_cfg("yolov4-tiny", classes=1, max_batches=max_batches).net
    assert net.get_list("steps", int) == steps and len(net.get_list("scales")) == len(steps)


@needs_darknet
def test_make_cfg_options_and_anchors():
    anchors = [(5, 6), (10, 12), (20, 24), (40, 48), (80, 96), (160, 190)]
    cfg = make_cfg("yolov4-tiny", classes=1, size=224, batch=16, max_batches=300, steps=[100, 200, 250],
                   learning_rate=0.002, burn_in=20, anchors=anchors, net_options={"mosaic": 0})
    net = cfg.net
    assert net.get_list("steps", int) == [100, 200, 250]
    assert net.get_list("scales") == [0.1, 0.1, 0.1]      # one scale per step, or darknet crashes
    assert net.get_float("learning_rate") == 0.002 and net.get_int("burn_in") == 20
    assert net.get_int("mosaic") == 0 and net.get_int("subdivisions") == 1
    for head in cfg.heads():
        assert head.section.get_list("anchors") == [v for wh in anchors for v in wh]
        assert head.section.get("mask") in ("3,4,5", "1,2,3")  # masks untouched when the count matches
    assert cfg.path is None  # not written, and saving cannot overwrite the template by accident


@needs_darknet
@pytest.mark.parametrize("kwargs, message", [
    ({"classes": 0}, "classes must be at least 1"),
    ({"classes": True}, "classes must be an integer"),
    ({"classes": 2, "size": 100}, "multiple of 32"),
    ({"classes": 2, "size": 16}, "at least 32"),
    ({"classes": 2, "size": (416, 300)}, "height must be a multiple of 32"),
    ({"classes": 2, "subdivisions": 3}, "must divide batch"),
    ({"classes": 2, "anchors": [1, 2, 3]}, "even"),
    ({"classes": 2, "anchors": [(1, 2)] * 9}, "9 anchors given but the \\[yolo\\] layers have num=6"),
    ({"classes": 2, "anchors": [(1, -2)] * 6}, "positive"),
    ({"classes": 2, "steps": [500, 400]}, "increasing"),
    ({"classes": 2, "max_batches": 0}, "max_batches must be at least 1"),
    ({"classes": 2, "learning_rate": 0}, "learning_rate must be positive"),
])
def test_make_cfg_refuses_impossible_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_cfg("yolov4-tiny", **kwargs)


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(ConfigError) as e:
        make_cfg("yolov9-huge", classes=1)
    for name in TEMPLATES:
        assert name in str(e.value)
    with pytest.raises(ConfigError, match="not found"):
        make_cfg("no/such/file.cfg", classes=1)


def test_installed_templates_come_before_the_source_checkout(tmp_path, monkeypatch):
    package, checkout = tmp_path / "site" / "pydarknet", tmp_path / "site" / "darknet" / "cfg"
    (package / "templates").mkdir(parents=True)
    checkout.mkdir(parents=True)
    (package / "templates" / "tiny.cfg").write_text("# installed\n[net]\n")
    (checkout / "tiny.cfg").write_text("# checkout\n[net]\n")
    (checkout / "other.cfg").write_text("# checkout only\n[net]\n")
    monkeypatch.setattr(resources, "PACKAGE_DIR", package)
    monkeypatch.setattr(resources, "SOURCE_ROOT", package.parent)
    assert template_path("tiny").read_text().startswith("# installed")
    assert template_path("other").read_text().startswith("# checkout only")
    with pytest.raises(ConfigError, match="unknown cfg template"):
        template_path("yolov4-tiny")


# --- anchors written into cfgs ------------------------------------------------------------------------------

@needs_darknet
def test_set_anchors_redistributes_masks_by_scale():
    cfg = make_cfg("yolov3", classes=2)          # heads' masks: 6,7,8 / 3,4,5 / 0,1,2
    anchors = [(w, w) for w in (60, 10, 50, 20, 40, 30)]
    cfg.set_anchors(anchors, redistribute=True)
    masks = [h.section.get("mask") for h in cfg.heads()]
    assert masks == ["4,5", "2,3", "0,1"]         # the large-anchor head keeps the large anchors
    for head in cfg.heads():
        assert head.section.get_int("num") == 6
        assert head.section.get_list("anchors") == [10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60]
        assert head.previous.get_int("filters") == (2 + 5) * 2
    validate_cfg(cfg, classes=2)


@needs_darknet
def test_set_anchors_uneven_split_gives_the_extra_to_the_larger_scales():
    cfg = make_cfg("yolov4-tiny", classes=1)      # masks 3,4,5 (large) and 1,2,3 (small)
    cfg.set_anchors([(i, i) for i in range(1, 10)], redistribute=True)
    assert [h.section.get("mask") for h in cfg.heads()] == ["4,5,6,7,8", "0,1,2,3"]
    assert [h.previous.get_int("filters") for h in cfg.heads()] == [30, 24]
    with pytest.raises(ConfigError, match="cannot be shared"):
        make_cfg("yolov3", classes=1).set_anchors([(1, 1), (2, 2)], redistribute=True)


def test_anchor_pairs_accepts_pairs_and_flat_lists():
    assert anchor_pairs([1, 2, 3, 4]) == anchor_pairs([(1, 2), (3, 4)]) == [(1.0, 2.0), (3.0, 4.0)]
    with pytest.raises(ConfigError):
        anchor_pairs([(1, 2, 3)])


# --- validation ---------------------------------------------------------------------------------------------

@needs_darknet
@pytest.mark.parametrize("path", [p for p in darknet_cfg_files() if re.search(r"\[(yolo|Gaussian_yolo|region)\]",
                                                                            p.read_text())], ids=lambda p: p.name)
def test_darknet_detector_cfgs_validate(path):
    """darknet's own detector cfgs run, so each head's filters formula must agree with them. Two ship with real
    mistakes: anchors glued together ('61,45    61,45' reads as 61,4561,45) and masks past num."""
    broken = {"cspx-p7-mish_hp.cfg": "num=16 needs 32 anchor numbers, found 31",
              "cspx-p7-mish.cfg": "layer 374 \\[yolo\\]: mask 16,17,18,19: anchor indexes must be below num=16",
              # darknet opens its class tree relative to the working folder, and crashes without it
              "yolo9000.cfg": "layer 24 \\[region\\]: tree=data/9k.tree: no such file"}
    if path.name in broken:
        with pytest.raises(ConfigError, match=broken[path.name]):
            validate_cfg(path)
    else:
        validate_cfg(path)


@needs_darknet
def test_region_tree_is_read_from_the_working_folder(monkeypatch):
    monkeypatch.chdir(DARKNET_CFG.parent)
    validate_cfg(DARKNET_CFG / "yolo9000.cfg")


@needs_darknet
def test_filters_formula_of_each_head_kind_matches_darknets_files():
    # hand-checked: Gaussian (10 classes + 9) * 3 masks, region (20 + 4 coords + 1) * 5, yolo (80 + 5) * 3
    for name, expected in [("Gaussian_yolov3_BDD", 57), ("yolov2-voc", 125), ("yolov3", 255)]:
        cfg = read_cfg(template_path(name))
        assert {h.expected_filters() for h in cfg.heads()} == {expected}


@needs_darknet
def test_validate_names_the_file_and_the_layer(tmp_path):
    cfg = make_cfg("yolov4-tiny", classes=2, out=tmp_path / "a.cfg")
    cfg.layers[29].set("filters", 255)
    with pytest.raises(ConfigError) as e:
        validate_cfg(cfg, classes=2)
    text = str(e.value)
    assert str(tmp_path / "a.cfg") in text and "layer 30 [yolo]" in text
    assert "filters=255" in text and "filters=21" in text
    with pytest.raises(ConfigError, match="classes=2 but the dataset has 3 classes"):
        validate_cfg(make_cfg("yolov4-tiny", classes=2), classes=3)


@pytest.mark.parametrize("text, message", [
    ("", "no sections"),
    ("batch=1\n[net]\n", "options before the first"),
    ("[convolutional]\nfilters=1\n", "first section must be \\[net\\]"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n", "no layers"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[yolo]#x\n", "unknown section type"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\nbatch=64\nsubdivisions=3\n[conv]\n", "does not divide"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\npolicy=steps\nsteps=1,2\nscales=.1\n[conv]\n", "2 steps"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\npolicy=steps\n[conv]\n", "needs both steps"),
    ("[net]\nchannels=3\n[conv]\n", "No input parameters"),
    ("[net]\nwidth=400\nheight=416\nchannels=3\n[conv]\nfilters=18\n[yolo]\nclasses=1\nnum=3\n",
     "multiples of 32"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\n[route]\nlayers=-1,5\n", "layers=5 points to layer 5"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\n[shortcut]\nfrom=-3\n", "from=-3 points to layer -2"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\nfilters=x\n", "not an integer"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\nfilters=18\n[yolo]\nclasses=1\nnum=3\nmask=1,3\n",
     "mask 3: anchor indexes must be below num=3"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\nfilters=30\n[yolo]\nclasses=1\nnum=5\n"
     "counters_per_class=4,5\n", "counters_per_class has 2 values"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[conv]\nfilters=18\n[yolo]\nclasses=1\nnum=3\n"
     "[conv]\nfilters=21\n[yolo]\nclasses=2\nnum=3\n", "disagree on classes"),
    ("[net]\nwidth=416\nheight=416\nchannels=3\n[yolo]\nclasses=1\n", "cannot be the first layer"),
])
def test_validate_finds_what_darknet_dies_on(text, message):
    with pytest.raises(ConfigError, match=message):
        validate_cfg(Cfg.parse(text))


def test_validate_training_only_checks_and_warnings():
    text = "[net]\nbatch=1\nwidth=32\nheight=32\nchannels=3\nlr=\n[conv]\nfilters=18\n[maxpool]\n[yolo]\nnum=3\n" \
           "classes=1\n"
    cfg = Cfg.parse(text)
    warnings = validate_cfg(cfg)                 # fine for inference, with warnings
    assert {w.severity for w in warnings} == {"warning"}
    assert any("'lr=' has no value" in str(w) for w in warnings)
    assert any("not [convolutional]" in str(w) and w.layer == 2 for w in warnings)
    messages = [str(p) for p in find_cfg_problems(cfg, training=True) if p.severity == "error"]
    assert any("batch=1 cannot train" in m for m in messages)
    assert any("max_batches" in m for m in messages)


# --- the full checker against darknet's own parser ---------------------------------------------------------------

LOAD_CHILD = r"""
import json, os, sys
from pydarknet import Detector, _native
cfg, weights = sys.argv[1], sys.argv[2]
ffi, lib = _native.load()
if lib.pdn_write_initial_weights(cfg.encode(), weights.encode(), 1, 1) != 0:
    sys.exit("cannot write weights: " + ffi.string(lib.pdn_last_error()).decode())
size = os.path.getsize(weights)
with Detector(cfg, weights, device="cpu", backend="darknet", verbose=True) as det:
    print("\nRESULT " + json.dumps({"size": size, "input": det.input_size}), flush=True)
"""
# darknet's layer table: "  12 conv ... ->  26 x  26 x 256 ..." (index, then the output after the arrow)
TABLE_ROW = re.compile(r"^\s*(\d+) (?:conv|max|route|upsample|avg|reorg|local_avg|sam|scale).*->\s*(\d+) x\s*(\d+) x"
                       r"\s*(\d+)", re.M)
SMALL_STOCK = ("yolov3-tiny.cfg", "yolov4-tiny.cfg", "yolov4-tiny-3l.cfg", "yolov7-tiny.cfg", "yolov3-tiny-prn.cfg",
               "yolov4-tiny_contrastive.cfg", "yolov3-tiny_occlusion_track.cfg", "yolov2-tiny.cfg", "t1.test.cfg",
               "enet-coco.cfg", "yolov3-tiny_xnor.cfg", "yolov4-csp-s-mish.cfg")


def stock_detectors():
    broken = {"cspx-p7-mish_hp.cfg", "cspx-p7-mish.cfg", "yolo9000.cfg"}   # see test_darknet_detector_cfgs_validate
    for path in darknet_cfg_files():
        if re.search(r"^\s*\[(yolo|Gaussian_yolo|region|detection)\]", path.read_text(), re.M) and \
                path.name not in broken:
            yield pytest.param(path, id=path.name,
                               marks=() if path.name in SMALL_STOCK else pytest.mark.slow)


@needs_darknet
@pytest.mark.parametrize("path", list(stock_detectors()))
def test_checker_agrees_with_darknets_parser_on_stock_cfgs(path, tmp_path):
    """Every detector cfg darknet ships and loads passes the checker, and the checker's shapes and weights layout
    are darknet's: the output of each layer darknet prints, and the size of the weights file it writes."""
    import json
    import subprocess
    import sys

    from pydarknet.cfg import check_network

    layout = check_network(path)
    weights = tmp_path / "w.weights"
    run = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(path), str(weights)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert result["size"] == 20 + 4 * layout.weight_floats()
    assert tuple(result["input"]) == (layout.width, layout.height)
    rows = TABLE_ROW.findall(run.stdout + run.stderr)
    assert len(rows) > len(layout.layers) // 3
    for index, w, h, c in rows:
        shape = layout.layers[int(index)]
        assert (shape.out_w, shape.out_h, shape.out_c) == (int(w), int(h), int(c)), shape


# --- what darknet's parser dies on: each is refused naming the layer, and Detector never reaches darknet ----------

def _models_cfg(name: str) -> str:
    from conftest import find_test_models  # the folder the models_dir fixture uses (downloaded once if need be)

    path = find_test_models() / f"{name}.cfg"
    return (path if path.is_file() else DARKNET_CFG / f"{name}.cfg").read_text()


def _edit(name: str, old: str, new: str, count: int = 1) -> str:
    text = _models_cfg(name)
    assert old in text
    return text.replace(old, new, count)


# (seed cfg, text to replace, its replacement, what the refusal names) - the first ones killed the interpreter
# (SIGFPE, SIGSEGV, double free, invalid free) before the checker knew layer shapes
DEADLY = [
    ("yolov3-tiny", "[maxpool]\nsize=2\nstride=2", "[maxpool]\nsize=2\nstride=0",
     "layer 1 [maxpool]: stride=0 must be at least 1"),
    ("yolov3-tiny", "size=3\nstride=1", "size=3\nstride=0", "layer 0 [convolutional]: stride=0 must be at least 1"),
    ("yolov4-tiny", "groups=2", "groups=0", "layer 3 [route]: groups=0 must be at least 1"),
    ("yolov3-tiny", "layers = -4", "layers = 1000", "layer 17 [route]: layers=1000 points to layer 1000, which is not"),
    ("yolov3-tiny", "layers = -4", "layers = -1,1000", "layer 17 [route]: layers=1000 points to layer 1000"),
    ("yolov3-tiny", "layers = -4", "layers=5000", "layer 17 [route]: layers=5000 points to layer 5000"),
    ("yolov3-tiny", "[upsample]", "[shortcut]\nfrom=-50\n\n[upsample]",
     "layer 19 [shortcut]: from=-50 points to layer -31"),
    ("yolov3-tiny", "[route]", "[empty]", "layer 17 [empty]: [empty] layers are not supported"),
    ("yolov3-tiny", "[convolutional]\nbatch_normalize=1\nfilters=32", "[local]\nbatch_normalize=1\nfilters=32",
     "layer 2 [local]: [local] layers are not supported"),
    # and more of what darknet reads without a check
    ("yolov3-tiny", "[upsample]", "[shortcut]\nactivation=linear\n\n[upsample]",
     "layer 19 [shortcut]: from= is missing"),
    ("yolov3-tiny", "[upsample]", "[convolutional]\nfilters=64\nsize=1\n\n[convolutional]\nfilters=128\nsize=1\n\n"
     "[shortcut]\nfrom=-2\n\n[upsample]", "layer 21 [shortcut]: adds layer 19 [convolutional] of 13 x 13 x 64 to an "
     "input of 13 x 13 x 128: darknet would read past its output"),
    ("yolov3-tiny", "layers = -1, 8", "layers = -1, 6",
     "layers it joins differ in size: layer 19 is 26 x 26, layer 6 is 52 x 52"),
    ("yolov3-tiny", "[upsample]\nstride=2", "[upsample]\nstride=0", "layer 19 [upsample]: stride=0"),
    ("yolov3-tiny", "[upsample]", "[reorg3d]\nstride=3\n\n[upsample]",
     "layer 19 [reorg3d]: stride=3 must divide the 13 x 13 input"),
    ("yolov3-tiny", "[upsample]", "[sam]\nfrom=-3\n\n[upsample]", "layer 19 [sam]: multiplies by layer 16"),
    ("yolov3-tiny", "[convolutional]", "[dropout]\n\n[convolutional]",
     "layer 0 [dropout]: a [dropout] layer cannot be the first"),
    ("yolov3-tiny", "filters=1024", "filters=2147483647",
     "layer 12 [convolutional]: its output (13 x 13 x 2147483647) is 362924736343 values: too large"),
    ("yolov3-tiny", "filters=1024", "filters=99999999999", "filters=99999999999 does not fit darknet's 32-bit int"),
    ("yolov3-tiny", "[maxpool]\nsize=2\nstride=1", "[maxpool]\nsize=4096\nstride=1",
     "layer 11 [maxpool]: size=4096 is more than twice"),
    ("yolov3-tiny", "size=3\nstride=1", "size=999\nstride=1\npad=0",
     "layer 0 [convolutional]: size=999 is larger than the 416 x 416 input"),
    ("yolov3-tiny", "filters=1024", "filters=1024\ngroups=3",
     "groups=3 must divide both the input channels (512) and filters (1024)"),
    ("yolov4-tiny", "group_id=1", "group_id=2", "layer 3 [route]: group_id=2 must be in 0..1"),
    ("yolov3-tiny", "size=3\nstride=1", "size=3\nstride=1\nantialiasing=1", "antialiasing= is not supported"),
    ("yolov3-tiny", "steps=400000,450000", "steps=400000,450000,500000", "[net]: 3 steps but only 2 scales"),
    ("yolov3-tiny", "[yolo]\nmask = 3,4,5", "[yolo]\nembedding_layer=5\nmask = 3,4,5",
     "embedding_layer=5 must point to a [convolutional]"),
    ("yolov4-tiny_contrastive", "yolo_layer= -2", "yolo_layer=0", "yolo_layer=0 must point to an earlier [yolo] layer"),
    ("yolov3-tiny", "[yolo]\nmask = 3,4,5", "[Gaussian_yolo]\nmask = 3,4,5",
     "classes=80 with 3 anchors per cell needs filters=267"),
]


@needs_darknet
@pytest.mark.parametrize("seed, old, new, message", DEADLY, ids=[f"{d[0]}:{d[2][:24]}" for d in DEADLY])
def test_checker_refuses_what_darknet_dies_on(seed, old, new, message, tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text(_edit(seed, old, new))
    with pytest.raises(ConfigError) as e:
        validate_cfg(path)
    assert message in str(e.value) and str(path) in str(e.value)


@needs_darknet
def test_detector_runs_the_checker_before_darknet(tmp_path, yolo_weights):
    """In this very process: without the checker, darknet's parser would end it with a SIGFPE."""
    from pydarknet import Detector

    path = tmp_path / "zero.cfg"
    path.write_text(_edit("yolov3-tiny", "[maxpool]\nsize=2\nstride=2", "[maxpool]\nsize=2\nstride=0"))
    with pytest.raises(ConfigError, match=r"(?s)zero.cfg: .*layer 1 \[maxpool\]: stride=0 must be at least 1"):
        Detector(path, yolo_weights, device="cpu", backend="darknet")


def test_sizes_past_darknets_ints_are_a_memory_error_too():
    from pydarknet.cfg import NetworkTooLarge

    text = _edit("yolov3-tiny", "width=416\nheight=416", "width=16384\nheight=16384")
    with pytest.raises(NetworkTooLarge, match="layer 0 \\[convolutional\\]: its output .* too large") as e:
        validate_cfg(Cfg.parse(text))
    assert isinstance(e.value, MemoryError) and isinstance(e.value, ConfigError)
    with pytest.raises(ConfigError, match="batch 800 is too large .* layer 0 \\[convolutional\\] holds 2768896 values "
                                          "per image, so batch <= 775"):
        validate_cfg(Cfg.parse(_models_cfg("yolov3-tiny")), batch=800)


def test_the_layout_is_darknets_weights_order():
    from pydarknet.cfg import check_network

    layout = check_network(Cfg.parse(_models_cfg("yolov3-tiny")))
    first, head = layout.layers[0], layout.layers[15]
    assert (first.out_w, first.out_h, first.out_c) == (416, 416, 16)
    assert [name for name, _ in first.weights] == ["biases", "scales", "rolling_mean", "rolling_variance", "weights"]
    assert first.weights[-1] == ("weights", 3 * 16 * 3 * 3)
    assert head.weights == (("biases", 255), ("weights", 512 * 255))   # no batch norm before a head
    assert layout.layers[16].weights == () and layout.layers[17].out_c == 256
