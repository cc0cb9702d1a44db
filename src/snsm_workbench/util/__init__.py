"""Helpers every layer may use: argument checks, tables, the run environment, the errors the
command line prints in one line, and a per-process folder lock (no snsm imports)."""
