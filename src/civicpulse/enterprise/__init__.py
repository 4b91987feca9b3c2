"""Market subjects: enterprise profiles, supervision by risk."""
