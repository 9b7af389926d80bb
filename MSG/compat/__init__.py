"""Small, documented environment shims for MSG (see each module's docstring)."""
