"""Ingestion of single documents (no index needed): extraction of .txt/.md/.html, the stored text, metadata,
deduplication keys and every refusal; and the `rag add` / `rag remove` / `rag list` commands."""

from __future__ import annotations

import pytest
from _tiny import ARTICLES, NEW, disk_state, tiny_settings, write_corpus
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import Settings, get_settings
from app.corpus import content_hash, load_corpus
from app.ingest import IngestError, collect_files, prepare, read_file

SETTINGS = Settings()
PAGE = """<!doctype html><html lang="ar"><head><title>الموقع | خبر</title>
<meta property="og:site_name" content="وكالة المثال"><link rel="canonical" href="https://example.org/news/7">
<meta name="date" content="2026-03-04"><script>window.SECRET = "do-not-store";</script><style>.x{color:red}</style>
</head><body><nav><a href="/">الرئيسية</a> | <a href="/c">اتصل بنا</a></nav>
<article><h1>العراق يوقع اتفاقية للكهرباء</h1>
<p>وقع العراق اتفاقية مع شركة سيمنز لتطوير شبكة الكهرباء في المحافظات الجنوبية.</p>
<script>document.write("INJECTED")</script>
<p>وقال وزير الكهرباء إن المشروع سيضيف ستة آلاف ميغاواط خلال ثلاث سنوات.</p></article>
<footer>جميع الحقوق محفوظة © 2026</footer><script>track()</script></body></html>"""


def test_html_main_text_and_metadata_are_extracted_without_scripts_or_furniture():
    new = prepare(PAGE, "html", SETTINGS)
    assert "شركة سيمنز" in new.raw and "ستة آلاف ميغاواط" in new.raw
    for junk in ("SECRET", "do-not-store", "INJECTED", "track()", "color:red", "اتصل بنا", "جميع الحقوق"):
        assert junk not in new.raw
    assert new.meta.title == "العراق يوقع اتفاقية للكهرباء" and new.meta.source == "وكالة المثال"
    assert new.meta.url == "https://example.org/news/7" and new.meta.date == "2026-03-04"
    assert new.meta.language == "ar" and new.raw.endswith("\n")
    given = prepare(PAGE, "html", SETTINGS, title="عنوان آخر", source="مصدر", date="2026-03-05")
    assert (given.meta.title, given.meta.source, given.meta.date) == ("عنوان آخر", "مصدر", "2026-03-05")


def test_a_small_html_fragment_falls_back_to_cleaned_text():
    new = prepare("<p>قالت الحكومة إن الاجتماع سيعقد غداً.</p><script>alert(1)</script><style>p{}</style>",
                  "html", SETTINGS)
    assert new.raw == "قالت الحكومة إن الاجتماع سيعقد غداً.\n"


def test_markdown_becomes_plain_text():
    md = ("# مصر تفتتح *المتحف* الكبير\n\nافتتحت **مصر** [المتحف المصري الكبير](https://example.org) قرب الأهرامات.\n\n"
          "- يضم المتحف مئة ألف قطعة\n- ومنها مقتنيات توت عنخ آمون\n\n<script>\nalert('x')\n</script>\n\n"
          "> قال الوزير إن الافتتاح حدث تاريخي.\n")
    new = prepare(md, "md", SETTINGS)
    assert new.meta.title == "مصر تفتتح المتحف الكبير"
    assert new.raw.splitlines()[0] == "مصر تفتتح المتحف الكبير"
    assert "المتحف المصري الكبير" in new.raw and "مئة ألف قطعة" in new.raw and "حدث تاريخي" in new.raw
    for junk in ("*", "[", "](", "https://", "alert", "<", ">"):
        assert junk not in new.raw


