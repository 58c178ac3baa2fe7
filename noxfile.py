"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s example_plugin`, `nox -s slow`, `nox -s docs`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "example_plugin"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (slow tests deselected), as CI runs it."""
    session.install("-c", "constraints.txt", "-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """Only the slow tests (full quickstart, longer training runs)."""
    session.install("-c", "constraints.txt", "-e", ".[dev]")
    session.run("python", "-m", "pytest", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def example_plugin(session: nox.Session) -> None:
    """The example third-party plugin: pip-installed, discovered through its entry point, used in a recipe."""
    session.install("-c", "constraints.txt", "-e", ".[dev]")
    session.run("python", "-m", "pytest", "tests/test_example_plugin.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs-material) in strict mode: a broken link or missing page fails it.

    Only the site's tools are installed (no torch): that the generated recipe reference matches the
    schema is checked by tests/visual/test_docs.py in the test session.
    """
    session.install("mkdocs-material>=9.5")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
