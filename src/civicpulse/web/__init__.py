"""The leaders cockpit, shared layouts and the static assets."""
