"""Custom RLModules."""
