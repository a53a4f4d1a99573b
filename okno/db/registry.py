"""Imports every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""

from okno.bot import models as bot_models
from okno.channels import models as channels_models
from okno.conversations import models as conversations_models
from okno.customers import models as customers_models
from okno.db.base import Base
from okno.events import models as events_models
from okno.jobs import models as jobs_models
from okno.operators import auth_models as operators_auth_models
from okno.operators import models as operators_models
from okno.replies import models as replies_models
from okno.routing import models as routing_models
from okno.security import audit_models

__all__ = [
    "Base",
    "audit_models",
    "bot_models",
    "channels_models",
    "conversations_models",
    "customers_models",
    "events_models",
    "jobs_models",
    "operators_auth_models",
    "operators_models",
    "replies_models",
    "routing_models",
]
