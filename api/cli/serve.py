"""`hab serve`: the API under uvicorn."""

from __future__ import annotations

from typing import Any

import click

from api.cli.common import configure_logging, require_secret_key, services_for_cli


@click.command()
@click.option("--host", default=None, help="Bind address (default HAB_API_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default HAB_API_PORT or 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the API server."""
    import uvicorn

    from api.cli.uvicorn_runner import serve_until_signalled
    from api.observability.exposition import multiprocess_dir
    from api.observability.logs import logging_config

    require_secret_key()
    settings, urls = services_for_cli()
    configure_logging(settings)
    options: dict[str, Any] = {  # the same keywords for uvicorn.run and uvicorn.Config
        "factory": True,
        "host": host or settings.api_host,
        "port": port or settings.api_port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "server_header": False,  # one header less on every response, and the server's name is nobody's business
        "log_config": logging_config(settings),  # applied again in each worker process
        "timeout_graceful_shutdown": 10,
    }
    try:
        with multiprocess_dir(workers):
            if workers > 1:
                uvicorn.run("api.app:create_app", workers=workers, **options)
            else:
                serve_until_signalled(uvicorn.Config("api.app:create_app", **options))
    finally:
        urls.stop_embedded()
