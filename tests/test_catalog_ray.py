"""The catalogue on a real Ray cluster on this machine: a head and a second node (``ray.cluster_utils.Cluster``),
one CPU each, so the two actors run on two nodes.  Same totals as the local pool and a single process; an actor
killed with SIGKILL mid-run has its task retried and nothing counted twice."""
from __future__ import annotations

import os
import signal

import pytest
from fixtures_catalog import make_clips, report_files, small_model

# Ray's processes talk over loopback only (not the machine's network address): read when ray is imported
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from pydarknet.catalog import analyze_catalog  # noqa: E402
from pydarknet.catalog.store import load_records  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def model(models_dir, tmp_path_factory):
    return small_model(models_dir, tmp_path_factory.mktemp("model"))


def run(clips, model, out, **options):
    return analyze_catalog([clips["a"], clips["b"]], model["cfg"], model["weights"], out, names=model["names"],
                           device="cpu", **options)


@pytest.fixture(scope="module")
def reference(clips, model, tmp_path_factory):
    return run(clips, model, tmp_path_factory.mktemp("reference") / "out", workers=0, segment_seconds=None)


def test_two_ray_nodes_give_the_totals_of_the_local_pool_and_of_one_process(cluster, reference, clips, model,
                                                                            tmp_path):
    workers = set()
    on_ray = run(clips, model, tmp_path / "ray", ray=cluster.address, workers=2, segment_seconds=1.0,
                 on_event=lambda e: workers.add(e.worker) if e.kind == "done" else None)
    assert on_ray.pool == "2 Ray actor(s) of 1 CPU each" and not on_ray.failed
    assert len({name.rsplit("@", 1)[1] for name in workers}) == 2   # both nodes worked
    local = run(clips, model, tmp_path / "local", workers=2, segment_seconds=None)
    assert reference.totals and on_ray.totals == reference.totals == local.totals
    assert on_ray.frames == reference.frames == local.frames
    for title in ("a", "b"):
        assert report_files(on_ray.out, title) == report_files(reference.out, title)


def test_a_ray_worker_killed_mid_run_is_retried(cluster, reference, clips, model, tmp_path):
    killed = []

    def kill(event):   # as the second segment of video a goes to an actor: that task is in flight, the run midway
        if event.kind == "started" and event.task.video_id == "a" and event.task.segment.number == 1 and not killed:
            killed.append(event.pid)
            os.kill(event.pid, signal.SIGKILL)

    result = run(clips, model, tmp_path / "out", ray=cluster.address, workers=2, segment_seconds=1.0,
                 on_event=kill)
    assert killed and result.retries >= 1 and not result.failed
    assert result.totals == reference.totals and result.frames == reference.frames
    for title in ("a", "b"):
        assert load_records(result.out, title).records.equals(load_records(reference.out, title).records)
