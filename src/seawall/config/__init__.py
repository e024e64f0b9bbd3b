"""Configuration: read once at start-up, validated, frozen."""

from seawall.config.load import ConfigError, load_from_environment, load_settings
from seawall.config.schema import (
    Deployment,
    Prices,
    PublicModel,
    ServerSettings,
    Settings,
    StoreSettings,
    Timeouts,
)

__all__ = [
    "ConfigError",
    "Deployment",
    "Prices",
    "PublicModel",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "Timeouts",
    "load_from_environment",
    "load_settings",
]
