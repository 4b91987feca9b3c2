"""Text floor: language guess, zh/en tokens and classifiers. Plain Python, no Django."""
