"""Root conftest: paymon's options and fixtures come from fixtures/plugin.py."""

pytest_plugins = ["fixtures.plugin", "fixtures.delivery", "fixtures.drill", "fixtures.reporting", "fixtures.app",
                  "fixtures.reviews"]
