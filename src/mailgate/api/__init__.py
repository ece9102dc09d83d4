"""HTTP surfaces: one package per API document, all over the same services."""
