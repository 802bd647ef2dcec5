"""Root conftest. paymon's pytest plugin (fixtures/plugin.py, which registers the other fixtures
modules) is loaded by its pytest11 entry point when paymon is installed. Naming it here as well
covers runs without entry points (PYTEST_DISABLE_PLUGIN_AUTOLOAD, a checkout not installed), and is
a no-op otherwise: pytest registers a plugin module once, under its module name, which is also the
entry point's name (pyproject.toml)."""

pytest_plugins = ["fixtures.plugin"]
