"""target-dap-sql: a Singer target that replicates DAP tables into SQLite, PostgreSQL and MySQL."""
