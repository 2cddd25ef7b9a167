"""The Kemendagri region list: complete, consistent, and looked up by code."""

import re

import pytest

from schemas import regions
from schemas.regions import RegionLevel

PROVINCES = 38
REGENCIES_AND_CITIES = 514  # 416 kabupaten + 98 kota (Kepmendagri 300.2.2-2138/2025)


def test_counts() -> None:
    levels = [r.level for r in regions.regions().values()]
    assert levels.count(RegionLevel.PROVINCE) == PROVINCES
    assert levels.count(RegionLevel.REGENCY) + levels.count(RegionLevel.CITY) == (
        REGENCIES_AND_CITIES
    )
    assert levels.count(RegionLevel.CITY) == 98


def test_codes_are_unique_and_well_formed() -> None:
    from importlib import resources

    rows = resources.files("schemas").joinpath("data/regions.csv").read_text().splitlines()[1:]
    codes = [row.split(",")[0] for row in rows]
    assert len(codes) == len(set(codes)) == PROVINCES + REGENCIES_AND_CITIES
    for region in regions.regions().values():
        pattern = r"[1-9][0-9]" if region.level is RegionLevel.PROVINCE else r"[1-9][0-9]\.[0-9]{2}"
        assert re.fullmatch(pattern, region.code), region
        assert region.name
        assert region.name == region.name.strip()


def test_every_regency_and_city_has_its_province() -> None:
    table = regions.regions()
    for region in table.values():
        province = table[region.province_code]
        assert province.level is RegionLevel.PROVINCE
        assert region.code.split(".")[0] == province.code


def test_lookups() -> None:
    assert regions.is_known("32.73")
    assert regions.name_of("32.73") == "Kota Bandung"
    assert regions.province_of("32.73") == "32"
    assert regions.province_of("32") == "32"
    assert regions.name_of("11") == "Aceh"
    assert regions.name_of("96") == "Papua Barat Daya"
    assert regions.get("96.01").level is RegionLevel.REGENCY


def test_unknown_code() -> None:
    assert not regions.is_known("99.99")
    assert not regions.is_known("")
    with pytest.raises(ValueError, match=r"unknown Kemendagri region code '99\.99'"):
        regions.province_of("99.99")


def test_undotted_code_gets_a_hint() -> None:
    with pytest.raises(ValueError, match=r"dotted form, e\.g\. 32\.73"):
        regions.name_of("3273")
