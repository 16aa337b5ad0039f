"""`hab worker`: one arq worker."""

from __future__ import annotations

import click

from api.cli.common import configure_logging, require_secret_key, services_for_cli


@click.command()
@click.option("--burst", is_flag=True, help="Process queued jobs, then exit.")
def worker(burst: bool) -> None:
    """Run one arq worker."""
    from api.observability.exposition import start_worker_metrics
    from workers.settings import run_worker

    require_secret_key()
    settings, urls = services_for_cli()
    configure_logging(settings)
    try:
        start_worker_metrics(settings.worker_metrics_host, settings.worker_metrics_port)
        run_worker(settings, burst=burst)
    finally:
        urls.stop_embedded()
