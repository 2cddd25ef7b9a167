"""The role matrix: each principal gets the least rights its role needs, nothing more."""

from __future__ import annotations

import pytest

from hub.principals import Grant, Names, Service, grants_for, principal_name
from schemas.errors import ConfigError
from schemas.topics import AUDIT, ORDERS_SIASN, PURGE_COMMANDS, Agency, catalogue

pytestmark = pytest.mark.unit
ROLES = [*((a, None) for a in Agency), *((None, s) for s in Service)]


def _covers(g: Grant, resource: str, name: str) -> bool:
    return g.resource == resource and (name.startswith(g.name) if g.prefixed else name == g.name)


def _may(grants: list[Grant], op: str, resource: str, name: str) -> bool:
    return any(_covers(g, resource, name) and g.operation in (op, "ALL") for g in grants)


@pytest.mark.parametrize("agency", list(Agency))
def test_an_agency_writes_only_its_own_raw_topic_and_reads_nothing(agency: Agency) -> None:
    grants = grants_for(agency=agency)
    own = f"netral.raw.{agency.value}"
    assert _may(grants, "WRITE", "topic", own)
    for spec in catalogue():
        assert not _may(grants, "READ", "topic", spec.name), spec.name
        if spec.name != own:
            assert not _may(grants, "WRITE", "topic", spec.name), spec.name
    assert all(g.resource == "topic" and not g.prefixed for g in grants)


def test_only_the_siasn_adapter_reads_the_orders_but_the_sql_sink_records_them() -> None:
    readers = {principal_name(a, s) for a, s in ROLES
               if _may(grants_for(a, s), "READ", "topic", ORDERS_SIASN)}
    # the SQL sink stores orders in the national record (read-only copy for the dashboard)
    assert readers == {"svc-siasn-adapter", "svc-sql-sink"}


def test_streams_own_their_group_transactions_and_internal_topics() -> None:
    names = Names(streams_app_id="netral-streams-x")
    grants = grants_for(service=Service.STREAMS, names=names)
    assert _may(grants, "READ", "group", "netral-streams-x")
    assert _may(grants, "WRITE", "transactional_id", "netral-streams-x-netral.events-0")
    assert _may(grants, "CREATE", "topic", "netral-streams-x-__assignor-__leader")
    assert _may(grants, "READ", "topic", "netral.raw.bkn")
    assert _may(grants, "WRITE", "topic", "netral.dlq.normalize")
    assert _may(grants, "READ", "topic", "netral.deadline-ticks")
    assert not _may(grants, "READ", "topic", ORDERS_SIASN)
    assert not _may(grants, "READ", "group", "netral-sql-sink")


def test_the_api_publishes_raw_and_commands_and_reads_only_its_access_log() -> None:
    grants = grants_for(service=Service.API)
    assert all(_may(grants, "WRITE", "topic", f"netral.raw.{a.value}") for a in Agency)
    assert _may(grants, "WRITE", "topic", "netral.commands")
    assert _may(grants, "WRITE", "topic", AUDIT)
    assert {g.name for g in grants if g.operation == "READ"} == {AUDIT}


def test_only_the_api_writes_the_access_log() -> None:
    writers = {principal_name(a, s) for a, s in ROLES
               if _may(grants_for(a, s), "WRITE", "topic", AUDIT)}
    assert writers == {"svc-api"}


def test_only_the_stream_workers_read_purge_commands_and_nobody_but_the_admin_writes_them(
) -> None:
    readers = {principal_name(a, s) for a, s in ROLES
               if _may(grants_for(a, s), "READ", "topic", PURGE_COMMANDS)}
    writers = {principal_name(a, s) for a, s in ROLES
               if _may(grants_for(a, s), "WRITE", "topic", PURGE_COMMANDS)}
    assert readers == {"svc-streams"}
    assert writers == set()


def test_lag_only_describes_the_hubs_topics_and_groups() -> None:
    grants = grants_for(service=Service.LAG)
    assert {g.operation for g in grants} == {"DESCRIBE"}
    assert _may(grants, "DESCRIBE", "group", "netral-sql-sink")
    assert _may(grants, "DESCRIBE", "topic", "netral.cases")


@pytest.mark.parametrize(("agency", "service"), ROLES)
def test_grants_have_no_duplicates_and_no_wildcards(agency: Agency | None,
                                                    service: Service | None) -> None:
    grants = grants_for(agency, service)
    assert len(grants) == len(set(grants))
    assert all(g.name not in ("", "*") for g in grants)
    assert not any(g.prefixed and g.name in ("netral.", "netral") and g.operation != "DESCRIBE"
                   for g in grants)


def test_exactly_one_of_agency_or_service() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        principal_name()
    with pytest.raises(ConfigError, match="exactly one"):
        principal_name(Agency.BKN, Service.API)
    assert principal_name(Agency.BKN) == "agency-bkn"
    assert principal_name(service=Service.SIASN_ADAPTER) == "svc-siasn-adapter"
