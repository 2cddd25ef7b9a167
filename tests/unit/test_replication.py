"""How the hub picks the replication of the topics it creates, when the operator does not."""

from __future__ import annotations

import pytest

from hub.kafka_admin import replication_for


@pytest.mark.parametrize(("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)),
                                                   (5, (3, 2))])
def test_unset_replication_follows_the_cluster(brokers: int, expected: tuple[int, int]) -> None:
    assert replication_for(brokers, None, None) == expected


def test_what_the_operator_set_wins() -> None:
    assert replication_for(3, 2, None) == (2, 1)
    assert replication_for(3, None, 1) == (3, 1)
    assert replication_for(1, 3, 2) == (3, 2)
