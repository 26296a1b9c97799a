"""Using a trained generator: the SavedModel / TFLite export, loading for inference, the serving client."""
