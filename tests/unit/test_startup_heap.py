"""The operator takes its start-up heap out of the cyclic collector's reach (main.py)."""

import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent(
    """
    import gc
    from model_registry_operator.main import freeze_startup_heap
    before = len(gc.get_objects())
    frozen = freeze_startup_heap()
    print(before, frozen, len(gc.get_objects()), gc.get_freeze_count())
    """
)


def test_the_start_up_heap_is_frozen_and_a_full_collection_no_longer_scans_it():
    # in a process of its own: freezing this test run's heap would keep its garbage for good
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={"PYTHONPATH": str(REPO / "operator")},
        capture_output=True,
        text=True,
        check=True,
    )
    before, frozen, tracked, freeze_count = map(int, result.stdout.split())
    assert frozen == freeze_count
    assert frozen > 0.9 * before  # all of it, but what the collection before freezing freed
    assert tracked < 0.01 * before  # what the collector still scans
