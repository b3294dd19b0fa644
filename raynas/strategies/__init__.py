"""Strategy adapters: each module turns one algorithm of ``raynas/search/`` into a ``raynas.api.Strategy``
that runs on Ray through the run's verbs. The registry of names is ``raynas.api.STRATEGIES``."""
