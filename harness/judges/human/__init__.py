"""Hand evaluation: a local labelling page, its annotations file and the ``human`` judge."""
