"""The government data hub: department datasets, their immutable versions in the lake, and
(in later steps) standards, quality, lineage, sharing and open data."""
