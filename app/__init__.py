"""Question answering over Arabic news articles with verifiable citations."""
