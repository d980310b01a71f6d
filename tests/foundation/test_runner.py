"""What ``liqmap serve`` does to its process before it serves."""

from __future__ import annotations

import gc
import weakref

from cli.runner import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.self = self  # a reference cycle: only the cyclic collector can free it


def test_freeze_startup_heap_collects_garbage_then_freezes_what_lives() -> None:
    live = _Node()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    assert gone() is not None  # a cycle: still there until a collection
    gc.disable()  # no automatic collection between here and the call decides the outcome
    try:
        frozen = freeze_startup_heap()
        assert gone() is None  # the garbage was collected first, not frozen for good
        assert frozen == gc.get_freeze_count()
        assert frozen > 1000  # the modules this process imported
        # frozen objects are out of every generation: a full collection no longer walks them
        assert all(o is not live for o in gc.get_objects())
        collected = gc.collect()
        assert live.self is live and collected == 0
    finally:
        gc.unfreeze()
        gc.enable()
    assert any(o is live for o in gc.get_objects())  # unfrozen: tracked again
