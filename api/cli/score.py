"""`hab score`: batch scoring through the API (the client is api/cli/score_client.py)."""

from __future__ import annotations

import click


@click.command()
@click.argument("input_csv", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", "dataset_id", type=int, help="Score a stored dataset by ID instead of a file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Result CSV (default INPUT_eclo.csv).")
@click.option("--server", default=None, help="API URL (default HAB_API_URL, env/.env, or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="API token (default HAB_API_TOKEN or env/.env).")
@click.option("--visibility", type=click.Choice(["private", "team"]), default="private", show_default=True)
@click.option("--keep-columns", is_flag=True, help="Keep every input column in the output CSV (default: ID only).")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True, help="Seconds.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=3600, show_default=True, help="Overall seconds; 0 = none."
)
@click.pass_context
def score(
    ctx: click.Context,
    input_csv: str | None,
    dataset_id: int | None,
    output: str | None,
    server: str | None,
    token: str | None,
    visibility: str,
    keep_columns: bool,
    poll_interval: float,
    timeout: float,
) -> None:
    """Batch ECLO scoring over the API: upload INPUT_CSV (or use --dataset), wait for the job, save the CSV."""
    from pathlib import Path

    from api.cli.score_client import ScoreError, ScoreInterrupted, default_connection
    from api.cli.score_flow import ScoreOptions, run_score

    if (input_csv is None) == (dataset_id is None):
        raise click.UsageError("입력 CSV 파일 또는 --dataset ID 중 하나만 지정해 주세요.")
    default_server, default_token = default_connection()
    options = ScoreOptions(
        server=server or default_server,
        token=default_token if token is None else token,
        input_csv=Path(input_csv) if input_csv else None,
        dataset_id=dataset_id,
        output=Path(output) if output else None,
        visibility=visibility,
        keep_columns=keep_columns,
        poll_interval=poll_interval,
        timeout=timeout or None,
    )
    try:
        run_score(options)
    except ScoreInterrupted as exc:
        click.echo(exc.message, err=True)
        ctx.exit(exc.exit_code)
    except ScoreError as exc:
        raise click.ClickException(exc.message) from None
