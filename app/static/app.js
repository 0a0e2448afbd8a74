// Chat page for the Arabic news RAG service.
// Every piece of text that comes from the server (answers, titles, article text, error details) is inserted
// with textContent / createTextNode: never innerHTML, so an article holding markup shows it as characters.
"use strict";

(() => {
  const STORE_KEY = "newsqa.thread.v1";
  const LANG_KEY = "newsqa.lang.v1";
  const WINDOW_CHARS = 420; // characters of article text shown on each side of a cited span
  const HISTORY_TURNS = 6; // earlier turns sent with a follow-up
  const HISTORY_ANSWER_CHARS = 1500;
  const ARABIC = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]/g;
  const LATIN = /[A-Za-z]/g;

  const STRINGS = {
    en: {
      title: "Arabic News Q&A",
      tagline: "Answers quoted from the articles, with sources you can check",
      langLabel: "Answer language",
      auto: "Auto",
      clear: "Clear",
      clearTitle: "Clear the thread and start over",
      emptyTitle: "Ask the news archive",
      emptyText: "Every answer quotes the articles and cites them by number. Click a number to read the passage in its article.",
      placeholder: "Ask in Arabic or English…",
      send: "Send",
      stop: "Stop",
      hint: "Enter to send, Shift+Enter for a new line. Follow-ups use the thread as context.",
      you: "You",
      answer: "Answer",
      waiting: "Sending your question…",
      condensing: "Reading the conversation…",
      retrieving: "Searching the articles…",
      answering: "Writing the answer…",
      translating: "Translating…",
      machineTranslation: "Machine translation",
      machineTranslationHint: "Not the source's words: the quote above is what the article says.",
      sources: "Sources",
      copy: "Copy",
      copied: "Copied",
      copyFailed: "Copy failed",
      abstainTitle: "No answer in the sources",
      abstainHint: "The articles do not say. Try rephrasing, or ask about something they cover.",
      unsupported: "Weak support: this passage may not back the sentence that cites it",
      supportScore: "support",
      source: "Source",
      close: "Close",
      showFull: "Show the full article",
      showPassage: "Show the passage only",
      loadingArticle: "Loading the article…",
      dateUnknown: "Date not given",
      outletUnknown: "Outlet not named",
      chars: "characters",
      retry: "Try again",
      stopped: "Stopped. The question was not answered.",
      errNetwork: "Could not reach the server.",
      errNetworkDetail: "Check that the service is running, then try again.",
      errRequest: "The question was not accepted.",
      errNotFound: "Not found.",
      errProvider: "The language model's provider failed to answer.",
      errTimeout: "The language model took too long to answer.",
      errUnavailable: "The service is not ready (the search index is unavailable).",
      errServer: "The server ran into a problem.",
      errTooLarge: "The question and thread are too long to send.",
      errClosed: "The connection closed before the answer arrived.",
      errArticle: "Could not load this article.",
      tryLater: "Try again in a moment.",
      status: "status",
      examples: [
        "Who signed the naval memorandum between Russia and Iran, and where?",
        "من أين تأتي المسيرات التي تستخدمها روسيا؟",
        "What weapons has Iran supplied to Russia for the war in Ukraine?",
        "ما المناورات العسكرية المشتركة بين روسيا وإيران؟",
      ],
    },
    ar: {
      title: "أسئلة الأخبار العربية",
      tagline: "إجابات مقتبسة من المقالات، مع مصادر يمكنك التحقق منها",
      langLabel: "لغة الإجابة",
      auto: "تلقائي",
      clear: "مسح",
      clearTitle: "مسح المحادثة والبدء من جديد",
      emptyTitle: "اسأل أرشيف الأخبار",
      emptyText: "كل إجابة تقتبس من المقالات وتشير إليها بأرقام. انقر على الرقم لقراءة المقطع في مقاله.",
      placeholder: "اسأل بالعربية أو بالإنجليزية…",
      send: "إرسال",
      stop: "إيقاف",
      hint: "Enter للإرسال، وShift+Enter لسطر جديد. الأسئلة اللاحقة تستفيد من سياق المحادثة.",
      you: "أنت",
      answer: "الإجابة",
      waiting: "جارٍ إرسال السؤال…",
      condensing: "جارٍ قراءة المحادثة…",
      retrieving: "جارٍ البحث في المقالات…",
      answering: "جارٍ كتابة الإجابة…",
      translating: "جارٍ الترجمة…",
      machineTranslation: "ترجمة آلية",
      machineTranslationHint: "ليست كلمات المصدر: الاقتباس أعلاه هو ما يقوله المقال.",
      sources: "المصادر",
      copy: "نسخ",
      copied: "تم النسخ",
      copyFailed: "تعذّر النسخ",
      abstainTitle: "لا إجابة في المصادر",
      abstainHint: "لا تذكر المقالات ذلك. جرّب صياغة أخرى، أو اسأل عن موضوع تتناوله.",
      unsupported: "دعم ضعيف: قد لا يسند هذا المقطع الجملة التي تستشهد به",
      supportScore: "الدعم",
      source: "المصدر",
      close: "إغلاق",
      showFull: "عرض المقال كاملاً",
      showPassage: "عرض المقطع فقط",
      loadingArticle: "جارٍ تحميل المقال…",
      dateUnknown: "التاريخ غير مذكور",
      outletUnknown: "الناشر غير مذكور",
      chars: "المحارف",
      retry: "أعد المحاولة",
      stopped: "تم الإيقاف. لم تتم الإجابة عن السؤال.",
      errNetwork: "تعذّر الوصول إلى الخادم.",
      errNetworkDetail: "تأكد من أن الخدمة تعمل، ثم أعد المحاولة.",
      errRequest: "لم يُقبل السؤال.",
      errNotFound: "غير موجود.",
      errProvider: "أخفق مزوّد النموذج اللغوي في الإجابة.",
      errTimeout: "استغرق النموذج اللغوي وقتاً أطول من اللازم.",
      errUnavailable: "الخدمة غير جاهزة (فهرس البحث غير متاح).",
      errServer: "واجه الخادم مشكلة.",
      errTooLarge: "السؤال والمحادثة أطول من أن يُرسلا.",
      errClosed: "انقطع الاتصال قبل وصول الإجابة.",
      errArticle: "تعذّر تحميل هذا المقال.",
      tryLater: "أعد المحاولة بعد قليل.",
      status: "الحالة",
      examples: [
        "من أين تأتي المسيرات التي تستخدمها روسيا؟",
        "Who signed the naval memorandum between Russia and Iran, and where?",
        "ما المناورات العسكرية المشتركة بين روسيا وإيران؟",
        "What weapons has Iran supplied to Russia for the war in Ukraine?",
      ],
    },
  };

  // ---------- small helpers ----------

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function icon(name, className = "icon") {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", className);
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", "#i-" + name);
    svg.append(use);
    return svg;
  }

  /** "ar" when the text is mostly Arabic letters, "en" when mostly Latin, null when it cannot tell. */
  function detectLang(text) {
    const ar = (String(text).match(ARABIC) || []).length;
    const latin = (String(text).match(LATIN) || []).length;
    if (!ar && !latin) return null;
    return ar >= latin ? "ar" : "en";
  }

  function setLangDir(node, lang) {
    if (lang === "ar" || lang === "en") {
      node.lang = lang;
      node.dir = lang === "ar" ? "rtl" : "ltr";
    } else {
      node.dir = "auto";
    }
  }

  // ---------- state ----------

  const state = {
    choice: "auto", // auto | ar | en: the answer language asked for, and the UI language
    turns: [], // {id, question, lang, status: pending|done|error, answer, error}
    busy: null, // {turn, controller}
    articles: new Map(), // article id -> Promise of the article JSON
    panel: null, // {citation, chip, full}
  };
  let nextId = 1;

  function uiLang() {
    if (state.choice === "ar" || state.choice === "en") return state.choice;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return nav.toLowerCase().startsWith("ar") ? "ar" : "en";
  }

  function t(key) {
    const table = STRINGS[uiLang()];
    return key in table ? table[key] : STRINGS.en[key];
  }

  function save() {
    try {
      const turns = state.turns
        .filter((turn) => turn.status !== "pending")
        .map(({ question, lang, status, answer, error }) => ({ question, lang, status, answer, error }));
      localStorage.setItem(STORE_KEY, JSON.stringify(turns));
    } catch (_) {
      /* storage full or disabled: the thread still lives in the page */
    }
  }

  function load() {
    try {
      const choice = localStorage.getItem(LANG_KEY);
      if (choice === "ar" || choice === "en" || choice === "auto") state.choice = choice;
      const turns = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
      if (Array.isArray(turns)) {
        for (const turn of turns) {
          if (turn && typeof turn.question === "string" && (turn.status === "done" || turn.status === "error")) {
            state.turns.push({ ...turn, id: nextId++ });
          }
        }
      }
    } catch (_) {
      state.turns = [];
    }
  }

  // ---------- UI language ----------

  function applyUiLanguage() {
    const lang = uiLang();
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const node of document.querySelectorAll("[data-i18n-aria]")) node.setAttribute("aria-label", t(node.dataset.i18nAria));
    for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
    const examples = $("examples");
    examples.replaceChildren();
    for (const question of t("examples")) {
      const button = el("button", "example", question);
      button.type = "button";
      setLangDir(button, detectLang(question));
      button.addEventListener("click", () => ask(question));
      examples.append(button);
    }
    renderThread();
    if (state.panel) renderPanel();
  }

  // ---------- the thread ----------

  function renderThread() {
    const thread = $("thread");
    for (const node of [...thread.querySelectorAll(".turn")]) node.remove();
    $("empty").hidden = state.turns.length > 0;
    for (const turn of state.turns) thread.append(renderTurn(turn));
  }

  function renderTurn(turn) {
    const wrap = el("div", "turn");
    wrap.dataset.turn = String(turn.id);
    const user = el("div", "msg user");
    const userText = el("div", "user-text", turn.question);
    user.dir = "auto";
    const qlang = detectLang(turn.question);
    if (qlang) userText.lang = qlang;
    user.append(userText);
    wrap.append(user, renderReply(turn));
    return wrap;
  }

  function replaceReply(turn) {
    const wrap = document.querySelector(`.turn[data-turn="${turn.id}"]`);
    if (!wrap) return;
    wrap.lastElementChild.replaceWith(renderReply(turn));
  }

  function renderReply(turn) {
    if (turn.status === "pending") return renderPending(turn);
    if (turn.status === "error") return renderError(turn);
    if (turn.answer && turn.answer.abstained) return renderAbstention(turn);
    return renderAnswer(turn);
  }

  function label(text, lang) {
    const node = el("div", "msg-label");
    node.append(el("span", "dot"), el("span", null, text));
    if (lang) node.lang = lang;
    return node;
  }

  function renderPending(turn) {
    const card = el("article", "msg assistant pending");
    card.dataset.state = "pending";
    card.setAttribute("aria-busy", "true");
    const body = el("div", "msg-body");
    const dots = el("span", "typing");
    dots.append(el("i"), el("i"), el("i"));
    const status = el("span", "status-text", t(turn.stage || "waiting"));
    body.append(dots, status);
    card.append(body);
    if (turn.streamed) {
      const streamed = el("div", "streamed", turn.streamed);
      streamed.dir = "auto";
      card.append(streamed);
    }
    card.append(el("div", "progress"));
    return card;
  }

  function answerLabelText(answer) {
    // The label speaks the answer's language, so an Arabic answer is labelled in Arabic.
    return STRINGS[answer.language === "ar" ? "ar" : "en"].answer;
  }

  function renderAnswer(turn) {
    const answer = turn.answer;
    const lang = answer.language === "ar" ? "ar" : "en";
    const card = el("article", "msg assistant answer");
    card.dataset.state = "done";
    setLangDir(card, lang);
    card.append(label(answerLabelText(answer), lang));

    const byN = new Map((answer.citations || []).map((c) => [c.n, c]));
    const body = el("div", "msg-body");
    body.lang = lang;
    renderAnswerText(body, answer.answer, byN, lang);
    card.append(body);

    if (answer.citations && answer.citations.length) card.append(renderSources(answer, byN, lang));
    card.append(renderFoot(answer, lang));
    return card;
  }

  /** Answer text: lines become paragraphs or list items; «…» quotes are isolated; [n] become chips. */
  function renderAnswerText(container, text, byN, lang) {
    let list = null;
    const lines = String(text).split(/\n+/);
    lines.forEach((line, index) => {
      if (!line.trim()) return;
      const item = /^\s*[-•*]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) {
          list = el("ul", "answer-list");
          container.append(list);
        }
        list.append(renderItem(item[1], byN, lang));
      } else {
        list = null;
        const p = el("p");
        if (index === 0 && lines.length > 1 && !/\[\d+\]/.test(line)) p.className = "intro";
        appendInline(p, line, byN, lang);
        container.append(p);
      }
    });
  }

  /**
   * A list item. "Who says it: «quote» [n]" (the extractive answerer's lines) becomes the attribution over a
   * quote box in the quote's own direction, so an Arabic quote in an English answer reads right to left as a
   * whole instead of wrapping mid-line; anything else is rendered inline.
   */
  function renderItem(text, byN, lang) {
    const li = el("li");
    const match = /^(.*?)\s*«([^«»]+)»\s*((?:\[\d+\]\s*)*)$/.exec(text);
    if (!match || !match[1].trim()) {
      appendInline(li, text, byN, lang);
      return li;
    }
    li.className = "cited";
    const attribution = el("div", "attribution");
    appendInline(attribution, match[1], byN, lang);
    const box = el("div", "quote-box");
    const qlang = detectLang(match[2]);
    setLangDir(box, qlang);
    const quote = el("span", "quote", "«" + match[2] + "»");
    if (qlang) quote.lang = qlang;
    box.append(quote);
    for (const marker of match[3].matchAll(/\[(\d+)\]/g)) {
      box.append(document.createTextNode(" "), makeChip(Number(marker[1]), byN.get(Number(marker[1])), lang));
    }
    li.append(attribution, box);
    return li;
  }

  function appendInline(parent, text, byN, lang) {
    const pattern = /«([^»]*)»|\[(\d+)\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text))) {
      if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
      if (match[1] !== undefined) {
        parent.append(document.createTextNode("«"));
        const quote = el("span", "quote", match[1]);
        const qlang = detectLang(match[1]);
        quote.dir = qlang === "ar" ? "rtl" : qlang === "en" ? "ltr" : "auto";
        if (qlang) quote.lang = qlang;
        parent.append(quote, document.createTextNode("»"));
      } else {
        parent.append(makeChip(Number(match[2]), byN.get(Number(match[2])), lang));
      }
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function makeChip(n, citation, lang) {
    const chip = el("button", "chip", String(n));
    chip.type = "button";
    chip.dataset.n = String(n);
    chip.dir = "ltr";
    const strings = STRINGS[lang] || STRINGS.en;
    if (!citation) {
      chip.classList.add("missing");
      chip.disabled = true;
      return chip;
    }
    chip.dataset.article = citation.article_id;
    chip.dataset.start = String(citation.start);
    chip.dataset.end = String(citation.end);
    const where = [citation.title, citation.source].filter(Boolean).join(" — ");
    if (!citation.supported) {
      chip.classList.add("unsupported");
      chip.dataset.supported = "false";
      chip.title = `${strings.unsupported} (${strings.supportScore} ${formatSupport(citation.support)})\n${where}`;
    } else {
      chip.title = where;
    }
    chip.setAttribute("aria-label", `${strings.source} ${n}: ${where}`);
    chip.addEventListener("click", () => openPanel(citation, chip));
    return chip;
  }

  function formatSupport(value) {
    return typeof value === "number" ? value.toFixed(2) : "?";
  }

  function renderSources(answer, byN, lang) {
    const strings = STRINGS[lang];
    const box = el("div", "sources");
    box.append(el("div", "sources-label", strings.sources));
    const groups = new Map();
    for (const citation of answer.citations) {
      if (!groups.has(citation.article_id)) groups.set(citation.article_id, []);
      groups.get(citation.article_id).push(citation);
    }
    for (const citations of groups.values()) {
      const row = el("div", "src");
      const chips = el("span", "src-chips");
      for (const citation of citations) chips.append(makeChip(citation.n, citation, lang));
      const text = el("span", "src-text");
      const title = el("span", "src-title", citations[0].title);
      title.dir = "auto";
      const tlang = detectLang(citations[0].title);
      if (tlang) title.lang = tlang;
      text.append(title);
      if (citations[0].source) {
        text.append(document.createTextNode(" · "));
        const outlet = el("span", "src-outlet", citations[0].source);
        outlet.dir = "auto";
        text.append(outlet);
      }
      row.append(chips, text);
      box.append(row);
    }
    return box;
  }

  function renderFoot(answer, lang) {
    const strings = STRINGS[lang];
    const foot = el("div", "msg-foot");
    const bits = [answer.mode];
    if (answer.timings_ms && typeof answer.timings_ms.total_ms === "number") {
      bits.push(`${Math.round(answer.timings_ms.total_ms)} ms`);
    }
    foot.append(el("span", "msg-meta", bits.join(" · ")));
    const actions = el("div", "msg-actions");
    const copy = el("button", "btn copy");
    copy.type = "button";
    const copyLabel = el("span", null, strings.copy);
    copy.append(icon("copy"), copyLabel);
    copy.addEventListener("click", async () => {
      const ok = await copyText(answerAsText(answer, strings));
      copy.classList.toggle("copied", ok);
      copy.replaceChildren(icon(ok ? "check" : "copy"), el("span", null, ok ? strings.copied : strings.copyFailed));
      setTimeout(() => {
        copy.classList.remove("copied");
        copy.replaceChildren(icon("copy"), el("span", null, strings.copy));
      }, 1600);
    });
    actions.append(copy);
    foot.append(actions);
    return foot;
  }

  function answerAsText(answer, strings) {
    const lines = [answer.answer];
    if (answer.citations && answer.citations.length) {
      lines.push("", strings.sources + ":");
      for (const c of answer.citations) {
        lines.push(`[${c.n}] ${c.title}${c.source ? " — " + c.source : ""} (${c.article_id}, ${c.start}–${c.end})`);
      }
    }
    return lines.join("\n");
  }

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (_) {
      /* fall back below */
    }
    const area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (_) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  function renderAbstention(turn) {
    const answer = turn.answer;
    const lang = answer.language === "ar" ? "ar" : "en";
    const strings = STRINGS[lang];
    const card = el("article", "msg assistant abstained");
    card.dataset.state = "abstained";
    setLangDir(card, lang);
    const row = el("div", "abstain");
    const badge = el("span", "abstain-icon");
    badge.append(icon("search-off"));
    const text = el("div", "msg-body");
    text.lang = lang;
    text.append(el("p", "abstain-title", strings.abstainTitle), el("p", "abstain-text", answer.answer));
    text.append(el("p", "abstain-text", strings.abstainHint));
    row.append(badge, text);
    card.append(row);
    return card;
  }

  function renderError(turn) {
    const error = turn.error || {};
    const card = el("article", "msg assistant error");
    card.dataset.state = "error";
    if (error.kind === "stopped") card.classList.add("stopped");
    card.setAttribute("role", "alert");
    const row = el("div", "error-row");
    row.append(icon(error.kind === "stopped" ? "stop" : "alert"));
    const text = el("div");
    text.append(el("p", "error-title", error.title || t("errServer")));
    if (error.detail) {
      const detail = el("p", "error-detail", error.detail);
      detail.dir = "auto";
      text.append(detail);
    }
    row.append(text);
    card.append(row);
    const foot = el("div", "msg-foot");
    const retry = el("button", "btn retry");
    retry.type = "button";
    retry.append(icon("retry"), el("span", null, t("retry")));
    retry.addEventListener("click", () => {
      if (state.busy) return;
      state.turns = state.turns.filter((x) => x !== turn);
      document.querySelector(`.turn[data-turn="${turn.id}"]`)?.remove();
      save();
      ask(turn.question, turn.lang);
    });
    foot.append(retry);
    card.append(foot);
    return card;
  }

  // ---------- asking ----------

  function historyFor(turn) {
    return state.turns
      .filter((x) => x !== turn && x.status === "done" && x.answer)
      .slice(-HISTORY_TURNS)
      .map((x) => ({ question: x.question, answer: String(x.answer.answer || "").slice(0, HISTORY_ANSWER_CHARS) }));
  }

  /** A plain-words message for a failed request: {title, detail}. */
  function explain(status, detail) {
    const clean = typeof detail === "string" ? detail : "";
    if (status === 0) return { title: t("errNetwork"), detail: t("errNetworkDetail") };
    if (status === 413) return { title: t("errTooLarge"), detail: clean };
    if (status === 404) return { title: t("errNotFound"), detail: clean };
    if (status === 502) return { title: t("errProvider"), detail: [clean, t("tryLater")].filter(Boolean).join("\n") };
    if (status === 504) return { title: t("errTimeout"), detail: [clean, t("tryLater")].filter(Boolean).join("\n") };
    if (status === 503) return { title: t("errUnavailable"), detail: clean };
    if (status >= 400 && status < 500) return { title: t("errRequest"), detail: clean };
    return { title: t("errServer"), detail: [clean, `HTTP ${status}`].filter(Boolean).join("\n") };
  }

  async function errorFromResponse(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (_) {
      detail = response.statusText || "";
    }
    return { status: response.status, ...explain(response.status, detail) };
  }

  async function* readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        let payload;
        try {
          payload = JSON.parse(data.join("\n"));
        } catch (_) {
          payload = { text: data.join("\n") };
        }
        yield { name, payload };
      }
    }
  }

  async function ask(question, langOverride) {
    question = String(question || "").trim();
    if (!question || state.busy) return;
    const lang = langOverride !== undefined ? langOverride : state.choice === "auto" ? null : state.choice;
    const turn = { id: nextId++, question, lang, status: "pending", stage: "waiting", answer: null, error: null };
    const history = historyFor(turn);
    state.turns.push(turn);
    $("empty").hidden = true;
    $("thread").append(renderTurn(turn));
    scrollToBottom();

    const controller = new AbortController();
    state.busy = { turn, controller };
    setBusy(true);

    const body = { question };
    if (lang) body.lang = lang;
    if (history.length) body.history = history;

    try {
      const response = await fetch("/ask/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        finish(turn, { error: await errorFromResponse(response) });
        return;
      }
      let final = null;
      for await (const { name, payload } of readEvents(response)) {
        if (name === "status" && payload.stage) {
          turn.stage = payload.stage in STRINGS.en ? payload.stage : "waiting";
          updatePending(turn);
        } else if (name === "token" && typeof payload.text === "string") {
          turn.streamed = (turn.streamed || "") + payload.text;
          updatePending(turn);
        } else if (name === "answer") {
          final = payload;
        } else if (name === "error") {
          const status = Number(payload.status) || 500;
          finish(turn, { error: { status, ...explain(status, payload.detail) } });
          return;
        }
      }
      if (final && typeof final.answer === "string") finish(turn, { answer: final });
      else finish(turn, { error: { status: 0, title: t("errClosed"), detail: t("tryLater") } });
    } catch (err) {
      if (controller.signal.aborted) finish(turn, { error: { kind: "stopped", title: t("stopped") } });
      else finish(turn, { error: { status: 0, ...explain(0) } });
    }
  }

  function updatePending(turn) {
    if (turn.status === "pending") replaceReply(turn);
  }

  function finish(turn, { answer, error }) {
    if (state.busy && state.busy.turn === turn) state.busy = null;
    turn.status = answer ? "done" : "error";
    turn.answer = answer || null;
    turn.error = error || null;
    delete turn.stage;
    delete turn.streamed;
    replaceReply(turn);
    setBusy(false);
    save();
    revealTurn(turn);
  }

  function setBusy(busy) {
    const send = $("send");
    send.classList.toggle("stop", busy);
    send.replaceChildren(icon(busy ? "stop" : "send"));
    send.setAttribute("aria-label", t(busy ? "stop" : "send"));
    send.type = busy ? "button" : "submit";
  }

  /** Show a finished turn: all of it when it fits, else from its question down, so reading starts at the top. */
  function revealTurn(turn) {
    const scroller = $("scroller");
    const wrap = document.querySelector(`.turn[data-turn="${turn.id}"]`);
    if (!wrap) return;
    requestAnimationFrame(() => {
      const room = scroller.clientHeight;
      if (wrap.offsetHeight + 24 <= room) {
        scroller.scrollTop = scroller.scrollHeight;
      } else {
        const top = wrap.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop;
        scroller.scrollTop = Math.max(0, top - 16);
      }
    });
  }

  function scrollToBottom() {
    const scroller = $("scroller");
    requestAnimationFrame(() => {
      scroller.scrollTop = scroller.scrollHeight;
    });
  }

  function clearThread() {
    if (state.busy) state.busy.controller.abort();
    state.busy = null;
    state.turns = [];
    closePanel();
    save();
    renderThread();
    setBusy(false);
    $("question").focus();
  }

  // ---------- the source panel ----------

  function fetchArticle(id) {
    if (!state.articles.has(id)) {
      const promise = fetch("/articles/" + encodeURIComponent(id)).then(async (response) => {
        if (!response.ok) throw await errorFromResponse(response);
        return response.json();
      });
      promise.catch(() => state.articles.delete(id));
      state.articles.set(id, promise);
    }
    return state.articles.get(id);
  }

  function openPanel(citation, chip) {
    for (const active of document.querySelectorAll(".chip.active")) active.classList.remove("active");
    chip.classList.add("active");
    state.panel = { citation, chip, full: false };
    const panel = $("panel");
    panel.hidden = false;
    $("layout").classList.add("panel-open");
    $("backdrop").hidden = !isNarrow();
    renderPanel();
    $("panel-close").focus({ preventScroll: true });
  }

  function closePanel() {
    if (!state.panel) return;
    const chip = state.panel.chip;
    state.panel = null;
    $("panel").hidden = true;
    $("backdrop").hidden = true;
    $("layout").classList.remove("panel-open");
    for (const active of document.querySelectorAll(".chip.active")) active.classList.remove("active");
    if (chip && chip.isConnected) chip.focus({ preventScroll: true });
  }

  function isNarrow() {
    return window.matchMedia("(max-width: 860px)").matches;
  }

  async function renderPanel() {
    const current = state.panel;
    if (!current) return;
    const { citation } = current;
    const n = $("panel-n");
    n.textContent = String(citation.n);
    n.classList.toggle("unsupported", !citation.supported);
    const title = $("panel-title");
    title.textContent = citation.title;
    const tlang = detectLang(citation.title);
    if (tlang) title.lang = tlang;
    else title.removeAttribute("lang");

    const warning = $("panel-warning");
    warning.hidden = !!citation.supported;
    $("panel-warning-text").textContent = citation.supported
      ? ""
      : `${t("unsupported")} (${t("supportScore")} ${formatSupport(citation.support)})`;

    const meta = $("panel-meta");
    meta.replaceChildren(el("span", null, citation.source || t("outletUnknown")));
    // LLM mode: the model's rendering of a quote in another language, under the passage and marked as such.
    const translation = citation.translation;
    $("panel-translation").hidden = !(translation && translation.text);
    $("panel-translation-text").textContent = translation ? translation.text : "";
    $("panel-translation-text").lang = translation ? translation.language : "";
    $("panel-translation-model").textContent = translation && translation.model ? `· ${translation.model}` : "";
    const passage = $("passage");
    passage.className = "passage loading";
    passage.removeAttribute("lang");
    passage.textContent = t("loadingArticle");
    $("panel-where").textContent = "";
    const toggle = $("panel-toggle");
    toggle.hidden = true;

    let article;
    try {
      article = await fetchArticle(citation.article_id);
    } catch (err) {
      if (state.panel !== current) return;
      passage.className = "passage";
      passage.textContent = [t("errArticle"), err && err.detail].filter(Boolean).join(" ");
      return;
    }
    if (state.panel !== current) return; // another chip was clicked meanwhile

    meta.replaceChildren();
    const outlet = el("span", "outlet", article.source || citation.source || t("outletUnknown"));
    outlet.dir = "auto";
    meta.append(outlet, el("span", "sep", "·"), el("span", "date", article.date || t("dateUnknown")));
    if (article.title) title.textContent = article.title;

    const text = String(article.text || "");
    const start = Math.max(0, Math.min(citation.start, text.length));
    const end = Math.max(start, Math.min(citation.end, text.length));
    let from = 0;
    let to = text.length;
    if (!current.full) {
      from = snapBack(text, Math.max(0, start - WINDOW_CHARS));
      to = snapForward(text, Math.min(text.length, end + WINDOW_CHARS));
    }
    passage.className = current.full ? "passage full" : "passage";
    const plang = (article.meta && article.meta.language) || detectLang(text.slice(start, end)) || "ar";
    passage.lang = plang;
    passage.dir = plang === "ar" ? "rtl" : "auto";
    passage.replaceChildren();
    if (from > 0) passage.append(el("span", "ellipsis", "… "));
    passage.append(document.createTextNode(text.slice(from, start).replace(/^\s+/, "")));
    const mark = el("mark", citation.supported ? "" : "weak", text.slice(start, end));
    mark.id = "cited";
    passage.append(mark);
    passage.append(document.createTextNode(text.slice(end, to).replace(/\s+$/, "")));
    if (to < text.length) passage.append(el("span", "ellipsis", " …"));

    toggle.hidden = false;
    $("panel-toggle-text").textContent = current.full ? t("showPassage") : t("showFull");
    $("panel-where").textContent = `${citation.article_id} · ${t("chars")} ${start}–${end}`;
    $("panel-where").dir = "ltr";
    requestAnimationFrame(() => mark.scrollIntoView({ block: "center", inline: "nearest" }));
  }

  /** Move a window edge back to the start of a line or word so the passage does not open mid-word. */
  function snapBack(text, index) {
    if (index <= 0) return 0;
    const line = text.lastIndexOf("\n", index);
    if (line >= 0 && index - line < 120) return line + 1;
    const space = text.indexOf(" ", index);
    return space >= 0 && space - index < 40 ? space + 1 : index;
  }

  function snapForward(text, index) {
    if (index >= text.length) return text.length;
    const line = text.indexOf("\n", index);
    if (line >= 0 && line - index < 120) return line;
    const space = text.lastIndexOf(" ", index);
    return space >= 0 && index - space < 40 ? space : index;
  }

  // ---------- wiring ----------

  function autosize() {
    const box = $("question");
    box.style.height = "auto";
    box.style.height = Math.min(box.scrollHeight, 180) + "px";
    const lang = detectLang(box.value);
    if (lang) box.lang = lang;
    else box.removeAttribute("lang");
  }

  function init() {
    load();
    for (const input of document.querySelectorAll('input[name="lang"]')) {
      input.checked = input.value === state.choice;
      input.addEventListener("change", () => {
        if (!input.checked) return;
        state.choice = input.value;
        try {
          localStorage.setItem(LANG_KEY, state.choice);
        } catch (_) {
          /* ignore */
        }
        applyUiLanguage();
      });
    }
    applyUiLanguage();
    setBusy(false);

    const box = $("question");
    box.addEventListener("input", autosize);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      if (state.busy) return;
      const question = box.value.trim();
      if (!question) return;
      box.value = "";
      autosize();
      ask(question);
    });
    $("send").addEventListener("click", (event) => {
      if (state.busy) {
        event.preventDefault();
        state.busy.controller.abort();
      }
    });
    $("clear").addEventListener("click", clearThread);
    $("panel-close").addEventListener("click", closePanel);
    $("backdrop").addEventListener("click", closePanel);
    $("panel-toggle").addEventListener("click", () => {
      if (!state.panel) return;
      state.panel.full = !state.panel.full;
      renderPanel();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.panel) closePanel();
    });
    window.matchMedia("(max-width: 860px)").addEventListener("change", () => {
      $("backdrop").hidden = !(state.panel && isNarrow());
    });
    if (state.turns.length) scrollToBottom();
    box.focus({ preventScroll: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
