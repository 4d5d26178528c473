from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "saas.catalog"
    label = "catalog"
    verbose_name = "API catalog"

    def ready(self) -> None:
        # The catalog's part of every snapshot, and its rows restored by a rollback.
        from saas.gateways.publishing import register_restorer, register_section

        from .rollback import restore_catalog
        from .sections import SECTIONS

        for name, compile_section in SECTIONS.items():
            register_section(name, compile_section)
        register_restorer(restore_catalog)
