"""Framework callbacks: ``wattprint.integrations.transformers`` (Hugging Face Trainer) and
``wattprint.integrations.lightning`` (PyTorch Lightning). Neither imports its framework until
you import it."""
