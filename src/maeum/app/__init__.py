"""The emotion diary web app: ``maeum app`` serves it; ``create_app`` builds it for any ASGI server.

Needs the ``app`` extra (FastAPI, SQLAlchemy, Alembic, argon2); nothing here is imported by
``import maeum``.
"""
