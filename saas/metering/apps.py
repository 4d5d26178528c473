from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "saas.metering"
    label = "metering"
    verbose_name = "Usage metering and traffic analytics"
