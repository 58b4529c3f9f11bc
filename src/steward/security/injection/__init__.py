"""The learned prompt-injection detector: features (features.py), the shipped model
(model.py) and a user-brought local model (local.py)."""
