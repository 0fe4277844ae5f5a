"""Watch streams: events for every step, resume from a resourceVersion, bookmarks, 410."""

from __future__ import annotations

import json
import threading

import pytest

from harness.kube import KubeCluster
from harness_selftest.widget_crd import FINALIZER, widget, widget_crd

WIDGETS = "/apis/selftest.example.com/v1/namespaces/{ns}/widgets"


def read_watch(kube: KubeCluster, path: str, **params: str) -> list[dict]:
    """All events of a watch that the server closes after `timeoutSeconds`."""
    params = {"watch": "true", "timeoutSeconds": "1", **params}
    with kube.session.get(kube.url + path, params=params, stream=True, timeout=10) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


@pytest.fixture
def ns(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    return kube_namespace


def test_watch_from_a_list_version_replays_every_step_of_a_finalized_deletion(kube, ns):
    since = kube.call("GET", WIDGETS.format(ns=ns))["metadata"]["resourceVersion"]
    kube.create(widget("w1"), namespace=ns)
    kube.patch("widgets", "w1", {"metadata": {"finalizers": [FINALIZER]}}, ns)
    kube.delete("widgets", "w1", ns)
    kube.patch("widgets", "w1", {"metadata": {"finalizers": []}}, ns)

    events = read_watch(kube, WIDGETS.format(ns=ns), resourceVersion=since)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["metadata"]["finalizers"] == [FINALIZER]
    assert events[2]["object"]["metadata"]["deletionTimestamp"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 4 and versions[0] > int(since)
    assert all(e["object"]["kind"] == "Widget" for e in events)


def test_watch_without_a_version_starts_with_the_current_objects(kube, ns):
    kube.create(widget("a"), namespace=ns)
    kube.patch("widgets", "a", {"spec": {"size": 2}}, ns)
    events = read_watch(kube, WIDGETS.format(ns=ns))
    assert [(e["type"], e["object"]["spec"]["size"]) for e in events] == [("ADDED", 2)]


def test_watch_streams_live_changes(kube, ns):
    since = kube.call("GET", WIDGETS.format(ns=ns))["metadata"]["resourceVersion"]
    received: list[dict] = []
    first_event = threading.Event()

    def consume() -> None:
        params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "5"}
        with kube.session.get(
            kube.url + WIDGETS.format(ns=ns), params=params, stream=True, timeout=10
        ) as rsp:
            for line in rsp.iter_lines():
                if line:
                    received.append(json.loads(line))
                    first_event.set()
                    if len(received) == 2:
                        return

    consumer = threading.Thread(target=consume)
    consumer.start()
    kube.create(widget("live"), namespace=ns)
    assert first_event.wait(10)
    kube.delete("widgets", "live", ns)
    consumer.join(10)
    assert [e["type"] for e in received] == ["ADDED", "DELETED"]


def test_watch_filters_by_namespace_and_label(kube, ns):
    kube.create_namespace("elsewhere")
    since = kube.call("GET", "/api/v1/namespaces")["metadata"]["resourceVersion"]
    labelled = widget("a")
    labelled["metadata"]["labels"] = {"pick": "me"}
    kube.create(labelled, namespace=ns)
    kube.create(widget("b"), namespace=ns)
    kube.create(widget("c"), namespace="elsewhere")
    events = read_watch(kube, WIDGETS.format(ns=ns), resourceVersion=since, labelSelector="pick=me")
    assert [e["object"]["metadata"]["name"] for e in events] == ["a"]


def test_send_initial_events_ends_with_the_initial_events_end_bookmark(kube, ns):
    kube.create(widget("a"), namespace=ns)
    events = read_watch(
        kube,
        WIDGETS.format(ns=ns),
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_bookmarks_are_sent_when_allowed():
    cluster = KubeCluster.start_emulator(bookmark_interval=0.1)
    try:
        cluster.create_namespace("ns")
        events = read_watch(
            cluster,
            "/api/v1/namespaces",
            allowWatchBookmarks="true",
            resourceVersion=cluster.call("GET", "/api/v1/namespaces")["metadata"]["resourceVersion"],
        )
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        assert bookmarks and bookmarks[0]["object"]["metadata"]["resourceVersion"]
        assert not read_watch(cluster, "/api/v1/namespaces", resourceVersion="1000000")  # none unless allowed
    finally:
        cluster.stop()


def test_watch_from_an_expired_version_answers_410_gone():
    cluster = KubeCluster.start_emulator(history_limit=3)
    try:
        start = cluster.call("GET", "/api/v1/namespaces")["metadata"]["resourceVersion"]
        for name in ("a", "b", "c", "d", "e"):
            cluster.create_namespace(name)
        events = read_watch(cluster, "/api/v1/namespaces", resourceVersion=start)
        assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]
    finally:
        cluster.stop()
