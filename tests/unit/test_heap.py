"""A restored book is built with the cyclic collector paused and then frozen out of its passes;
an error freezes nothing, and the collector is always back on afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from schemas.codec import AvroCodec
from streams.heap import restoring
from streams.rules.calendar import default_calendar
from streams.rules.policy import load_policies
from streams.rules.snapshot import dump, load
from streams.rules.stage import CaseStage
from tests.unit.test_rules_snapshot import base_inputs, take

CODEC = AvroCodec()
CAL = default_calendar()


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """gc.freeze is process-wide: give the test run its collector back as it was."""
    assert gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


@pytest.fixture(scope="module")
def snapshot() -> tuple[list[bytes], object]:
    stage = CaseStage(CODEC, CAL, load_policies())
    for kind, value in base_inputs(30):
        take(stage, kind, value)
    assert len(stage.book.cases) >= 25
    return dump(stage)


def _in_collected_generations(obj: object) -> bool:
    """Whether a full pass of the collector walks ``obj`` (the permanent generation is not
    in ``gc.get_objects()``)."""
    return any(o is obj for o in gc.get_objects())


def test_the_restored_book_is_out_of_the_collectors_passes(snapshot: tuple) -> None:
    chunks, manifest = snapshot
    frozen = gc.get_freeze_count()
    with restoring(True):
        assert not gc.isenabled()  # no pass over the half-built book
        stage = load(manifest, chunks, CODEC, CAL)
    assert gc.isenabled()
    record = next(iter(stage.book.cases.values()))
    assert gc.is_tracked(record)
    assert not _in_collected_generations(record)
    assert not _in_collected_generations(stage.book.logs[record.case_id])
    assert gc.get_freeze_count() - frozen > 30 * len(stage.book.cases)


def test_a_frozen_book_still_moves_on_and_is_still_freed(snapshot: tuple) -> None:
    chunks, manifest = snapshot
    with restoring(True):
        stage = load(manifest, chunks, CODEC, CAL)
    again = load(manifest, chunks, CODEC, CAL)  # not frozen
    assert stage.book == again.book
    for kind, value in base_inputs(30)[:5]:  # already taken: the stage drops them by id
        take(stage, kind, value)
    assert stage.book == again.book
    freed = gc.get_freeze_count()
    del stage
    assert gc.get_freeze_count() < freed  # reference counting freed the frozen book


def test_an_error_freezes_nothing_and_gives_the_collector_back(snapshot: tuple) -> None:
    chunks, manifest = snapshot
    frozen = gc.get_freeze_count()

    def broken_restore() -> None:
        with restoring(True):
            load(manifest, chunks, CODEC, CAL)
            raise RuntimeError("snapshot gone")

    with pytest.raises(RuntimeError, match="snapshot gone"):
        broken_restore()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_switched_off_it_leaves_the_collector_alone(snapshot: tuple) -> None:
    chunks, manifest = snapshot
    frozen = gc.get_freeze_count()
    with restoring(False):
        assert gc.isenabled()
        stage = load(manifest, chunks, CODEC, CAL)
    assert gc.get_freeze_count() == frozen
    record = next(iter(stage.book.cases.values()))
    assert _in_collected_generations(record)
