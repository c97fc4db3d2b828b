"""``python -m delivery_auth.cli``: the ``delivery-auth`` command."""

import sys

from . import main

sys.exit(main())
