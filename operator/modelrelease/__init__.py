"""ModelRelease: safe releases of GPU model-inference services on Kubernetes."""

GROUP = "modelrelease.dev"
VERSION = "v1alpha1"
__version__ = "0.1.0"
