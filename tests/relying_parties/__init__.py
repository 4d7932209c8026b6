"""Tests for the sample department services."""
