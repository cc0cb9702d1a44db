"""Integrations with other training frameworks (each imported on demand).

* :mod:`snsm.integrations.hf`: Hugging Face ``transformers.Trainer``.
"""
