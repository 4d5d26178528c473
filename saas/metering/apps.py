from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "saas.metering"
    label = "metering"
    verbose_name = "Usage metering and traffic analytics"

    def ready(self) -> None:
        from core.metrics import register_gauge

        from . import dead_letters, intake_queue

        register_gauge(
            "saas_usage_dead_letters",
            "Usage batches the consumers could not record, kept for an operator "
            "(manage.py usage_dead_letters).",
            dead_letters.dead_letter_count,
        )
        register_gauge(
            "saas_usage_queue_depth",
            "Usage batches accepted and not yet recorded by a consumer.",
            intake_queue.queue_depth,
        )
        register_gauge(
            "saas_usage_queue_oldest_seconds",
            "Seconds the oldest queued usage batch has waited for a consumer (0: none waits).",
            intake_queue.queue_oldest_seconds,
        )
