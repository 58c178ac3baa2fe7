"""Built-in recipe stages: pretraining (and, as they land, the evaluation protocols)."""
