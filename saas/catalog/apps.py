from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "saas.catalog"
    label = "catalog"
    verbose_name = "API catalog"
