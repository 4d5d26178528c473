import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

application = get_wsgi_application()

from core.heap import freeze_startup_objects  # noqa: E402  (needs Django set up)

freeze_startup_objects()
