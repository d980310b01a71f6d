"""``python -m cli``: the ``liqmap`` command without the console script."""

import sys

from cli.main import main

sys.exit(main())
