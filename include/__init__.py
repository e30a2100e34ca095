"""Shared Python of the analytics platform: category defaults, settings, schema migrations."""
