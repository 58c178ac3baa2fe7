"""Subcommands of ``contrastive`` beyond run/validate/plugins/list/schema, one module each."""
