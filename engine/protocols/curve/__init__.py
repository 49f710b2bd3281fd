"""VC, a safety-utility curve: a protocol whose evidence is a curve over the basis strength α.

`points` measures one curve point and chooses the operating α (on the validation split
only); the protocol that trains the arms and compares the chosen α with the baseline on the
test split builds on it.
"""
