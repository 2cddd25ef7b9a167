"""One module per CLI command group; ``hub.cli`` mounts them."""
