"""Stand-in for saigen.utils.config.ConfigManager: reads a YAML file, and on a validation error
prints a warning and falls back to an empty configuration, as the published one does."""

from pathlib import Path
from typing import Any

import yaml

from ..models.config import SaigenConfig


class ConfigManager:
    def __init__(self, config_path: Path | None = None) -> None:
        self.config_path = config_path
        self._config: SaigenConfig | None = None

    def load_config(self) -> SaigenConfig:
        if self._config is not None:
            return self._config
        if self.config_path is not None and Path(self.config_path).exists():
            try:
                self._config = SaigenConfig(**self._load_config_file(Path(self.config_path)))
            except Exception as e:
                print(f"Warning: Failed to load config from {self.config_path}: {e}")
                self._config = SaigenConfig()
        else:
            self._config = SaigenConfig()
        return self._config

    def _load_config_file(self, path: Path) -> dict[str, Any]:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
