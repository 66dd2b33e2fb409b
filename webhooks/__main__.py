"""``python -m webhooks``: the ``gate`` console script."""

from __future__ import annotations

import sys

from webhooks.main import main

sys.exit(main())
