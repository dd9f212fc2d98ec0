"""HTTP layer: blueprints that parse requests, call services and render responses."""
