"""Master data: each resident and enterprise known once; identifier checks."""
