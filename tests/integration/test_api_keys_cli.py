"""``netral api-key add``: monitoring keys per role, stored hashed, and one-line errors; ingest
keys keep working as before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connectors.keys import KeyStore, hash_key
from hub.api.access import MonitorKeyStore, Role
from schemas.errors import ConfigError
from schemas.topics import Agency
from tests.helpers import netral

pytestmark = pytest.mark.integration


def _key(output: str) -> str:
    found = re.search(r"(ntrlm?_[\w-]+)", output)
    assert found, output
    return found.group(1)


def test_monitoring_and_ingest_keys(tmp_path: Path) -> None:
    env = {"NETRAL_HOME": str(tmp_path)}
    province = netral("api-key", "add", "--role", "province", "--province", "31", env=env,
                      check=True)
    agency = netral("api-key", "add", "--role", "agency", "--agency",
                    "Pemerintah Kota Bandung", env=env, check=True)
    ingest = netral("api-key", "add", "--agency", "bawaslu", env=env, check=True)
    p_key, a_key, i_key = _key(province.stdout), _key(agency.stdout), _key(ingest.stdout)

    stored = (tmp_path / "monitor-keys.yaml").read_text()
    assert p_key not in stored and hash_key(p_key) in stored  # only the hash is kept
    assert oct((tmp_path / "monitor-keys.yaml").stat().st_mode & 0o777) == "0o600"
    store = MonitorKeyStore.load(tmp_path / "monitor-keys.yaml")
    who = store.principal_of(p_key)
    assert who is not None and (who.role, who.province_code) == (Role.PROVINCE, "31")
    agency_who = store.principal_of(a_key)
    assert agency_who is not None and agency_who.agency == "Pemerintah Kota Bandung"
    assert store.principal_of(i_key) is None
    assert KeyStore.load(tmp_path / "api-keys.yaml").agency_of(i_key) is Agency.BAWASLU
    assert len(yaml.safe_load(stored)) == 2


@pytest.mark.parametrize(("args", "phrase"), [
    (["--role", "province"], "--province must be a known two-digit province code"),
    (["--role", "province", "--province", "99"], "--province must be a known"),
    (["--role", "agency"], "--role agency needs --agency"),
    (["--role", "boss"], "--role 'boss' is not a role"),
    (["--role", "public", "--province", "31"], "--province goes only with --role province"),
    (["--agency", "kpu"], "--agency 'kpu' is not an ingest agency"),
    ([], "give --agency"),
])
def test_bad_arguments_are_one_line(tmp_path: Path, args: list[str], phrase: str) -> None:
    proc = netral("api-key", "add", *args, env={"NETRAL_HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], proc.stderr


def test_a_broken_keys_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor-keys.yaml"
    path.write_text("- {hash: abc, role: province, province: '99'}\n")
    with pytest.raises(ConfigError, match=r"monitoring keys file .* is not valid"):
        MonitorKeyStore.load(path)
