"""Background work: the database-backed task worker, and the periodic scheduler one worker leads."""
