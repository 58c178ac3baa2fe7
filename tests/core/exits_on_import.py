"""A plugin module that calls sys.exit() on import, as a badly written third-party plugin might."""

import sys

sys.exit(3)
