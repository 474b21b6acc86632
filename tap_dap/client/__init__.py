"""A synchronous client for the DAP API (not built yet)."""
