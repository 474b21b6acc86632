"""A local emulator of the DAP API (never imported by the tap or target at run time)."""
