"""Standard-library-only installer behind install.py (any Python >= 3.10, any OS)."""
