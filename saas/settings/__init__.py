"""Settings, split by concern. Every value comes from an environment variable (see README)."""

from .api import *  # noqa: F403
from .aws import *  # noqa: F403
from .base import *  # noqa: F403
from .billing import *  # noqa: F403
from .cache import *  # noqa: F403
from .database import *  # noqa: F403
from .email import *  # noqa: F403
from .jobs import *  # noqa: F403
from .metering import *  # noqa: F403
from .security import *  # noqa: F403
from .sso import *  # noqa: F403
