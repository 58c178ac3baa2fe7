"""A plugin module that fails on import, as a broken third-party plugin would."""

raise ImportError("this plugin needs a package that is not installed: missing_dependency")
