"""Back Office resource routers."""
