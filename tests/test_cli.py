"""The rag command on the seed corpus: index, ask (readable and JSON), search, and clear errors."""

import json

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings


@pytest.fixture
def run(service, seed_settings, monkeypatch):
    # `service` has built the index already: the CLI loads it from the same folders.
    monkeypatch.setenv("RAG_CORPUS_DIR", str(seed_settings.corpus_dir))
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_settings.index_dir))
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


def test_index_reuses_the_built_index(run):
    result = run("index")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("index loaded:")
    assert "'articles': 5" in result.output


def test_ask_prints_answer_and_numbered_sources(run):
    result = run("ask", "Which port did the Russian Pacific Fleet warships enter?")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Here is what the sources say")
    assert "Sources:" in result.output
    assert "[1] " in result.output and "002_f4d87a8ec8c5d099" in result.output


def test_ask_json_and_lang(run):
    result = run("ask", "ماذا قال المتحدث باسم الكرملين؟", "--lang", "en", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["language"] == "en" and body["citations"]


def test_search_lists_ranked_chunks(run):
    result = run("search", "غازبروم", "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1. 000_362a69a8ed804e80#")
    assert "\n2. " in result.output


def test_bad_arguments_are_clear_errors(run):
    bad_lang = run("ask", "hello", "--lang", "fr")
    assert bad_lang.exit_code == 2 and "--lang must be ar or en" in bad_lang.output
    empty = run("ask", "   ")
    assert empty.exit_code == 2 and "non-empty" in empty.output
    assert run("search", "x", "--top-k", "0").exit_code == 2


def test_every_setting_is_in_the_readmes_settings_table():
    from pathlib import Path

    from app.config import Settings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line.split("|")[1] for line in section.splitlines() if line.startswith("| `"))
    missing = [name for name in Settings.model_fields if f"`RAG_{name.upper()}`" not in rows]
    assert not missing, f"settings missing from README's settings table: {missing}"
    assert len(Settings.model_fields) <= 25  # what a user sets; tuning constants live beside their code
