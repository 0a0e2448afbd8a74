"""`python -m app.native`: build the fast embedding engine now (the Makefile's install step runs this)."""

import sys

from app.native import build, built_path

if __name__ == "__main__":
    existing = built_path()
    if existing is not None:
        print(f"fast embedding engine: {existing} (already built)")
        sys.exit(0)
    try:
        print(f"fast embedding engine: {build()}")
    except RuntimeError as exc:  # not fatal: the bundled engine still works, about 2x slower per question
        print(f"fast embedding engine not built, the bundled one will be used: {exc}", file=sys.stderr)
