"""NIP structure: real dates, CPNS start after 18 and not in the future, a gender digit."""

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.nip import Gender, NipInfo, mask_nip, parse_nip

TODAY = date(2024, 11, 27)
VALID = "198503152010011001"


def test_valid_nip_decodes() -> None:
    assert parse_nip(VALID, TODAY) == NipInfo(
        birth_date=date(1985, 3, 15), cpns_start=(2010, 1), gender=Gender.MALE, sequence=1
    )


def test_female_nip() -> None:
    assert parse_nip("199012312019032017", TODAY).gender is Gender.FEMALE


@pytest.mark.parametrize(
    ("nip", "message"),
    [
        (VALID[:-1], "must be 18 digits, got 17"),
        (VALID + "1", "must be 18 digits, got 19"),
        ("", "must be 18 digits, got 0"),
        ("19850315201001100A", "character 18 is not a digit"),
        ("1985-03-1520100110", "character 5 is not a digit"),
        ("١٩٨٥٠٣١٥٢٠١٠٠١١٠٠١", "character 1 is not a digit"),  # Arabic-Indic digits
        ("198513452010011001", "birth date 19851345 is not a real date"),
        ("198502302010011001", "birth date 19850230 is not a real date"),
        ("000001012010011001", "birth date 00000101 is not a real date"),
        ("198503152010131001", "CPNS start month 13 is not a month"),
        ("198503152010001001", "CPNS start month 00 is not a month"),
        ("198503152002011001", "CPNS start 200201 is before the holder turned 18"),
        ("198503152003021001", "before the holder turned 18"),
        ("198503152025011001", "CPNS start 202501 is in the future"),
        ("198503152010013001", "gender digit 3 must be 1 (male) or 2 (female)"),
        ("198503152010010001", "gender digit 0"),
    ],
)
def test_invalid_nip_says_why(nip: str, message: str) -> None:
    with pytest.raises(ValueError, match="NIP") as err:
        parse_nip(nip, TODAY)
    assert message in str(err.value)


def test_cpns_start_in_the_month_of_the_18th_birthday_is_accepted() -> None:
    assert parse_nip("198503152003031001", TODAY).cpns_start == (2003, 3)


def test_cpns_start_this_month_is_accepted() -> None:
    assert parse_nip("198503152024111001", TODAY).cpns_start == (2024, 11)


def test_errors_mask_the_nip() -> None:
    with pytest.raises(ValueError, match=r"NIP 1985\*{11}001: gender"):
        parse_nip("198503152010013001", TODAY)


def test_mask_nip() -> None:
    assert mask_nip(VALID) == "1985***********001"
    assert mask_nip("1234567") == "*******"


@given(st.text())
def test_parse_nip_raises_only_value_error_on_any_text(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_nip(text, TODAY)


@given(st.from_regex(r"\A[0-9]{18}\Z"))
def test_parse_nip_raises_only_value_error_on_any_18_digits(nip: str) -> None:
    try:
        info = parse_nip(nip, TODAY)
    except ValueError:
        return
    assert info.cpns_start <= (TODAY.year, TODAY.month)
    assert info.cpns_start >= (info.birth_date.year + 18, info.birth_date.month)