def test_text_is_stored_with_normalised_line_ends_and_hashed_whitespace_blind():
    new = prepare("\ufeffسطر أول  \r\nسطر ثان\t \rسطر ثالث\n\n\n", "txt", SETTINGS)
    assert new.raw == "سطر أول\nسطر ثان\nسطر ثالث\n"
    assert content_hash("سطر  أول\nسطر ثان") == content_hash("سطر أول سطر\tثان\n") != content_hash("سطر أول")
    assert new.id == new.content_hash[:16] and new.content_hash == content_hash(new.raw)


@pytest.mark.parametrize("content, fmt, status, fragment", [
    ("", "txt", 422, "empty"),
    (" \n\t\r\n\u3000", "txt", 422, "empty"),
    ("abc\x00def", "txt", 422, "binary"),
    ("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f text", "txt", 422, "binary"),
    ("نص \ud800 عربي", "txt", 422, "surrogate"),
    ("<script>only()</script><style>x{}</style>", "html", 422, "no text found"),
    ("<html><body>   </body></html>", "html", 422, "no text found"),
    ("<!-- nothing but a comment -->", "md", 422, "no text found"),
    ("اترك تعليقاً\nزر الذهاب إلى الأعلى\n", "txt", 422, "no body text"),
    ("كلمة " * 11_000, "txt", 413, "split it into shorter articles"),  # over MAX_ARTICLE_CHARS
])
def test_bad_documents_are_refused_with_a_clear_message(content, fmt, status, fragment):
    with pytest.raises(IngestError) as refused:
        prepare(content, fmt, SETTINGS)
    assert refused.value.status == status and fragment in refused.value.message


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("content", ["<p>abc\x0b def</p>", "abc\x1f def [x](http://a\x01b)", "<p title='\x1f'>نص</p>"])
def test_control_characters_in_markup_do_not_reach_the_parser(content, fmt):
    # lxml refuses control characters with a ValueError: the fuzzer found this as a 500.
    new = prepare(content, fmt, SETTINGS)
    assert all(ch in "\n" or ord(ch) >= 32 for ch in new.raw)


@pytest.mark.parametrize("field, value, fragment", [
    ("url", "javascript:alert(1)", "url"), ("url", "/relative/path", "url"), ("date", "31/12/2026", "date"),
    ("date", "2026-02-30", "date"), ("language", "Arabic!", "language"), ("title", "ع" * 501, "title"),
])
def test_bad_metadata_is_refused(field, value, fragment):
    with pytest.raises(IngestError, match=fragment):
        prepare(NEW["india"], "txt", SETTINGS, **{field: value})


def test_metadata_is_cleaned():
    new = prepare(NEW["india"], "txt", SETTINGS, title="  عنوان\tطويل\n  ", source="وكالة\x07 مثال", language="ar")
    assert new.meta.title == "عنوان طويل" and new.meta.source == "وكالة مثال"


def test_files_are_checked_before_extraction(tmp_path):
    cases = {
        "binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "latin1.txt": "café au lait, déjà vu".encode("latin-1"),
        "utf16.txt": "نص عربي".encode("utf-16"),
        "empty.md": b"   \n",
        "page.pdf": b"%PDF-1.7",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    messages = {}
    for name in cases:
        with pytest.raises(IngestError) as refused:
            read_file(tmp_path / name, SETTINGS)
        messages[name] = refused.value.message
    assert "binary" in messages["binary.txt"] and "binary" in messages["utf16.txt"]
    assert "not valid UTF-8" in messages["latin1.txt"] and "offset 3" in messages["latin1.txt"]
    assert "empty" in messages["empty.md"] and "unsupported file type '.pdf'" in messages["page.pdf"]
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"x" * (SETTINGS.max_upload_bytes + 1) + b"</p>")
    with pytest.raises(IngestError, match="RAG_MAX_UPLOAD_BYTES") as too_big:
        read_file(big, SETTINGS)
    assert too_big.value.status == 413
    # An HTML page in a declared legacy charset is decoded as the page says.
    legacy = tmp_path / "cp1256.html"
    legacy.write_bytes('<html><head><meta charset="windows-1256"></head><body><p>قالت الحكومة إن الاجتماع '
                       'سيعقد غداً في العاصمة.</p></body></html>'.encode("cp1256"))
    assert "الاجتماع" in read_file(legacy, SETTINGS).raw


