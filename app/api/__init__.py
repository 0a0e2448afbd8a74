"""The REST API: thin routers over RagService; a user's error becomes its 4xx with the same message."""

from app.api.main import create_app

__all__ = ["create_app"]
