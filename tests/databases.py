"""Connection settings for the local database servers, shared by the test
settings and the benchmark settings."""

import os

VENDORS = ("sqlite", "postgresql", "mariadb")


def server_settings(vendor: str, name: str) -> dict:
    """A DATABASES entry for ``vendor`` naming the database (or SQLite file) ``name``."""
    if vendor == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                # DJ_QUEUE_TEST_SQLITE_NO_WAL=1: leave the journal mode to dj_queue.
                "init_command": (
                    "PRAGMA synchronous=NORMAL;"
                    if os.environ.get("DJ_QUEUE_TEST_SQLITE_NO_WAL") == "1"
                    else "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                ),
            },
        }
    if vendor == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": os.environ.get("DJ_QUEUE_PG_USER", "postgres"),
            "HOST": os.environ.get("DJ_QUEUE_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("DJ_QUEUE_PG_PORT", "5432"),
        }
    if vendor == "mariadb":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": os.environ.get("DJ_QUEUE_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("DJ_QUEUE_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("DJ_QUEUE_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("DJ_QUEUE_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
            "TEST": {"CHARSET": "utf8mb4"},
        }
    raise RuntimeError(f"database {vendor!r}: use one of {', '.join(VENDORS)}.")
