"""Stand-in for saigen's command line (saigen.cli.main): ``saigen [--config F] [--llm-provider
NAME] generate SOFTWARE [--output FILE]``. Like the published one, it converts the provider name
through the ``LLMProvider`` enum (an unknown name is an error), picks the first configured entry
otherwise, parses the reply as YAML, and prints failures as ``Error: ...`` with exit status 1."""

import asyncio
from pathlib import Path

import click
import yaml

from ..llm.provider_manager import ATTEMPTS, LLMProviderManager
from ..models.generation import GenerationContext, LLMProvider
from ..utils.config import ConfigManager


@click.group()
@click.option("--config", type=click.Path(path_type=Path))
@click.option("--llm-provider")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, llm_provider: str | None) -> None:
    ctx.obj = {"config": ConfigManager(config).load_config(), "llm_provider": llm_provider}


@cli.command()
@click.argument("software_name")
@click.option("--output", type=click.Path(path_type=Path), required=True)
@click.pass_context
def generate(ctx: click.Context, software_name: str, output: Path) -> None:
    config = ctx.obj["config"]
    name = ctx.obj["llm_provider"] or next(iter(config.llm_providers), "openai")
    try:
        provider = LLMProvider(name)
    except ValueError:
        click.echo(f"Error: Invalid LLM provider '{name}'", err=True)
        ctx.exit(1)
    manager = LLMProviderManager(config.model_dump()["llm_providers"])
    context = GenerationContext(software_name=software_name)
    try:
        response = asyncio.run(manager.generate_with_fallback(context, provider.value))
        data = yaml.safe_load(response.content)
        if not isinstance(data, dict):
            raise ValueError("Generated content is not a valid YAML dictionary")
    except Exception as e:
        click.echo(f"Error: {e}", err=True)
        click.echo(f"attempts: {','.join(ATTEMPTS)}", err=True)
        ctx.exit(1)
    output.write_text(yaml.safe_dump(data, sort_keys=False))
    click.echo(f"Saved to: {output}")
    click.echo(f"attempts: {','.join(ATTEMPTS)}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
