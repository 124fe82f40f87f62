"""berth compose: multi-container applications from compose files, through the Engine API only."""
