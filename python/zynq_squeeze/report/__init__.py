"""Reports for people and tools about one build: ``report.json`` and ``report.html``.

Owns: the summary written by ``zynq-squeeze compile`` (``summary``: offload, schedule,
resources, modeled performance, ``schedule.json``) and its HTML page with plots
(``html``).

May import: every stage (it reads what they produced) and the top-level base modules.
Only ``cli`` and the package root import it.
"""
