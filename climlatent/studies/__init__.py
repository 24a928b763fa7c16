"""Paper-reproduction studies: resumable run ledgers and claims tables under docs/studies/.

Each study trains the package's estimators on a seed paper's setting, one run per row
of a resumable ledger (:class:`~climlatent.studies.run_ledger.RunLedger`), and rewrites
the paper's claims table (``claims.md``, ``claims.csv``) beside its runs after each.
``climlatent study --list`` lists the runnable ones; ``climlatent study NAME --help``
gives each one's options (same as ``python -m climlatent.studies.NAME --help``).
"""
