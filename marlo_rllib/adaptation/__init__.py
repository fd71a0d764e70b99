"""Online adaptation: measure how far deployment has drifted from the training data (drift.py)."""
