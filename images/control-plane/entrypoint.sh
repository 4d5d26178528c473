#!/bin/sh
# The control plane image's processes, by name (the Helm chart runs the same commands):
#   web        uvicorn on 0.0.0.0:${PORT:-8000}, ${WEB_WORKERS:-2} workers
#   worker     the Celery worker        beat      Celery beat (exactly one)
#   consumer   the usage consumer       migrate   every schema, then the organization template
# Anything else runs as given (e.g. `python manage.py shell`).
set -eu
command="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$command" in
  web)
    exec python -m uvicorn saas.asgi:application --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
      --workers "${WEB_WORKERS:-2}" --no-access-log --timeout-keep-alive 30 "$@" ;;
  worker)
    exec python -m celery -A saas worker --loglevel INFO --concurrency "${WORKER_CONCURRENCY:-2}" \
      --hostname "worker@%h" "$@" ;;
  beat)
    exec python -m celery -A saas beat --loglevel INFO --schedule /tmp/celerybeat-schedule "$@" ;;
  consumer)
    exec python manage.py consume_usage --name "${CONSUMER_NAME:-$(cat /proc/sys/kernel/hostname)}" "$@" ;;
  migrate)
    python manage.py migrate_schemas --noinput --executor="${MIGRATION_EXECUTOR:-template}" "$@"
    exec python manage.py ensure_template_schema ;;
  *)
    exec "$command" "$@" ;;
esac
