"""DocSpace resource routers."""
