"""The cluster suites share the root fixtures (tests/conftest.py)."""

from tests.conftest import FIELD_MANAGER, install_crds

__all__ = ["FIELD_MANAGER", "install_crds"]
