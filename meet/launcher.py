"""`make run`: prepare the database, then start every process of the Procfile under honcho.

honcho replaces this process, so it is the runner: Ctrl-C (SIGINT) or SIGTERM to it stops
every child, the embedded Redis included (it is a Procfile entry, started only when REDIS_URL
is unset).

honcho also stops everything when any one process exits. The SFU nodes, the Celery worker and
beat run under meet.supervise (see the Procfile), which restarts them with backoff, so one of
them crashing leaves the rest serving. The web and Redis are not supervised: nothing works
without either, and their usual failures (the port taken, a bad certificate, the socket's folder
missing) happen at start and would only repeat, so stopping with the error in view is better.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def process_names(redis_embedded: bool) -> list[str]:
    names = ["web", "sfu", "worker", "beat"]
    if redis_embedded:
        names.append("redis")
    return names


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from meet.web import configured_endpoint
    from sfu.app_settings import app_settings as sfu_settings

    call_command("migrate", interactive=False, verbosity=0)
    endpoint = configured_endpoint(settings.VAR_DIR)
    sfu_workers = sfu_settings.WORKERS

    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # Every child must agree on where Redis is, the embedded socket included.
    os.environ["REDIS_URL"] = settings.REDIS_URL
    os.environ["PYTHONUNBUFFERED"] = "1"
    # Links built outside a request (emails and calendar files from Celery) use the address
    # printed below when SITE_URL is unset (meet.settings, meet.links). honcho gives each
    # process a PORT of its own, so the web's is passed on under a name honcho leaves alone.
    os.environ["MEET_SERVED_URL"] = endpoint.url.rstrip("/")

    print(f"\n  meet is starting at {endpoint.url}\n", flush=True)
    if settings.REDIS_EMBEDDED:
        print(f"  embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}", flush=True)
    print("  press Ctrl-C to stop everything\n", flush=True)

    honcho = shutil.which("honcho", path=bin_dir) or "honcho"
    command = [
        honcho,
        "--procfile", str(BASE_DIR / "Procfile"),
        "--app-root", str(BASE_DIR),
        "start",
        "--port", str(endpoint.port),
        "--concurrency", f"sfu={sfu_workers}",
        *process_names(settings.REDIS_EMBEDDED),
    ]  # fmt: skip
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
