"""Native resource routers."""
