"""``llmforge bench``: run the checkout's benchmark scripts, keep their history, catch regressions.

The scripts live in ``benchmarks/`` of a checkout (not packaged); each writes its figures with
``--json PATH`` (``benchmarks/_results.py``). This package holds the registry of benchmarks and
their quick/full arguments and floors (``registry``), the subprocess runner (``runner``), the
results files (``results``), floors and comparisons (``compare``) and the HTML history
(``history``). Nothing here imports a heavy library at module level.
"""
