"""The traffic simulator: the data plane and the GPU pods of the local cluster.

It reads routes (Gateway API HTTPRoute, Istio VirtualService, or a plain
Service), their weights and mirror filters and the ready pods behind each
Service, sends Poisson request traffic through them, and exposes vLLM-named
metrics per simulated pod for Prometheus. See README.md in this folder.
"""
