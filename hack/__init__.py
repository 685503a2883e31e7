"""Development tools of the ModelRelease repository (importable so that
``python -m hack.simulator`` works from the repository root)."""
