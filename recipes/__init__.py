"""The recipes shipped with contrastive, installed as the data package ``contrastive_core.shipped_recipes``.

pyproject.toml maps that package to this folder, so a wheel carries these TOML files and an editable
install reads them from here; ``contrastive recipes`` lists them and copies one out. This file holds no
code: it makes the folder a regular package, which an editable install needs to find it by name.
"""
