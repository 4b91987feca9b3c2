"""CivicPulse: an open platform for a city government to govern with data."""
