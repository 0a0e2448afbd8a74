"""Tools beside the product, run from the repository root: `python -m tools.bench` (benchmark), `python -m
tools.soak` (load and updates), `tools.baseline` (LangChain's recipe, for comparison), `python -m tools.profile_http`
and `python -m tools.spysum` (profiling a server under load). Not installed with the package."""
