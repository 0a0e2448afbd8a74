"""Profile `rag serve` under load with py-spy (pip install py-spy): /search c=1, /ask c=1, /search c=8.

    python -m tools.profile_http INDEX_DIR OUT_DIR TAG     # INDEX_DIR: a built index, e.g. the work_dir/index
                                                           # of `python -m tools.bench --quick --keep`
    python -m tools.spysum OUT_DIR/TAG-search-c1.txt        # what share of the samples each part of the path takes

Writes py-spy's collapsed stacks (one file per load) and prints latency per load. OpenMP variables are inherited.
"""

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.bench import Server, _load


def main() -> None:
    index_dir, out_dir, tag = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    server = Server(index_dir, out_dir / f"serve-{tag}.log").start()
    print("ready in", round(server.ready_seconds, 2), "s; pid", server.proc.pid, flush=True)
    try:
        asyncio.run(_load("127.0.0.1", server.port, "/search", 1, 0.0, 60, 4))  # warm-up
        for endpoint, c in (("/search", 1), ("/ask", 1), ("/search", 8)):
            name = f"{tag}-{endpoint.strip('/')}-c{c}"
            spy = subprocess.Popen([py_spy, "record", "-p", str(server.proc.pid), "-d", "12", "-r", "200",
                                    "--nonblocking", "-f", "raw", "-o", str(out_dir / f"{name}.txt"), "--threads"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            r = asyncio.run(_load("127.0.0.1", server.port, endpoint, c, 10.0, 60, 2 * c))
            spy.wait()
            print(name, r["latency_ms"], r["requests_per_s"], "req/s, errors", r["errors"], "wall/embed",
                  r["wall_over_embed"], flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
