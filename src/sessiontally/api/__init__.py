"""The HTTP layer: an ASGI app (Starlette) over the service."""
