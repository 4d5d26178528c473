"""What every app shares and nothing else: the error shape, API bases, the Celery app, the clock,
field encryption, input specs. Imports no app (an import-linter contract in `make lint`)."""
