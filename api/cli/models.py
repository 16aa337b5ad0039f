"""`hab train` and `hab models`: the ECLO model registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from api.cli.common import cli_resources, run_domain

if TYPE_CHECKING:
    from api.settings import Settings


@click.command()
@click.option("--dataset", "dataset_id", type=int, help="ID of a stored accident dataset (with ECLO).")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), help="An accident CSV file.")
@click.option("--name", default="eclo", show_default=True, help="Model name.")
@click.option("--activate", is_flag=True, help="Activate the new version at once.")
def train(dataset_id: int | None, csv_path: str | None, name: str, activate: bool) -> None:
    """Train an ECLO model (LightGBM, log1p target, fixed seed) and register it."""
    from api.registry.training import train_and_register

    if (dataset_id is None) == (csv_path is None):
        raise click.UsageError("--dataset 또는 --csv 중 하나만 지정해 주세요.")

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            info = await train_and_register(
                resources, dataset_id=dataset_id, csv_path=csv_path, name=name, activate=activate, echo=click.echo
            )
        click.echo(f"모델 버전 {info.version} 등록" + (" 및 활성화" if activate else "") + " 완료.")

    run_domain(body)


@click.group()
def models() -> None:
    """The ECLO model registry."""


@models.command("list")
def models_list() -> None:
    """List model versions."""
    from api.registry.services import RegistryService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources, resources.sessions() as session:
            rows = await RegistryService(session, resources).list()
        click.echo(f"{'VER':>4}  {'STATUS':<8} {'SOURCE':<14} {'RMSLE':>7}  CREATED              NAME")
        for m in rows:
            rmsle = m.metrics.get("rmsle")
            rmsle_text = f"{rmsle:.4f}" if rmsle is not None else "-"
            click.echo(
                f"{m.version:>4}  {m.status:<8} {m.source:<14} {rmsle_text:>7}  "
                f"{m.created_at:%Y-%m-%d %H:%M:%S}  {m.name}"
            )

    run_domain(body)


@models.command("activate")
@click.argument("version", type=int)
def models_activate(version: int) -> None:
    """Activate a version (rolling back is activating an older one)."""
    from api.registry.services import RegistryService

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources, resources.sessions() as session:
            info = await RegistryService(session, resources).activate(version)
        click.echo(f"모델 버전 {info.version}을(를) 활성화했습니다.")

    run_domain(body)


@models.command("import-legacy")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--target-transform", type=click.Choice(["log1p", "none"]), default="log1p", show_default=True)
@click.option("--activate", is_flag=True, help="Activate the imported version at once.")
def models_import_legacy(directory: str, target_transform: str, activate: bool) -> None:
    """Convert v1.2.5 pickles (model + LabelEncoders) into a safe registered version. Trusted files only."""
    from pathlib import Path

    from api.registry.legacy_import import import_legacy_folder

    click.echo(
        "경고: pickle 파일은 읽는 순간 코드를 실행할 수 있습니다. 믿을 수 있는 출처의 파일만 가져오세요.", err=True
    )

    async def body(settings: Settings) -> None:
        async with cli_resources(settings) as resources:
            info = await import_legacy_folder(
                resources, Path(directory), target_transform=target_transform, activate=activate
            )
        click.echo(f"v1.2.5 모델을 버전 {info.version}(으)로 등록했습니다" + (" (활성화됨)." if activate else "."))

    run_domain(body)
