"""The built-in plugin sets of contrastive (import package ``contrastive_plugins``, folder ``plugins/``).

Each set is an ordinary plugin module registered through the ``contrastive.plugins`` entry point group,
exactly as a third-party package's would be.
"""
