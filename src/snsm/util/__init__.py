"""Helpers every layer may use: argument checks, tables, the run environment (no snsm imports)."""
