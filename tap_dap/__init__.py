"""tap-dap: a Singer tap for Instructure's Data Access Platform (Canvas Data 2)."""
