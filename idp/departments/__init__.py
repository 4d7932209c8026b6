"""Departments: client registration and the demo departments of config/departments.toml."""
