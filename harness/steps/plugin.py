"""pytest plugin holding the drill's step vocabulary (imported so pytest-bdd finds the steps as
fixtures). The drill itself, its `scenario` fixture and the journal hooks come from the runner's
DrillPlugin object (harness.runner.bridge), one per drill run: nothing module-global."""

from __future__ import annotations

from .api import *  # noqa: F401,F403  (step definitions)
from .backup import *  # noqa: F401,F403
from .common import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .eventstore import *  # noqa: F401,F403
from .evidence import *  # noqa: F401,F403
from .platforms import *  # noqa: F401,F403
