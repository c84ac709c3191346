"""The REST transport (FastAPI/Starlette); the only package that touches the web framework."""
