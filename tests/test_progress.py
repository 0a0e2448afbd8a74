"""Progress of a build or an update: a tqdm bar on a terminal, and elsewhere (a pipe, a log file) a line every few
seconds with done/total, rate and time left, so `rag index` is never silent."""

from __future__ import annotations

import io

from _tiny import tiny_settings, write_corpus
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings
from app.progress import LineProgress, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_step_writes_a_line_every_interval_with_rate_and_time_left():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(1000, "embedding", stream=stream, interval=5, clock=clock)
    clock.now += 2
    bar.update(100)
    assert stream.getvalue() == ""  # not yet: under the interval
    clock.now += 3
    bar.update(150)
    clock.now += 1
    bar.update(50)  # 1 s after the last line: nothing
    clock.now += 5
    bar.update(200)
    clock.now += 2
    bar.update(500)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "embedding: 250/1000 passages (25 %), 50.0/s, ~15 s left",
        "embedding: 500/1000 passages (50 %), 45.5/s, ~11 s left",
        "embedding: 1000/1000 passages in 13 s",
    ]


def test_a_short_step_writes_nothing_and_a_resumed_one_counts_only_its_own_rate():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(10, "embedding", stream=stream, interval=5, clock=clock)
    clock.now += 1
    bar.update(10)
    bar.close()
    assert stream.getvalue() == ""

    bar = LineProgress(1000, "embedding (resumed)", initial=600, stream=stream, interval=5, clock=clock)
    clock.now += 10
    bar.update(100)
    assert stream.getvalue() == "embedding (resumed): 700/1000 passages (70 %), 10.0/s, ~30 s left\n"


def test_lines_off_a_terminal_a_bar_on_one_nothing_when_disabled():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress_bar(5, "embedding", enabled=True, stream=io.StringIO()), LineProgress)
    assert not isinstance(progress_bar(5, "embedding", enabled=True, stream=Terminal()), LineProgress)
    quiet = io.StringIO()
    off = progress_bar(5, "embedding", enabled=False, stream=quiet)
    off.update(5)
    off.close()
    assert quiet.getvalue() == ""


def test_rag_index_reports_progress_on_stderr_when_it_is_not_a_terminal(tmp_path, monkeypatch):
    settings = tiny_settings(tmp_path)
    write_corpus(settings.corpus_dir)
    monkeypatch.setenv("RAG_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("RAG_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("RAG_CHUNK_SIZE", str(settings.chunk_size))
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", str(settings.chunk_overlap))
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    monkeypatch.setattr("app.progress.LINE_INTERVAL", 0.0)  # a line at every update: the tiny build is quick
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["index"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("index built")
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("embedding: ") for line in lines), result.stderr
    total = int(lines[-1].split("/")[1].split()[0])
    assert total > 0 and lines[-1].startswith(f"embedding: {total}/{total} passages in ")
