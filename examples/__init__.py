"""Example apps wrapped by footfall in two lines: Flask (WSGI), Starlette and FastAPI (ASGI)."""