def test_folders_are_searched_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for path in ("a/one.txt", "a/b/two.md", "a/b/three.HTML", "a/skip.pdf", ".hidden/four.txt", "a/.five.txt"):
        (tmp_path / path).write_text("x", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    files, notes = collect_files([tmp_path, tmp_path / "a" / "one.txt", tmp_path / "missing.txt", tmp_path / "empty"])
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/b/three.HTML", "a/b/two.md", "a/one.txt"]
    assert any("no such file" in n for n in notes) and any("no .txt, .md or .html" in n for n in notes)


# -- the commands -------------------------------------------------------------------------------------------------

@pytest.fixture
def run(tmp_path, monkeypatch):
    settings = tiny_settings(tmp_path)
    write_corpus(settings.corpus_dir)
    for name, value in {"RAG_CORPUS_DIR": settings.corpus_dir, "RAG_INDEX_DIR": settings.index_dir,
                        "RAG_CHUNK_SIZE": 200, "RAG_CHUNK_OVERLAP": 100}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield (lambda *args: runner.invoke(cli, [str(a) for a in args])), settings
    get_settings.cache_clear()


def test_rag_add_list_and_remove(run, tmp_path):
    invoke, settings = run
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "india.txt").write_text(NEW["india"], encoding="utf-8")
    (inbox / "page.html").write_text(PAGE, encoding="utf-8")
    (inbox / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (inbox / "copy.txt").write_text(NEW["india"].replace("\n", "\r\n"), encoding="utf-8")
    result = invoke("add", inbox)
    assert result.exit_code == 1, result.output  # one file was skipped; the others are in
    assert result.output.count("added ") == 2 and "duplicate " in result.output
    assert "skipped " in result.output and "binary" in result.output
    state = disk_state(settings)
    assert len(state["files"]) == len(ARTICLES) + 2 and state["files"] == state["indexed"]

    again = invoke("add", inbox / "india.txt")
    assert again.exit_code == 0 and "already in the corpus" in again.output and "nothing changed" in again.output

    listing = invoke("list")
    assert listing.exit_code == 0 and "العراق يوقع اتفاقية للكهرباء" in listing.output
    page_id = prepare(PAGE, "html", SETTINGS).id
    assert f"{page_id}\t" in listing.output and "2026-03-04" in listing.output

    removed = invoke("remove", page_id)
    assert removed.exit_code == 0 and f"removed {page_id}" in removed.output
    assert page_id not in disk_state(settings)["files"] and page_id not in load_corpus(settings.corpus_dir).articles
    missing = invoke("remove", page_id)
    assert missing.exit_code == 2 and "unknown article id" in missing.output


def test_rag_add_metadata_options(run, tmp_path):
    invoke, settings = run
    path = tmp_path / "brazil.txt"
    path.write_text(NEW["brazil"], encoding="utf-8")
    result = invoke("add", path, "--title", "صفقة البرازيل", "--source", "وكالة مثال", "--date", "2026-01-02",
                    "--url", "https://example.org/b")
    assert result.exit_code == 0, result.output
    meta = load_corpus(settings.corpus_dir).articles[prepare(NEW["brazil"], "txt", SETTINGS).id].meta
    assert (meta.title, meta.source, meta.date, meta.url) == ("صفقة البرازيل", "وكالة مثال", "2026-01-02",
                                                              "https://example.org/b")
    both = invoke("add", path, tmp_path / "other.txt", "--title", "x")
    assert both.exit_code == 2 and "exactly one file" in both.output
    nothing = invoke("add", tmp_path / "missing.txt")
    assert nothing.exit_code == 2 and "nothing to add" in nothing.output
    bad = invoke("add", path, "--date", "tomorrow")
    assert bad.exit_code == 2 and "date" in bad.output
