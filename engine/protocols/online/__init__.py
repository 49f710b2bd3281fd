"""OL, online learning in shadow mode: a protocol whose evidence is a stream over time.

The stream (`stream`), the shadow's regularisers (`regularizers`: EWC, proximal), the canary
decision (`canary`) and the drift monitor (`drift`) are separate modules, each tested on its
own; the protocol that runs them over a stream builds on them.
"""
