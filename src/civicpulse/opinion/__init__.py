"""Public opinion: posts, rules, hot issues, warnings I–IV, response plans, official releases."""
