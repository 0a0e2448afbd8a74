"""A tiny corpus (three short Arabic articles) for the update, crash and API-write tests: it builds in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.config import Settings
from app.index import POINTER_FILE, current_build_name

REPO = Path(__file__).resolve().parent.parent

ARTICLES = {
    "ru": "روسيا وإيران توقعان اتفاقية تعاون\n"
          "وقعت روسيا وإيران اتفاقية للتعاون في مجال الطاقة. وتشمل الاتفاقية استثمارات في موانئ الخليج.\n",
    "cn": "الصين تستثمر في إيران\n"
          "قالت الصين إنها ستستثمر في مشاريع البنية التحتية الإيرانية لمدة عقدين. وتشمل المشاريع السكك الحديدية.\n",
    "tr": "تركيا تستضيف قمة إقليمية\n"
          "تستضيف تركيا الأسبوع المقبل قمة إقليمية لبحث أمن الطاقة في البحر الأسود.\n",
}

# Articles the tests add; each names something no other article does.
NEW = {
    "india": "الهند تفتتح ميناء جديدا\n"
             "افتتحت الهند ميناء تشابهار الجديد على خليج عمان لتصدير القمح إلى أفغانستان. "
             "وقال وزير النقل الهندي إن الميناء سيخدم التجارة مع آسيا الوسطى.\n",
    "brazil": "البرازيل توقع صفقة طائرات\n"
              "وقعت البرازيل صفقة لشراء طائرات نقل عسكرية من شركة إمبراير بقيمة ملياري دولار.\n",
}
QUESTION = {"india": "ما الميناء الذي افتتحته الهند؟", "brazil": "ما صفقة الطائرات التي وقعتها البرازيل؟"}
API_KEY = "test-key-0123456789abcdef"


def write_corpus(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for article_id, text in articles.items():
        (folder / f"{article_id}.txt").write_text(text, encoding="utf-8")
    return folder


def tiny_settings(root: Path, **overrides) -> Settings:
    values = dict(corpus_dir=root / "corpus", index_dir=root / "index", chunk_size=200, chunk_overlap=100,
                  llm_model=None, api_key=None, lock_timeout=120)
    values.update(overrides)
    return Settings(**values)


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `rag` subprocess needs to work on `settings`' folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({
        "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_CHUNK_SIZE": str(settings.chunk_size), "RAG_CHUNK_OVERLAP": str(settings.chunk_overlap),
        "RAG_LOCK_TIMEOUT": str(settings.lock_timeout), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(REPO), "RAG_STORE": settings.store,
    })
    if settings.qdrant_path:
        env["RAG_QDRANT_PATH"] = str(settings.qdrant_path)
    env.update(extra)
    return env


def rag(settings: Settings, *args: str, **extra_env: str) -> subprocess.Popen:
    """Start `rag ARGS` (python -m app.cli) as a real subprocess on `settings`' folders; with RAG_TEST_* variables in
    `extra_env`, through tests/stage_hooks.py, which crashes, pauses or traces the update where they say."""
    hooked = any(name.startswith("RAG_TEST_") for name in extra_env)
    command = [str(REPO / "tests" / "stage_hooks.py")] if hooked else ["-m", "app.cli"]
    return subprocess.Popen([sys.executable, *command, *args], cwd=REPO, env=env_for(settings, **extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def disk_state(settings: Settings) -> dict:
    """What is on disk: corpus .txt ids, articles.json ids, the live build and the articles its manifest holds."""
    corpus_dir, index_dir = Path(settings.corpus_dir), Path(settings.index_dir)
    metadata_path = corpus_dir / "articles.json"
    build = current_build_name(index_dir)
    manifest = json.loads((index_dir / build / "manifest.json").read_text(encoding="utf-8")) if build else {}
    return {
        "files": sorted(p.stem for p in corpus_dir.glob("*.txt")),
        "metadata": sorted(json.loads(metadata_path.read_text(encoding="utf-8"))) if metadata_path.exists() else [],
        "build": build,
        "indexed": sorted(manifest.get("articles", {})),
        "builds": sorted(p.name for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("build-")),
        "leftovers": sorted(p.name for p in index_dir.iterdir()
                            if p.name.startswith((".tmp", ".txn", ".CURRENT")) or p.name == "txn"),
        "pointer": (index_dir / POINTER_FILE).read_text(encoding="utf-8") if (index_dir / POINTER_FILE).exists()
        else None,
    }
