from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "saas.gateways"
    label = "gateways"
    verbose_name = "Gateway clusters, tokens and config snapshots"
