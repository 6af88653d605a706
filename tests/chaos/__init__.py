"""The chaos suite: real ``manage.py dj_queue`` process trees under injected faults.

Tasks write what really ran to a ledger (``ledger``); faults are scheduled on a
thread of the driving process (``faults``); nodes are runtime subprocesses
(``nodes``); a scenario (``scenarios``) drains jobs under one kind of fault
(``stage``) and ``verdict`` compares the ledger with the queue tables.
``tests/test_chaos.py`` runs every scenario small; ``bench/chaos.py`` runs them
at full size and prints the tables the README's "Guarantees" section quotes.
"""
