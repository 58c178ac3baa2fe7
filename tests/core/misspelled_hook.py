"""A plugin module that implements ``register_encoder``: a typo of the hook ``register_encoders``."""

from contrastive_core import hookimpl


@hookimpl
def register_encoder():
    return []
